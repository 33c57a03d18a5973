using System;
using System.Runtime.CompilerServices;
using System.Runtime.Versioning;
using System.Threading;
using Microsoft.Extensions.Logging;
using Tulip.Diagnostics;

namespace Tulip;

/// <summary>
/// The subprocess transport of the posix_spawn implementation, for every loop: the child's pidfd is watched like any
/// fd (it turns readable when the child exits) on a readiness loop, or by the process-wide <see cref="PidFdWatcher"/>
/// thread on a completion loop, which hands the exit to the loop; the child is reaped with waitid(P_PIDFD) and
/// signalled with pidfd_send_signal. Where there is no pidfd (pidfd_open refused with ENOSYS or EPERM, or missing from
/// libc), the child is watched by pid: <see cref="SigChldWatcher"/> reaps it with waitid(P_PID, pid, WNOHANG) at each
/// SIGCHLD, and it is signalled with kill(2).
/// </summary>
/// <remarks>
/// <para>
/// A pidfd names the one process: waitid(P_PIDFD) reaps only this child, so System.Diagnostics.Process (whose
/// SIGCHLD handling waitpid()s only its own pids) and this transport never take each other's exit status; and a
/// signal through the pidfd cannot reach another process that reused the pid. Watched by pid, the same holds because
/// only this transport reaps its pid and it never signals after reaping (both under one lock): until it reaps, the pid
/// is its child's, zombie or not. The one exception is .NET's own: when SIGCHLD was ignored at start-up, or the process
/// is pid 1, the runtime reaps every child with waitpid(-1) (dotnet/runtime pal_signal.c); the exit status is lost then
/// and, as asyncio does for a child it cannot find, the return code is 255, with a warning logged.
/// </para>
/// <para>
/// A child that has exited is never signalled: every signal (Close's SIGKILL included) first tries to reap it, as
/// Python's Popen.send_signal polls first. When the loop closes with the child not reaped (a BaseEventLoop close hook),
/// the child is killed, unless it has exited, and its reaping goes to a watcher that outlives the loop: the
/// <see cref="PidFdWatcher"/> thread for a pidfd, the SIGCHLD watch for a pid. So a closed loop leaves neither a
/// running child nor a zombie. Nobody hears of the exit any more.
/// </para>
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed class PidFdSubprocessTransport : SubprocessTransport
{
    /// <summary>The return code of a child whose status someone else took (asyncio's choice).</summary>
    private const int UnknownReturnCode = 255;

    // Guards the fields below it: the loop thread signals and reaps; a watcher thread (PidFdWatcher's, or the SIGCHLD
    // handler's thread-pool thread) reaps by pid, or when the loop has closed; the thread that closes the loop kills.
    // Reaping and signalling under one lock: no signal can follow the reap and reach a process that reused the pid.
    private readonly object _gate = new();
    // The loop's own readiness (a pidfd on a readiness loop), or null.
    private readonly IReadinessEventLoop? _readiness;
    private readonly Handle? _exitHandle;
    private readonly Action _onWatcherFired;
    private readonly Action? _onSigChld;
    // Watched by pid (SIGCHLD), not by pidfd.
    private readonly bool _byPid;
    // The pidfd, until the child is reaped; -1 when watched by pid.
    private int _pidfd;
    // The pidfd is registered with _readiness (until reaped, or the loop closes).
    private bool _registered;
    // The pidfd is watched by PidFdWatcher (its callback not yet run).
    private bool _watching;
    private bool _reaped;
    // The loop has closed: the exit is nobody's news, and the reaping is done off the loop.
    private bool _loopClosed;
    private int _signalsSent;

    internal PidFdSubprocessTransport(IEventLoop loop, int pid, int pidfd, ISubprocessProtocol protocol, string program)
        : base(loop, pid, protocol, program)
    {
        _pidfd = pidfd;
        _byPid = pidfd < 0;
        _onWatcherFired = OnWatcherFired;
        // First, as it refuses a closed loop before anything is watched.
        (loop as BaseEventLoop)?.AddCloseHook(this, OnLoopClosing);
        try
        {
            if (_byPid)
            {
                // Last: its first check may reap the child at once (the exit is posted to the loop).
                _onSigChld = OnSigChld;
                SigChldWatcher.Shared.Watch(pid, _onSigChld);
            }
            else if (loop is IReadinessEventLoop readiness)
            {
                _readiness = readiness;
                // The state is not the transport itself: a selector keeps the registration of an fd whose handle's state is an
                // open transport (a paused pipe still owns its fd), and the pidfd is closed once reaped, while this transport lives on.
                _exitHandle = readiness.CreateIoHandle(static box => box.Value!.OnPidFdReadable(), new StrongBox<PidFdSubprocessTransport>(this));
                readiness.SetReader(pidfd, _exitHandle);
                _registered = true;
            }
            else
            {
                lock (_gate)
                {
                    PidFdWatcher.Shared.Watch(pidfd, _onWatcherFired);
                    _watching = true;
                }
            }
        }
        catch
        {
            (loop as BaseEventLoop)?.RemoveCloseHook(this);
            throw;
        }
    }

    /// <summary>Whether the child is watched by pid through SIGCHLD (no pidfd), for tests.</summary>
    internal bool WatchedByPid => _byPid;

    /// <summary>How many signals were sent to the child (for tests: none to a child that had exited).</summary>
    internal int SignalsSent => Volatile.Read(ref _signalsSent);

    /// <inheritdoc/>
    protected override void SignalChild(int signal)
    {
        Exit exit;
        lock (_gate)
        {
            if (_reaped)
            {
                return; // reaped off the loop, its exit on the way
            }

            // A child that has exited is not signalled: it is reaped now.
            if (!TryReapLocked(out exit))
            {
                SendLocked(signal);
                return;
            }
        }

        DeliverExit(exit);
    }

    /// <summary>On the loop thread: the pidfd is readable (the child has exited, or the wake-up is spurious).</summary>
    private void OnPidFdReadable()
    {
        Exit exit;
        lock (_gate)
        {
            if (_reaped)
            {
                return;
            }

            if (!TryReapLocked(out exit))
            {
                // Not exited yet (on the watcher, a pidfd number reused during its poll). Watch on.
                if (!_registered && !_watching && !_loopClosed)
                {
                    PidFdWatcher.Shared.Watch(_pidfd, _onWatcherFired);
                    _watching = true;
                }

                return;
            }
        }

        DeliverExit(exit);
    }

    /// <summary>On the PidFdWatcher thread: the pidfd turned readable; the loop reaps, or this thread once the loop is closed.</summary>
    private void OnWatcherFired()
    {
        bool loopClosed;
        lock (_gate)
        {
            _watching = false;
            loopClosed = _loopClosed;
        }

        if (!loopClosed)
        {
            try
            {
                Loop.CallSoonThreadSafe(OnPidFdReadable);
                return;
            }
            catch (InvalidOperationException)
            {
                // The loop is closed (its close hook may not have run yet, or the loop has none).
            }
        }

        lock (_gate)
        {
            if (!_reaped && !TryReapLocked(out _) && !_watching)
            {
                PidFdWatcher.Shared.Watch(_pidfd, _onWatcherFired); // spurious: the child still runs
                _watching = true;
            }
        }
    }

    /// <summary>At a SIGCHLD (a thread-pool thread) or as the watch is made: reaps the child if it has exited, and posts the exit.</summary>
    private void OnSigChld()
    {
        Exit exit;
        lock (_gate)
        {
            if (_reaped || !TryReapLocked(out exit))
            {
                return;
            }

            if (_loopClosed)
            {
                return;
            }
        }

        try
        {
            Loop.CallSoonThreadSafe(() => DeliverExit(exit));
        }
        catch (InvalidOperationException)
        {
            // The loop closed meanwhile: the child is reaped, and no one will hear of it.
        }
    }

    /// <summary>
    /// The loop closes (on the thread that closes it; the loop does not run): a child that has exited is reaped and not
    /// signalled; one that still runs is killed, and reaped off the loop once it has died.
    /// </summary>
    private void OnLoopClosing()
    {
        bool killed = false;
        lock (_gate)
        {
            _loopClosed = true;
            if (_registered)
            {
                // The selector closes next; the PidFdWatcher takes the pidfd over below.
                _registered = false;
                _exitHandle!.Cancel();
            }

            if (_reaped || TryReapLocked(out _))
            {
                return;
            }

            // Watched first, so that a failing kill still leaves the child watched.
            if (!_byPid && !_watching)
            {
                PidFdWatcher.Shared.Watch(_pidfd, _onWatcherFired);
                _watching = true;
            }

            SendLocked(Interop.SIGKILL);
            killed = true;
        }

        if (killed && Loop is BaseEventLoop { Debug: true } loop)
        {
            Log.ChildKilledAtLoopClose(loop.Logger, Pid, this);
        }
    }

    /// <summary>On the loop thread: the child has been reaped.</summary>
    private void DeliverExit(Exit exit)
    {
        (Loop as BaseEventLoop)?.RemoveCloseHook(this);
        if (exit.Errno == Interop.Errno.ECHILD)
        {
            if (Loop is BaseEventLoop { Logger: var logger })
            {
                Log.ChildReapedElsewhere(logger, Pid, UnknownReturnCode);
            }
        }
        else if (exit.Errno != 0)
        {
            Loop.CallExceptionHandler(new ExceptionContext($"Cannot reap child {Pid}; reporting return code {UnknownReturnCode}")
            {
                Exception = Interop.GetExceptionForErrno(exit.Errno, _byPid ? $"waitid(P_PID, {Pid})" : $"waitid(P_PIDFD, pid {Pid})"),
                Transport = this,
            });
        }

        OnExited(exit.ReturnCode);
    }

    /// <summary>
    /// Reaps the child if it has exited (WNOHANG), and then releases the watch and the pidfd; false if it still runs.
    /// Under <see cref="_gate"/>, not yet reaped. Registered with the readiness loop only on the loop thread.
    /// </summary>
    private unsafe bool TryReapLocked(out Exit exit)
    {
        Interop.SigInfo info = default;
        int result;
        while ((result = _byPid
                   ? Interop.WaitId(Interop.P_PID, Pid, &info, Interop.WEXITED | Interop.WNOHANG)
                   : Interop.WaitId(Interop.P_PIDFD, _pidfd, &info, Interop.WEXITED | Interop.WNOHANG)) < 0 &&
               Interop.GetLastErrno() == Interop.Errno.EINTR)
        {
        }

        if (result < 0)
        {
            // ECHILD: someone else reaped it. Anything else is not expected; either way there is nothing to wait for any more.
            exit = new Exit(UnknownReturnCode, Interop.GetLastErrno());
        }
        else if (info.Pid == 0)
        {
            exit = default;
            return false;
        }
        else
        {
            exit = new Exit(info.Code == Interop.CLD_EXITED ? info.Status : -info.Status, 0);
        }

        _reaped = true;
        if (_byPid)
        {
            SigChldWatcher.Shared.Unwatch(Pid);
            return true;
        }

        if (_registered)
        {
            _registered = false;
            _readiness!.SetReader(_pidfd, null);
            _exitHandle!.Cancel();
        }

        if (_watching)
        {
            _watching = false;
            PidFdWatcher.Shared.Unwatch(_pidfd);
        }

        _ = Interop.Close(_pidfd);
        _pidfd = -1;
        return true;
    }

    /// <summary>Sends <paramref name="signal"/> to the child, not reaped yet; under <see cref="_gate"/>.</summary>
    private unsafe void SendLocked(int signal)
    {
        int result = _byPid ? Interop.Kill(Pid, signal) : Interop.PidFdSendSignal(_pidfd, signal, null, 0);
        if (result == 0)
        {
            Interlocked.Increment(ref _signalsSent);
            return;
        }

        int errno = Interop.GetLastErrno();
        if (errno != Interop.Errno.ESRCH)
        {
            // ESRCH: it has exited meanwhile and is not reaped yet; anything else is the caller's (EINVAL: no such signal).
            throw Interop.GetExceptionForErrno(errno, _byPid ? $"kill(pid {Pid}, signal {signal})" : $"pidfd_send_signal(pid {Pid}, signal {signal})");
        }
    }

    /// <summary>A reaped child's return code (asyncio's form), and the errno if waitid failed (then the code is 255).</summary>
    private readonly record struct Exit(int ReturnCode, int Errno);
}
