using System;
using System.Runtime.CompilerServices;
using System.Runtime.Versioning;
using System.Threading;
using Microsoft.Extensions.Logging;

namespace Tulip;

/// <summary>
/// The subprocess transport on Linux, for every loop: the child's pidfd is watched like any fd (it turns
/// readable when the child exits) on a readiness loop, or by the process-wide <see cref="PidFdWatcher"/> thread on a
/// completion loop, which hands the exit to the loop; the child reaped with waitid(P_PIDFD) and signalled with pidfd_send_signal.
/// </summary>
/// <remarks>
/// A pidfd names the one process: waitid(P_PIDFD) reaps only this child, so System.Diagnostics.Process (whose
/// SIGCHLD handling waitpid()s only its own pids) and this transport never take each other's exit status; and a
/// signal through the pidfd cannot reach another process that reused the pid. The one exception is .NET's own:
/// when SIGCHLD was ignored at start-up, or the process is pid 1, the runtime reaps every child with
/// waitpid(-1) (dotnet/runtime pal_signal.c); the exit status is lost then and, as asyncio does for a child it
/// cannot find, the return code is 255, with a warning logged.
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed class PidFdSubprocessTransport : SubprocessTransport
{
    /// <summary>The return code of a child whose status someone else took (asyncio's choice).</summary>
    private const int UnknownReturnCode = 255;

    // The loop's own readiness, or null: then the process-wide PidFdWatcher thread watches the pidfd (a completion loop).
    private readonly IReadinessEventLoop? _readiness;
    private readonly Handle? _exitHandle;
    private readonly Action? _onWatcherFired;
    // The pidfd, until the child is reaped (then -1).
    private int _pidfd;

    internal PidFdSubprocessTransport(IEventLoop loop, int pid, int pidfd, ISubprocessProtocol protocol, string program)
        : base(loop, pid, protocol, program)
    {
        _pidfd = pidfd;
        if (loop is IReadinessEventLoop readiness)
        {
            _readiness = readiness;
            // The state is not the transport itself: a selector keeps the registration of an fd whose handle's state is an
            // open transport (a paused pipe still owns its fd), and the pidfd is closed once reaped, while this transport lives on.
            _exitHandle = readiness.CreateIoHandle(static box => box.Value!.OnPidFdReadable(), new StrongBox<PidFdSubprocessTransport>(this));
            readiness.SetReader(pidfd, _exitHandle);
        }
        else
        {
            _onWatcherFired = OnWatcherFired;
            PidFdWatcher.Shared.Watch(pidfd, _onWatcherFired);
        }
    }

    /// <summary>On the watcher thread: the pidfd turned readable; the loop reaps. A closed loop cannot, so the child is reaped here.</summary>
    private unsafe void OnWatcherFired()
    {
        try
        {
            Loop.CallSoonThreadSafe(OnPidFdReadable);
        }
        catch (InvalidOperationException)
        {
            // The loop is closed: no one will hear of the exit, but the child must not stay a zombie.
            int pidfd = Interlocked.Exchange(ref _pidfd, -1);
            if (pidfd >= 0)
            {
                Interop.SigInfo info = default;
                while (Interop.WaitId(Interop.P_PIDFD, pidfd, &info, Interop.WEXITED) < 0 && Interop.GetLastErrno() == Interop.Errno.EINTR)
                {
                }

                _ = Interop.Close(pidfd);
            }
        }
    }

    /// <inheritdoc/>
    protected override unsafe void SignalChild(int signal)
    {
        if (_pidfd < 0)
        {
            return;
        }

        if (Interop.PidFdSendSignal(_pidfd, signal, null, 0) < 0)
        {
            int errno = Interop.GetLastErrno();
            if (errno != Interop.Errno.ESRCH)
            {
                // ESRCH: it has exited and not been reaped yet; anything else is the caller's (EINVAL: no such signal).
                throw Interop.GetExceptionForErrno(errno, $"pidfd_send_signal(pid {Pid}, signal {signal})");
            }
        }
    }

    /// <summary>The pidfd is readable: the child has exited (or the wake-up is spurious); reap it.</summary>
    private unsafe void OnPidFdReadable()
    {
        if (_pidfd < 0)
        {
            return;
        }

        Interop.SigInfo info = default;
        int result;
        while ((result = Interop.WaitId(Interop.P_PIDFD, _pidfd, &info, Interop.WEXITED | Interop.WNOHANG)) < 0 &&
            Interop.GetLastErrno() == Interop.Errno.EINTR)
        {
        }

        int returnCode;
        if (result < 0)
        {
            int errno = Interop.GetLastErrno();
            if (errno != Interop.Errno.ECHILD)
            {
                // Not expected; throwing would leave the readable pidfd registered and spinning. Report it and end the watch.
                Loop.CallExceptionHandler(new ExceptionContext($"Cannot reap child {Pid}; reporting return code {UnknownReturnCode}")
                {
                    Exception = Interop.GetExceptionForErrno(errno, $"waitid(P_PIDFD, pid {Pid})"), Transport = this,
                });
            }
            else
            {
                (Loop as BaseEventLoop)?.Logger.LogWarning(
                    "Child {Pid} was reaped by someone else (the runtime reaps every child when SIGCHLD was ignored at start-up); reporting return code {Code}",
                    Pid, UnknownReturnCode);
            }

            returnCode = UnknownReturnCode;
        }
        else if (info.Pid == 0)
        {
            // Not exited yet (a spurious wake-up: on the watcher, a pidfd number reused during its poll). Watch on.
            if (_readiness is null)
            {
                PidFdWatcher.Shared.Watch(_pidfd, _onWatcherFired!);
            }

            return;
        }
        else
        {
            returnCode = info.Code == Interop.CLD_EXITED ? info.Status : -info.Status;
        }

        if (_readiness is not null)
        {
            _readiness.SetReader(_pidfd, null);
            _exitHandle!.Cancel();
        }
        else
        {
            PidFdWatcher.Shared.Unwatch(_pidfd); // reaped without the watcher's word (ECHILD): nothing to wait for any more
        }

        _ = Interop.Close(_pidfd);
        _pidfd = -1;
        OnExited(returnCode);
    }
}
