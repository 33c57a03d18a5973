using System;
using System.Threading;

namespace Tulip;

/// <summary>
/// Joins .NET cancellation tokens to loop tasks: a token given to a loop API cancels the task
/// running the API, as if <c>task.Cancel()</c> were called (the token may fire on any thread).
/// </summary>
internal static class TaskCancellation
{
    private static readonly Action<object?> s_cancelTask = static state =>
    {
        var task = (Future)state!;
        task.LoopCore.ScheduleFromAnyThread(static (t, _) => ((Future)t!).Cancel(), task, null);
    };

    /// <summary>
    /// While the returned registration lives, <paramref name="cancellationToken"/> cancels the
    /// current task. Nothing is allocated for a token that cannot be cancelled.
    /// </summary>
    public static CancellationTokenRegistration LinkToCurrentTask(CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled)
        {
            return default;
        }

        var task = BaseEventLoop.RunningLoopOrNull?.CurrentTask?.AsFuture
            ?? throw new InvalidOperationException("A cancellation token can only be linked inside a running loop task.");
        cancellationToken.ThrowIfCancellationRequested();
        return cancellationToken.UnsafeRegister(s_cancelTask, task);
    }

    /// <summary>
    /// Links <paramref name="cancellationToken"/> to <paramref name="future"/>: when it fires, the
    /// future is cancelled on its loop. The registration is dropped when the future is done.
    /// </summary>
    public static void LinkToFuture(Future future, CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled)
        {
            return;
        }

        if (cancellationToken.IsCancellationRequested)
        {
            future.Cancel();
            return;
        }

        var registration = cancellationToken.UnsafeRegister(s_cancelTask, future);
        future.AddCallbackCore(static (_, r) => ((StrongBox)r!).Registration.Dispose(), new StrongBox(registration));
    }

    /// <summary>The token to hand to .NET APIs called from the current task: cancelled when the task is.</summary>
    public static CancellationToken CurrentToken(CancellationToken fallback) =>
        BaseEventLoop.RunningLoopOrNull?.CurrentTask is { } task ? task.CancellationToken : fallback;

    private sealed class StrongBox
    {
        public StrongBox(CancellationTokenRegistration registration) => Registration = registration;

        public CancellationTokenRegistration Registration { get; }
    }
}

