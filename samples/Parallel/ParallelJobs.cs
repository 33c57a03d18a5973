using System;
using System.Collections.Generic;
using System.Text;
using System.Threading;
using Tulip.Streams;
using Tulip.Synchronization;
using Semaphore = Tulip.Synchronization.Semaphore;
using JobQueue = Tulip.Queues.Queue<Tulip.LoopTask<Tulip.Samples.Parallel.JobResult>?>;

namespace Tulip.Samples.Parallel;

/// <summary>What one job wrote, and whether it failed: written to parallel's own stdout and stderr in input order.</summary>
internal readonly record struct JobResult(string Command, byte[] Output, byte[] Error, bool Failed);

/// <summary>
/// The heart of scripts/parallel, on the running loop: reads command lines, runs each as <c>SHELL -c LINE</c> in a process
/// group of its own (stdin /dev/null, stdout and stderr pipes), at most <see cref="ParallelSettings.Jobs"/> at once, and
/// hands each job's output to the writer in input order (GNU parallel's <c>--keep-order</c>) once the job has ended.
/// </summary>
/// <remarks>
/// <para>A job has ended when its shell has exited and both pipes are at EOF, so a background process that still holds
/// them belongs to the job. Its timeout (and <c>stop</c>) ends the whole group: SIGTERM, then SIGKILL
/// <see cref="ParallelSettings.KillDelay"/> later to whatever of the group is still alive, and the job is not reported
/// until its group is empty or that SIGKILL has been sent. The group id is the leader's pid; the kernel does not give it
/// to a new process while any member of the group is alive, which is why the SIGKILL goes only to a group seen alive.</para>
/// <para>Everything here runs on the loop thread; <c>nextCommand</c> and <c>write</c> are awaited one at a time.</para>
/// </remarks>
internal static class ParallelJobs
{
    /// <summary>The highest exit status that counts failed jobs (GNU parallel's cap); above it are signals and usage errors.</summary>
    public const int MaxFailures = 101;

    /// <summary>
    /// Runs every command <paramref name="nextCommand"/> gives (null: no more) and returns the number of failed jobs, at most
    /// <see cref="MaxFailures"/>. Once <paramref name="stop"/> is cancelled no job starts, every running job is ended as
    /// by its timeout, and the call returns when all have ended and been written.
    /// </summary>
    public static async LoopTask<int> RunAsync(Func<CancellationToken, LoopTask<string?>> nextCommand, ParallelSettings settings,
        Func<JobResult, LoopTask> write, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(nextCommand);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(write);
        var loop = EventLoop.GetRunningLoop();

        // Ended by the caller's stop, or by a writer that failed (its exception is rethrown once every job has ended).
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var slots = new Semaphore(settings.Jobs);
        var started = new JobQueue();
        var writer = loop.CreateTask(() => WriteInOrderAsync(started, write, ending));
        var jobs = new List<LoopTask<JobResult>>();
        try
        {
            while (!ending.IsCancellationRequested)
            {
                var slot = await slots.AcquireAsync(ending.Token);
                string? command;
                try
                {
                    command = await nextCommand(ending.Token);
                }
                catch
                {
                    slot.Dispose();
                    throw;
                }

                if (command is null)
                {
                    slot.Dispose();
                    break;
                }

                if (command.Length == 0)
                {
                    slot.Dispose();
                    continue;
                }

                var job = loop.CreateTask(() => RunJobAsync(command, settings, slot, ending.Token));
                jobs.Add(job);
                started.PutNowait(job);
            }
        }
        catch (OperationCanceledException) when (ending.IsCancellationRequested)
        {
            // Stopped while waiting for a slot or a line: the running jobs are being ended (their own registrations).
        }
        finally
        {
            started.PutNowait(null);
        }

        // Every job ends (by itself, or ended by its stop registration) before anything is rethrown, so no child is left.
        foreach (var job in jobs)
        {
            try
            {
                await job;
            }
            catch
            {
                // The writer has seen (or will see) it; here only the ending counts.
            }
        }

        return await writer;
    }

    private static async LoopTask<int> WriteInOrderAsync(JobQueue started, Func<JobResult, LoopTask> write,
        CancellationTokenSource ending)
    {
        int failed = 0;
        try
        {
            while (await started.GetAsync() is { } job)
            {
                var result = await job;
                if (result.Failed)
                {
                    failed = Math.Min(failed + 1, MaxFailures);
                }

                await write(result);
            }
        }
        catch
        {
            ending.Cancel(); // end the jobs; RunAsync rethrows this once they have ended
            throw;
        }

        return failed;
    }

    private static async LoopTask<JobResult> RunJobAsync(string command, ParallelSettings settings, SemaphoreReleaser slot, CancellationToken stop)
    {
        using var _ = slot;
        var loop = EventLoop.GetRunningLoop();
        var options = new SubprocessOptions
        {
            StandardInput = SubprocessStdio.DevNull,
            ProcessGroup = 0, // a group of its own, led by the shell: kill(-pid) reaches all it forks
        };

        LoopProcess process;
        try
        {
            // Not cancelled by stop: a job that has started is ended through its group (below), as every other one is.
            process = await LoopProcess.CreateExecAsync(settings.Shell, ["-c", command], options, cancellationToken: CancellationToken.None);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return new JobResult(command, [], Encoding.UTF8.GetBytes($"parallel: cannot start '{command}': {e.Message}\n"), Failed: true);
        }

        await using (process)
        {
            var ender = new GroupEnder(loop, process.Pid, settings.KillDelay);
            byte[]? output, error;
            var timeout = settings.Timeout is { } seconds ? loop.CallLater(seconds, ender.Begin) : null;
            try
            {
                using var stopping = stop.Register(ender.Begin);
                (output, error) = await process.CommunicateAsync(cancellationToken: CancellationToken.None); // stop ends the group instead
            }
            finally
            {
                // The shell is reaped and the pipes are closed: no new reason to signal the group from here on.
                timeout?.Cancel();
            }

            await ender.FinishAsync();
            int code = process.ReturnCode ?? -1;
            return new JobResult(command, output ?? [], error ?? [], Failed: code != 0);
        }
    }

    /// <summary>Ends one job's process group: SIGTERM now, SIGKILL after the delay to what is still alive. On the loop thread.</summary>
    private sealed class GroupEnder(IEventLoop loop, int pgid, double killDelay)
    {
        private Future<VoidResult>? _killed;
        private TimerHandle? _killTimer;

        /// <summary>Starts ending the group (once; a second reason, timeout and stop, changes nothing).</summary>
        public void Begin()
        {
            if (_killed is not null)
            {
                return;
            }

            var killed = _killed = loop.CreateFuture<VoidResult>();
            ProcessGroups.Signal(pgid, ProcessGroups.SigTerm);
            _killTimer = loop.CallLater(killDelay, () =>
            {
                ProcessGroups.Signal(pgid, ProcessGroups.SigKill);
                killed.TrySetResult(default);
            });
        }

        /// <summary>
        /// After the shell was reaped and the pipes closed: a group being ended that is still alive waits for its SIGKILL;
        /// one that is empty has its SIGKILL cancelled, since its id may be given to a new process from now on.
        /// </summary>
        public async LoopTask FinishAsync()
        {
            if (_killed is not { Done: false } killed)
            {
                return;
            }

            if (ProcessGroups.Alive(pgid))
            {
                await killed;
            }
            else
            {
                _killTimer?.Cancel();
            }
        }
    }
}
