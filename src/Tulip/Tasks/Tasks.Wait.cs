using System;
using System.Collections.Generic;
using System.Threading;

namespace Tulip;

public static partial class Tasks
{
    /// <summary>
    /// Waits until the futures are done as <paramref name="mode"/> says, or until
    /// <paramref name="timeout"/> seconds pass, and returns which are done and which are still
    /// pending: asyncio's <c>wait</c>.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Nothing is cancelled when the timeout passes, and no exception is raised for it: the futures
    /// not yet done are simply in <c>Pending</c>. The futures' exceptions are not raised either;
    /// read them from the futures in <c>Done</c>. A future given twice counts once.
    /// </para>
    /// <para>
    /// Cancelling the waiting task (or <paramref name="cancellationToken"/>) stops the wait with
    /// <see cref="CancelledError"/> and leaves the futures alone.
    /// </para>
    /// </remarks>
    /// <param name="futures">The futures (or tasks) to wait on; all of the running loop.</param>
    /// <param name="timeout">Seconds to wait at most; null waits for as long as it takes.</param>
    /// <param name="mode">When to return; defaults to <see cref="WaitMode.AllCompleted"/>.</param>
    /// <param name="cancellationToken">Cancels the wait (not the futures).</param>
    /// <exception cref="ArgumentException">No futures were given, or one belongs to another loop.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="mode"/> is not a <see cref="WaitMode"/>, or the timeout is NaN.</exception>
    public static LoopTask<(IReadOnlySet<Future> Done, IReadOnlySet<Future> Pending)> Wait(
        IEnumerable<Future> futures,
        double? timeout = null,
        WaitMode mode = WaitMode.AllCompleted,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(futures);
        if (!Enum.IsDefined(mode))
        {
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "Not a WaitMode: use FirstCompleted, FirstException or AllCompleted.");
        }

        CheckTimeout(timeout, nameof(timeout));
        var set = new HashSet<Future>(futures);
        if (set.Count == 0)
        {
            throw new ArgumentException("The set of futures to wait on is empty: give at least one.", nameof(futures));
        }

        var loop = RunningLoop();
        foreach (var f in set)
        {
            if (f is null)
            {
                throw new ArgumentException("The futures to wait on include null.", nameof(futures));
            }

            CheckSameLoop(f, loop, nameof(futures));
        }

        return WaitCore(loop, set, timeout, mode, cancellationToken);
    }

    private static async LoopTask<(IReadOnlySet<Future> Done, IReadOnlySet<Future> Pending)> WaitCore(
        BaseEventLoop loop, HashSet<Future> futures, double? timeout, WaitMode mode, CancellationToken cancellationToken)
    {
        using var registration = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var waiter = new WaitWaiter(loop, futures.Count, mode);
        if (timeout is double seconds)
        {
            waiter.Timer = loop.CallLater(seconds, static w => w.TrySetResult(default), waiter);
        }

        foreach (var f in futures)
        {
            f.AddCallbackCore(WaitWaiter.OnCompletion, waiter);
        }

        try
        {
            await waiter;
        }
        finally
        {
            waiter.Timer?.Cancel();
            foreach (var f in futures)
            {
                f.RemoveCallbackCore(WaitWaiter.OnCompletion, waiter);
            }
        }

        var done = new HashSet<Future>();
        var pending = new HashSet<Future>();
        foreach (var f in futures)
        {
            (f.Done ? done : pending).Add(f);
        }

        return (done, pending);
    }

    /// <summary>Throws for a NaN timeout; null and every other value are allowed.</summary>
    private static void CheckTimeout(double? timeout, string paramName)
    {
        if (timeout is double t && double.IsNaN(t))
        {
            throw new ArgumentOutOfRangeException(paramName, "The timeout is NaN: give a number of seconds, or null for none.");
        }
    }

    private static void CheckSameLoop(Future future, BaseEventLoop loop, string paramName)
    {
        if (!ReferenceEquals(future.LoopCore, loop))
        {
            throw new ArgumentException($"{future} belongs to another event loop than the running one; every future must belong to the running loop.", paramName);
        }
    }

    /// <summary>The future <c>Wait</c> awaits: finished by the futures' done callbacks or by the timer.</summary>
    private sealed class WaitWaiter : Future<VoidResult>
    {
        public static readonly Action<object?, object?> OnCompletion = static (f, w) => ((WaitWaiter)w!).Completed((Future)f!);

        private readonly WaitMode _mode;
        private int _left;

        public WaitWaiter(BaseEventLoop loop, int count, WaitMode mode) : base(loop)
        {
            _left = count;
            _mode = mode;
        }

        public TimerHandle? Timer { get; set; }

        private void Completed(Future future)
        {
            _left--;
            // As asyncio, FirstException reads the exception, which marks it observed.
            if (_left <= 0
                || _mode == WaitMode.FirstCompleted
                || (_mode == WaitMode.FirstException && !future.Cancelled && future.Exception() is not null))
            {
                Timer?.Cancel();
                TrySetResult(default);
            }
        }
    }
}
