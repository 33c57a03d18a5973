using System;
using System.Collections.Generic;
using System.Threading;

namespace Tulip;

/// <summary>
/// asyncio's task functions: sleeping, the current task, and the combinators that wait on
/// several futures at once (<c>Gather</c>, <c>Wait</c>, <c>WaitFor</c>, <c>AsCompleted</c>,
/// <c>Shield</c>), each in its own file. All are for the loop thread.
/// </summary>
public static partial class Tasks
{
    /// <summary>
    /// Completes after <paramref name="seconds"/> on the running loop's clock. <c>Sleep(0)</c> yields
    /// to the loop for one iteration. Cancelling the awaiting task (or the token) cancels the sleep.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The delay is NaN.</exception>
    public static Future<VoidResult> Sleep(double seconds, CancellationToken cancellationToken = default)
    {
        if (double.IsNaN(seconds))
        {
            throw new ArgumentOutOfRangeException(nameof(seconds), "The delay is NaN: give a number of seconds.");
        }

        var loop = RunningLoop();
        var sleep = new SleepFuture(loop);
        if (seconds <= 0)
        {
            loop.ScheduleInternal(static (f, _) => ((SleepFuture)f!).TrySetResult(default), sleep, null);
        }
        else
        {
            sleep.Timer = loop.CallLater(seconds, static f => f.TrySetResult(default), sleep);
        }

        TaskCancellation.LinkToFuture(sleep, cancellationToken);
        return sleep;
    }

    /// <summary>As <see cref="Sleep(double, CancellationToken)"/>, with a <see cref="TimeSpan"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is <see cref="Timeout.InfiniteTimeSpan"/>: a sleep must end.</exception>
    public static Future<VoidResult> Sleep(TimeSpan delay, CancellationToken cancellationToken = default) =>
        Sleep(FiniteSeconds(delay, nameof(delay)), cancellationToken);

    /// <summary>Completes after <paramref name="seconds"/> with <paramref name="result"/>.</summary>
    public static async LoopTask<T> Sleep<T>(double seconds, T result, CancellationToken cancellationToken = default)
    {
        await Sleep(seconds, cancellationToken);
        return result;
    }

    /// <summary>Yields to the loop for one iteration: <c>Sleep(0)</c>.</summary>
    public static Future<VoidResult> Yield() => Sleep(0);

    /// <summary>
    /// The task running now on this thread's running loop (asyncio's <c>current_task</c>), or null
    /// outside a task (no loop running, or a plain callback running).
    /// </summary>
    public static ILoopTask? CurrentTask() => BaseEventLoop.RunningLoopOrNull?.CurrentTask;

    /// <summary>The tasks of the running loop that are not done (asyncio's <c>all_tasks</c>).</summary>
    /// <exception cref="InvalidOperationException">No loop is running on this thread.</exception>
    public static IReadOnlyCollection<ILoopTask> AllTasks() => RunningLoop().AllTasks();

    /// <summary>The running loop on this thread, or a clear error.</summary>
    internal static BaseEventLoop RunningLoop() =>
        BaseEventLoop.RunningLoopOrNull ?? throw new InvalidOperationException(
            "No event loop is running on this thread: call this from a loop task or callback (EventLoop.Run(MainAsync)).");

    /// <summary>A sleep: a future with its timer, cancelled together.</summary>
    private sealed class SleepFuture : Future<VoidResult>
    {
        public SleepFuture(BaseEventLoop loop) : base(loop)
        {
        }

        public TimerHandle? Timer { get; set; }

        public override bool Cancel(string? message = null)
        {
            if (!base.Cancel(message))
            {
                return false;
            }

            Timer?.Cancel();
            Timer = null;
            return true;
        }
    }
}
