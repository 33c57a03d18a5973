using System;
using System.Threading;

namespace Tulip.Synchronization;

/// <summary>
/// asyncio's <c>Event</c>: a flag tasks wait on. <see cref="Set"/> wakes every waiter and lets later
/// waits pass at once until <see cref="Clear"/>; the flag starts cleared.
/// </summary>
/// <remarks>
/// A waiter woken by <see cref="Set"/> finishes its wait even if <see cref="Clear"/> follows at
/// once, or if its task is cancelled before it runs (Tulip keeps a result that arrived; the
/// cancellation comes at the task's next await). A waiter cancelled before <see cref="Set"/> leaves
/// the queue and takes nothing from the others. The event binds to the loop it is first used on.
/// </remarks>
public sealed class Event
{
    private static readonly Action<object?, object?> s_onWaiterDone =
        static (waiter, self) => ((Event)self!)._waiters.Remove((Waiter<VoidResult>)waiter!);

    // Guarded by: the bound loop's thread.
    private LoopBinding _binding;
    private WaiterQueue<VoidResult> _waiters;
    private bool _value;

    /// <summary>True once <see cref="Set"/> was called and <see cref="Clear"/> not since (asyncio's <c>is_set()</c>).</summary>
    public bool IsSet => _value;

    /// <summary>How many waiters are queued (for tests and <see cref="ToString"/>).</summary>
    internal int WaiterCount => _waiters.Count;

    /// <summary>Sets the flag and wakes every waiter; does nothing if it is set already.</summary>
    /// <exception cref="InvalidOperationException">The event belongs to another loop or thread.</exception>
    public void Set()
    {
        _binding.Check(this);
        if (_value)
        {
            return;
        }

        _value = true;
        for (var w = _waiters.First; w is not null; w = w.Next)
        {
            if (!w.Done)
            {
                w.SetResult(default);
            }
        }
    }

    /// <summary>Clears the flag: later waits block until the next <see cref="Set"/>.</summary>
    /// <exception cref="InvalidOperationException">The event belongs to another loop or thread.</exception>
    public void Clear()
    {
        _binding.Check(this);
        _value = false;
    }

    /// <summary>Waits until the flag is set: at once, with no allocation, if it is set now.</summary>
    /// <param name="cancellationToken">Cancels the wait, as cancelling the awaiting task does. A
    /// token already cancelled on entry gives a cancelled result.</param>
    /// <returns>A value future; await it once.</returns>
    /// <exception cref="InvalidOperationException">No loop runs on this thread, or the event belongs to another loop.</exception>
    /// <exception cref="CancelledError">At the await: the wait was cancelled.</exception>
    public ValueFuture<VoidResult> WaitAsync(CancellationToken cancellationToken = default)
    {
        var loop = _binding.Bind(this);
        if (cancellationToken.IsCancellationRequested)
        {
            return Primitives.Cancelled<VoidResult>(loop);
        }

        if (_value)
        {
            return new ValueFuture<VoidResult>(default(VoidResult));
        }

        var waiter = new Waiter<VoidResult>(loop);
        _waiters.Enqueue(waiter);
        waiter.AddCallbackCore(s_onWaiterDone, this);
        TaskCancellation.LinkToFuture(waiter, cancellationToken);
        return new ValueFuture<VoidResult>(waiter);
    }

    /// <summary>Describes the state as asyncio's repr does: <c>&lt;Event [unset, waiters:1]&gt;</c>.</summary>
    public override string ToString() => Primitives.Describe("Event", _value ? "set" : "unset", _waiters.Count);
}
