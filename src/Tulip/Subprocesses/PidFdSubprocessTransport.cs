using System;
using System.Runtime.CompilerServices;
using System.Runtime.Versioning;
using Microsoft.Extensions.Logging;

namespace Tulip;

/// <summary>
/// The subprocess transport of readiness loops on Linux: the child's pidfd is watched like any fd (it turns
/// readable when the child exits), the child reaped with waitid(P_PIDFD) and signalled with pidfd_send_signal.
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

    private readonly IReadinessEventLoop _readiness;
    private readonly Handle _exitHandle;
    // The pidfd, until the child is reaped (then -1).
    private int _pidfd;

    internal PidFdSubprocessTransport(IReadinessEventLoop loop, int pid, int pidfd, ISubprocessProtocol protocol, string program)
        : base(loop, pid, protocol, program)
    {
        _readiness = loop;
        _pidfd = pidfd;
        // The state is not the transport itself: a selector keeps the registration of an fd whose handle's state is an
        // open transport (a paused pipe still owns its fd), and the pidfd is closed once reaped, while this transport lives on.
        _exitHandle = loop.CreateIoHandle(static box => box.Value!.OnPidFdReadable(), new StrongBox<PidFdSubprocessTransport>(this));
        loop.SetReader(pidfd, _exitHandle);
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
            return; // not exited yet
        }
        else
        {
            returnCode = info.Code == Interop.CLD_EXITED ? info.Status : -info.Status;
        }

        _readiness.SetReader(_pidfd, null);
        _exitHandle.Cancel();
        _ = Interop.Close(_pidfd);
        _pidfd = -1;
        OnExited(returnCode);
    }
}
