using System;
using System.Collections.Generic;
using System.Runtime.Versioning;
using System.Threading;

namespace Tulip;

/// <summary>
/// The library's <see cref="ISubprocessTransportFactory"/> for every loop on Linux: posix_spawn
/// (<see cref="PosixSpawn"/>), a pidfd watched by the loop if it has fd readiness, else by the process-wide
/// <see cref="PidFdWatcher"/>, or where this system has no pidfd by pid at SIGCHLD (<see cref="SigChldWatcher"/>;
/// <see cref="PidFdSubprocessTransport"/>), and pipes from the loop's own pipe API (the
/// selector's readiness pipes, the proactor's completion pipes).
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class PidFdSubprocessTransportFactory : ISubprocessTransportFactory
{
    /// <summary>The loop's default on Linux: each child watched by its pidfd, or by pid where this system has no pidfd.</summary>
    internal static readonly PidFdSubprocessTransportFactory Instance = new(usePidFd: true);

    /// <summary>Every child watched by pid through SIGCHLD (<see cref="SigChldWatcher"/>), as on a system without pidfd: for tests.</summary>
    internal static readonly PidFdSubprocessTransportFactory WithoutPidFd = new(usePidFd: false);

    private readonly bool _usePidFd;

    private PidFdSubprocessTransportFactory(bool usePidFd)
    {
        _usePidFd = usePidFd;
    }

    /// <inheritdoc/>
    public async LoopTask<(ISubprocessTransport Transport, TProtocol Protocol)> SpawnAsync<TProtocol>(IEventLoop loop, Func<TProtocol> protocolFactory,
        string program, IReadOnlyList<string> arguments, SubprocessOptions options, CancellationToken cancellationToken)
        where TProtocol : ISubprocessProtocol
    {
        ArgumentNullException.ThrowIfNull(loop);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var protocol = protocolFactory() ?? throw new InvalidOperationException("The protocol factory returned null.");
        var child = PosixSpawn.Start(program, arguments, options, _usePidFd);
        PidFdSubprocessTransport transport;
        try
        {
            transport = new PidFdSubprocessTransport(loop, child.Pid, child.PidFd, protocol, program);
        }
        catch
        {
            PosixSpawn.KillAndReap(child.Pid);
            foreach (int fd in (ReadOnlySpan<int>)[child.PidFd, child.StdinFd, child.StdoutFd, child.StderrFd])
            {
                if (fd >= 0)
                {
                    _ = Interop.Close(fd);
                }
            }

            throw;
        }

        try
        {
            await transport.ConnectPipesAsync(child.StdinFd, child.StdoutFd, child.StderrFd);
            var waiter = loop.CreateFuture<VoidResult>();
            transport.Start(waiter);
            await waiter;
        }
        catch
        {
            // Kills the child; the pidfd watch reaps it as the loop runs on. A protocol whose ConnectionMade never ran
            // hears nothing; one whose ConnectionMade threw sees the rest of the lifetime (ConnectionLost last).
            transport.Abandon();
            transport.Close();
            throw;
        }

        return (transport, protocol);
    }
}
