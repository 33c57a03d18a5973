using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;

namespace Tulip;

/// <summary>
/// The portable subprocess transport: a child started by <see cref="Process"/>, its exit heard through
/// <see cref="Process.Exited"/> (raised on a pool thread, posted to the loop with <see cref="IEventLoop.CallSoonThreadSafe(Action)"/>),
/// its pipes the redirected streams joined to the loop's own pipe transports (<see cref="SubprocessTransport"/>),
/// so the order, the flow control and the broken-pipe rules are the same as <see cref="PidFdSubprocessTransport"/>'s.
/// </summary>
/// <remarks>
/// What Process gives and what it does not: the return code is <see cref="Process.ExitCode"/>, which on Unix is
/// 128 + N for a child killed by signal N (the runtime keeps no wait status), not asyncio's -N, since that cannot be
/// told from a child that exited with 128 + N; the only signal it can send is SIGKILL (<see cref="Process.Kill()"/>),
/// and on Windows SIGTERM too, as asyncio's Windows <c>terminate</c> (TerminateProcess). Other signals are refused
/// with <see cref="NotSupportedException"/>. The runtime reaps the child (its own SIGCHLD handling), so no zombie
/// is left whether or not the loop still runs. A child that has exited is not killed (see <see cref="KillIfRunning"/>); one
/// that still runs when the loop closes is killed then. All state is the loop thread's, but for <see cref="OnExitedThreadSafe"/>.
/// </remarks>
internal sealed class ProcessSubprocessTransport : SubprocessTransport
{
    // POSIX's numbers, as the base's.
    private const int SigTerm = 15;
    private const int SigKill = 9;

    // The child, until the transport has finished (then disposed and null). Loop thread; the Exited handler reads it only
    // when the loop is closed, when the loop thread no longer runs callbacks.
    private Process? _process;
    // Drains of the streams given /dev/null (see ProcessSubprocessTransportFactory): closed when the transport finishes.
    private readonly List<IBaseTransport> _drains = [];

    private int _signalsSent;

    internal ProcessSubprocessTransport(IEventLoop loop, Process process, ISubprocessProtocol protocol, string program)
        : base(loop, process.Id, protocol, program)
    {
        _process = process;
        (loop as BaseEventLoop)?.AddCloseHook(this, OnLoopClosing);
    }

    /// <summary>How many times the child was killed (for tests: never once it had exited).</summary>
    internal int SignalsSent => Volatile.Read(ref _signalsSent);

    /// <summary>Keeps a drain (a read pipe that discards), to close when the transport finishes.</summary>
    internal void AddDrain(IBaseTransport drain) => _drains.Add(drain);

    /// <summary>
    /// On the thread that raised <see cref="Process.Exited"/>: hands the exit to the loop. A closed loop will not hear of
    /// it; the runtime has reaped the child, and the Process is disposed here.
    /// </summary>
    internal static void OnExitedThreadSafe(IEventLoop loop, Process process, Func<ProcessSubprocessTransport?> transport)
    {
        try
        {
            loop.CallSoonThreadSafe(() => transport()?.OnProcessExited());
        }
        catch (InvalidOperationException)
        {
            // Under the lock the close hook kills in: it never kills a disposed Process (nor one that has exited).
            lock (process)
            {
                process.Dispose();
            }
        }
    }

    /// <summary>On the loop thread: the child has exited (and been reaped by the runtime).</summary>
    private void OnProcessExited()
    {
        if (_process is { } process && ReturnCode is null)
        {
            (Loop as BaseEventLoop)?.RemoveCloseHook(this);
            OnExited(process.ExitCode);
        }
    }

    /// <summary>
    /// The loop closes (on the thread that closes it; the loop does not run) before the child's exit was heard: a child
    /// that still runs is killed; the runtime reaps it, and the Exited handler, finding the loop closed, disposes the Process.
    /// </summary>
    private void OnLoopClosing()
    {
        if (_process is not { } process || ReturnCode is not null)
        {
            return;
        }

        lock (process)
        {
            KillIfRunning(process);
        }
    }

