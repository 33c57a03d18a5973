using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.Extensions.Logging;
using Tulip.Hosting.Diagnostics;

namespace Tulip.Hosting;

public sealed partial class TulipLoopService
{
    // Loop iterations the cancelled tasks get once the host's timeout has expired, before the loop closes
    // without them: enough for a task to see its CancelledError and run a finally that does not wait on I/O.
    // Counted in iterations, not time, so it is the same on a loaded machine.
    private const int IterationsAfterHostTimeout = 3;

    /// <summary>
    /// One loop's side of a shutdown: the token its handlers see (<see cref="TulipServerContext.Stopping"/>) and the
    /// future that says the host's shutdown timeout expired, completed on the loop. Made on the loop thread.
    /// </summary>
    private sealed class LoopShutdownState(CancellationTokenSource stopping, Future<VoidResult> hostTimeout)
    {
        public CancellationTokenSource Stopping { get; } = stopping;

        public Future<VoidResult> HostTimeout { get; } = hostTimeout;

        public bool HostTimedOut => HostTimeout.Done;
    }

    /// <summary>The graceful shutdown, on the loop thread: stop accepting, drain, close, abort, then the tasks.</summary>
    /// <param name="loop">The loop.</param>
    /// <param name="servers">Every server started on this loop.</param>
    /// <param name="own">The tasks of the shutdown itself (MainAsync's), which are not cancelled.</param>
    /// <param name="state">This loop's stopping token and host-timeout future.</param>
    private async LoopTask<TulipShutdownReport> ShutdownAsync(IEventLoop loop, List<Server> servers, HashSet<Future> own, LoopShutdownState state)
    {
        own.Add(Tasks.CurrentTask()!.AsFuture);
        foreach (var server in servers)
        {
            server.Close(); // stop accepting: the listening sockets close; the connections stay
        }

        if (_logger.IsEnabled(LogLevel.Information))
        {
            // Described into a local: CA1873 does not see the IsEnabled guard around a [LoggerMessage] call (dotnet/sdk#50893).
            string drain = Describe(_options.DrainTimeout);
            Log.StoppedAccepting(_logger, drain);
        }

        try
        {
            state.Stopping.Cancel(); // TulipServerContext.Stopping: its callbacks run here, on the loop thread
        }
        catch (AggregateException ex)
        {
            Log.StoppingCallbackFailed(_logger, ex);
        }

        var outcome = TulipShutdownOutcome.Drained;
        var allClosed = WaitAllClosedAsync(servers);
        if (!await WaitOrHostTimeoutAsync(state, allClosed, _options.DrainTimeout))
        {
            outcome = TulipShutdownOutcome.Closed;
            if (_logger.IsEnabled(LogLevel.Information))
            {
                string close = Describe(_options.CloseTimeout);
                Log.ClosingConnections(_logger, close);
            }

            foreach (var server in servers)
            {
                server.CloseClients();
            }

            if (!await WaitOrHostTimeoutAsync(state, allClosed, state.HostTimedOut ? TimeSpan.Zero : _options.CloseTimeout))
            {
                outcome = TulipShutdownOutcome.Aborted;
                if (_logger.IsEnabled(LogLevel.Warning))
                {
                    Log.AbortingConnections(_logger,
                        state.HostTimedOut ? " (the host's shutdown timeout expired)" : "");
                }

                foreach (var server in servers)
                {
                    server.AbortClients();
                }

                await allClosed; // an aborted connection's ConnectionLost runs on the next iteration
            }
        }

        var (cancelled, left) = await CancelTasksAsync(loop, own, state);
        var report = new TulipShutdownReport(outcome, state.HostTimedOut, cancelled, left);
        if (_logger.IsEnabled(LogLevel.Information))
        {
            Log.Stopped(_logger,
                outcome, cancelled, left, state.HostTimedOut ? " (the host's shutdown timeout expired)" : "");
        }
        return report;
    }

    private static async LoopTask WaitAllClosedAsync(List<Server> servers)
    {
        foreach (var server in servers)
        {
            await server.WaitClosedAsync();
        }
    }

    /// <summary>
    /// Waits for <paramref name="future"/> up to <paramref name="timeout"/> (infinite: no limit) or until the host's
    /// shutdown timeout expires, whichever is first; true if <paramref name="future"/> is done.
    /// </summary>
    private static async LoopTask<bool> WaitOrHostTimeoutAsync(LoopShutdownState state, Future future, TimeSpan timeout)
    {
        if (!future.Done && !state.HostTimedOut && timeout != TimeSpan.Zero)
        {
            double? seconds = timeout == Timeout.InfiniteTimeSpan ? null : timeout.TotalSeconds;
            await Tasks.Wait([future, state.HostTimeout], seconds, WaitMode.FirstCompleted);
        }

        return future.Done;
    }

    /// <summary>Cancels every task still on the loop (but this one) and awaits them, unless the host's timeout expires.</summary>
    private async LoopTask<(int Cancelled, int Left)> CancelTasksAsync(IEventLoop loop, HashSet<Future> own, LoopShutdownState state)
    {
        // The shutdown's own tasks are left out. ILoopTask views are not compared (two views of one task are
        // different objects): their futures are.
        own.Add(Tasks.CurrentTask()!.AsFuture);
        var tasks = loop.AllTasks().Where(t => !own.Contains(t.AsFuture) && !t.Done).Select(static t => t.AsFuture).ToList();
        if (tasks.Count == 0)
        {
            return (0, 0);
        }

        foreach (var task in tasks)
        {
            task.Cancel("The host is stopping.");
        }

        var all = Tasks.Gather(loop, tasks, returnExceptions: true);
        if (!await WaitOrHostTimeoutAsync(state, all, Timeout.InfiniteTimeSpan))
        {
            for (int i = 0; i < IterationsAfterHostTimeout && !all.Done; i++)
            {
                await Tasks.Yield();
            }
        }

        int left = 0;
        foreach (var task in tasks)
        {
            if (!task.Done)
            {
                left++;
                Log.TaskLeftRunning(_logger, task);
            }
            else if (!task.Cancelled && task.Exception() is { } ex)
            {
                loop.CallExceptionHandler(new ExceptionContext("A task failed while the host was stopping") { Exception = ex, Future = task });
            }
        }

        return (tasks.Count, left);
    }

    private static string Describe(TimeSpan period) =>
        period == Timeout.InfiniteTimeSpan ? "until the host's shutdown timeout" : $"{period.TotalSeconds:0.###} s";
}
