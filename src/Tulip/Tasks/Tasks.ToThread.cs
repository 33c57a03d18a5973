using System;
using System.Threading;

namespace Tulip;

public static partial class Tasks
{
    /// <summary>
    /// Runs <paramref name="function"/> on a thread of the running loop's default executor and
    /// returns a loop task for its result: asyncio's <c>to_thread</c>.
    /// </summary>
    /// <remarks>
    /// The function runs in the caller's <see cref="ExecutionContext"/>: <c>AsyncLocal</c> values set
    /// in the task are seen there, as asyncio copies the contextvars (changes made on the thread do
    /// not flow back). Cancelling the returned task (or <paramref name="cancellationToken"/>) ends it
    /// cancelled at once; a function already running goes on, and a disposable result it returns
    /// afterwards is disposed, never dropped. Use the overload taking a token to let it stop.
    /// </remarks>
    /// <exception cref="InvalidOperationException">No loop is running on this thread, or its default executor was shut down.</exception>
    public static LoopTask<T> ToThread<T>(Func<T> function, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(function);
        return RunningLoop().RunInExecutor(null, function, cancellationToken);
    }

    /// <summary>
    /// As <see cref="ToThread{T}(Func{T}, CancellationToken)"/>, for a function given a token that is
    /// cancelled when the returned task is (so the work can stop early).
    /// </summary>
    /// <exception cref="InvalidOperationException">No loop is running on this thread, or its default executor was shut down.</exception>
    public static LoopTask<T> ToThread<T>(Func<CancellationToken, T> function, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(function);
        return RunningLoop().RunInExecutor(null, function, cancellationToken);
    }

    /// <summary>As <see cref="ToThread{T}(Func{T}, CancellationToken)"/>, for an action.</summary>
    /// <exception cref="InvalidOperationException">No loop is running on this thread, or its default executor was shut down.</exception>
    public static LoopTask ToThread(Action action, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(action);
        return RunningLoop().RunInExecutor(null, action, cancellationToken);
    }
}
