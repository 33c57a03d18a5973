using System;
using System.Threading;

namespace Tulip;

/// <summary>
/// A loop task whatever its result type: what <see cref="Tasks.CurrentTask"/>,
/// <see cref="IEventLoop.CurrentTask"/> and <see cref="Tasks.AllTasks"/> return, so that the
/// task API (asyncio's <c>Task</c>: <c>get_name</c>, <c>cancel</c>, <c>cancelling</c>,
/// <c>uncancel</c>, <c>done</c>, <c>get_loop</c>, <c>add_done_callback</c>) is reachable without
/// knowing <c>T</c>. Every <see cref="LoopTask{T}"/> implements it with its public members.
/// </summary>
/// <remarks>
/// The interface is implemented by Tulip's task types only (it has internal members), so code that
/// receives an <see cref="ILoopTask"/> can rely on the task model described on <see cref="LoopTask{T}"/>.
/// Its members are for the loop thread, like every future's. To await a task you hold as an
/// <see cref="ILoopTask"/>, or to hand it to <see cref="Tasks.Gather(System.Collections.Generic.IEnumerable{Future}, bool, CancellationToken)"/>
/// or <see cref="Tasks.Wait"/>, use <see cref="AsFuture"/>.
/// </remarks>
public interface ILoopTask
{
    /// <summary>The task's name (asyncio's <c>get_name</c>/<c>set_name</c>); defaults to <c>Task-N</c>.</summary>
    /// <exception cref="ArgumentNullException">Set to null.</exception>
    string Name { get; set; }

    /// <summary>The loop the task runs on (asyncio's <c>get_loop</c>).</summary>
    IEventLoop Loop { get; }

    /// <summary>True once the task has finished: with a result, an exception, or cancelled.</summary>
    bool Done { get; }

    /// <summary>True if the task ended cancelled.</summary>
    bool Cancelled { get; }

    /// <summary>
    /// Cancelled when the task is: give it to .NET APIs awaited inside the task. See
    /// <see cref="LoopTask{T}.CancellationToken"/>.
    /// </summary>
    CancellationToken CancellationToken { get; }

    /// <summary>The task as a future: to await it, or to give it to the combinators.</summary>
    Future AsFuture { get; }

    /// <summary>
    /// Requests cancellation, delivered as <see cref="CancelledError"/> at the task's await (see
    /// <see cref="LoopTask{T}.Cancel"/> for the rules).
    /// </summary>
    /// <param name="message">Carried by the <see cref="CancelledError"/>.</param>
    /// <returns>False if the task is already done; true otherwise.</returns>
    bool Cancel(string? message = null);

    /// <summary>The number of cancellation requests not yet withdrawn (asyncio 3.11's <c>cancelling</c>).</summary>
    int Cancelling();

    /// <summary>Withdraws one cancellation request; returns the number left (asyncio 3.11's <c>uncancel</c>).</summary>
    int Uncancel();

    /// <summary>The exception the task ended with, or null; see <see cref="Future.Exception"/>.</summary>
    /// <exception cref="CancelledError">The task was cancelled.</exception>
    /// <exception cref="InvalidStateError">The task is not done yet.</exception>
    Exception? Exception();

    /// <summary>The result as an object (a <see cref="VoidResult"/> for a task without one).</summary>
    /// <exception cref="CancelledError">The task was cancelled.</exception>
    /// <exception cref="InvalidStateError">The task is not done yet.</exception>
    object? ResultObject();

    /// <summary>Adds a callback scheduled on the loop when the task is done; see <see cref="Future.AddDoneCallback"/>.</summary>
    void AddDoneCallback(Action<Future> callback);

    /// <summary>Removes every registration of <paramref name="callback"/>; returns how many were removed.</summary>
    int RemoveDoneCallback(Action<Future> callback);

    /// <summary>The task's place in the loop's list of live tasks (for <c>AllTasks</c>).</summary>
    internal ILoopTask? TaskPrev { get; set; }

    /// <summary>See <see cref="TaskPrev"/>.</summary>
    internal ILoopTask? TaskNext { get; set; }

    /// <summary>See <see cref="LoopTask{T}.TakePendingCancellation"/>.</summary>
    internal bool TakePendingCancellation();
}
