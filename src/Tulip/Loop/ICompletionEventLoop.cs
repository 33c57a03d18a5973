using System;
using System.Threading.Tasks;

namespace Tulip;

/// <summary>
/// The capability of running the completions of .NET asynchronous I/O on the loop thread: the
/// model of a notify-on-completion loop (asyncio's proactor, IOCP), where a transport starts an
/// operation (<c>Socket.ReceiveAsync</c>, <c>Stream.WriteAsync</c>...) and is called back when it is
/// done, with no fd readiness involved. A transport written against this interface runs on every
/// loop that offers it (seed 002).
/// </summary>
/// <remarks>
/// <para>
/// Every <see cref="BaseEventLoop"/> offers it: a completion on another thread reaches the loop
/// through the thread-safe queue, as <see cref="IEventLoop.CallSoonThreadSafe(Action)"/> does. A
/// proactor loop may deliver completions its own way; the contract is the same.
/// </para>
/// <para>
/// The callback always runs on a later loop iteration, never inside the call, even when the
/// operation completed synchronously: a transport sees one order whatever the timing. If the loop
/// is closed before the operation completes, the callback never runs (its transport is gone with
/// the loop). Call from the loop thread.
/// </para>
/// </remarks>
public interface ICompletionEventLoop : IEventLoop
{
    /// <summary>
    /// Calls <paramref name="callback"/>(<paramref name="state"/>, result, exception) on the loop
    /// thread once <paramref name="operation"/> completes: the result when it succeeded (exception
    /// null), or its exception (result 0; an <see cref="OperationCanceledException"/> when it was cancelled).
    /// </summary>
    /// <remarks>The operation is consumed: do not await it elsewhere.</remarks>
    void WhenCompleted<TState>(ValueTask<int> operation, Action<TState, int, Exception?> callback, TState state);

    /// <summary>As <see cref="WhenCompleted{TState}(ValueTask{int}, Action{TState, int, Exception}, TState)"/> for an operation without a result.</summary>
    void WhenCompleted<TState>(ValueTask operation, Action<TState, Exception?> callback, TState state);
}