    /// <summary>Kills the child unless it has exited or its Process is disposed.</summary>
    /// <remarks>
    /// On Unix, <see cref="Process.HasExited"/> turns true only once the runtime's SIGCHLD handling has reaped the child, so
    /// a zombie still looks alive to it, and <see cref="Process.Kill()"/> has a window between that check and kill(2) in which
    /// the runtime may reap the child and its pid be reused. Where Tulip's Linux interop is available, neither happens: the
    /// child is held by a pidfd opened before HasExited is asked (false then: the runtime had not reaped it, so the pidfd is
    /// this child's), a zombie is seen with waitid(WNOWAIT), which leaves its status to the runtime, and the signal goes
    /// through the pidfd. Elsewhere Process.Kill's own checks are what there is (on Windows it holds a handle: no window).
    /// </remarks>
    private void KillIfRunning(Process process)
    {
        try
        {
            if (LinuxInterop.IsAvailable && TryKillThroughPidFd(process))
            {
                return;
            }

            if (process.HasExited)
            {
                return;
            }

            process.Kill();
            Interlocked.Increment(ref _signalsSent);
        }
        catch (InvalidOperationException)
        {
            // It exited (and was reaped) since, or the Exited handler disposed it: nothing to signal.
        }
    }

    /// <summary>The Linux way of <see cref="KillIfRunning"/>; false if this system has no pidfd (then Process.Kill is used).</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private unsafe bool TryKillThroughPidFd(Process process)
    {
        int pidfd;
        try
        {
            pidfd = Interop.PidFdOpen(process.Id, 0);
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }

        if (pidfd < 0)
        {
            // ESRCH: reaped already (by the runtime), and not reused yet; nothing to kill. ENOSYS, EPERM: no pidfd here.
            return Interop.GetLastErrno() == Interop.Errno.ESRCH;
        }

        try
        {
            if (process.HasExited)
            {
                return true; // reaped before the pidfd was opened: it may name another process
            }

            Interop.SigInfo info = default;
            if (Interop.WaitId(Interop.P_PIDFD, pidfd, &info, Interop.WEXITED | Interop.WNOHANG | Interop.WNOWAIT) == 0 && info.Pid != 0)
            {
                return true; // a zombie, the runtime's to reap: not signalled
            }

            if (Interop.PidFdSendSignal(pidfd, SigKill, null, 0) == 0)
            {
                Interlocked.Increment(ref _signalsSent);
            }

            return true;
        }
        finally
        {
            _ = Interop.Close(pidfd);
        }
    }

    /// <inheritdoc/>
    protected override void SignalChild(int signal)
    {
        if (signal is < 1 or > 64)
        {
            throw new ArgumentException($"{signal} is no signal number (1 to 64).", nameof(signal));
        }

        if (signal != SigKill && !(signal == SigTerm && OperatingSystem.IsWindows()))
        {
            throw new NotSupportedException(
                $"Signal {signal}: {nameof(ProcessSubprocessTransportFactory)} runs the child with System.Diagnostics.Process, which can only kill it " +
                "(SIGKILL; on Windows SIGTERM too, as TerminateProcess). Other signals need the posix_spawn implementation " +
                "(PidFdSubprocessTransportFactory, the default on Linux when Tulip's Linux interop is available).");
        }

        if (_process is { } process)
        {
            KillIfRunning(process);
        }
    }

    /// <inheritdoc/>
    protected override void OnFinished()
    {
        foreach (var drain in _drains)
        {
            drain.Close();
        }

        _drains.Clear();
        // Process does not close the redirected streams once they were read from it (the pipe transports own them now);
        // this releases its handle and its wait registration.
        _process?.Dispose();
        _process = null;
    }
}
