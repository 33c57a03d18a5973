using System;
using System.Collections.Generic;
using System.Runtime.Versioning;
using System.Threading;

namespace Tulip;

/// <summary>
/// The library's <see cref="ISubprocessTransportFactory"/> for every loop on Linux: posix_spawn
/// (<see cref="PosixSpawn"/>), a pidfd watched by the loop if it has fd readiness, else by the process-wide
/// <see cref="PidFdWatcher"/> (<see cref="PidFdSubprocessTransport"/>), and pipes from the loop's own pipe API (the
/// selector's readiness pipes, the proactor's completion pipes).
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class PidFdSubprocessTransportFactory : ISubprocessTransportFactory
{
    internal static readonly PidFdSubprocessTransportFactory Instance = new();

    private PidFdSubprocessTransportFactory()
    {
    }

    /// <inheritdoc/>
    public async LoopTask<(ISubprocessTransport Transport, TProtocol Protocol)> SpawnAsync<TProtocol>(IEventLoop loop, Func<TProtocol> protocolFactory,
        string program, IReadOnlyList<string> arguments, SubprocessOptions options, CancellationToken cancellationToken)
        where TProtocol : ISubprocessProtocol
    {
        ArgumentNullException.ThrowIfNull(loop);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var protocol = protocolFactory() ?? throw new InvalidOperationException("The protocol factory returned null.");
        var child = PosixSpawn.Start(program, arguments, options);
        PidFdSubprocessTransport transport;
        try
        {
            transport = new PidFdSubprocessTransport(loop, child.Pid, child.PidFd, protocol, program);
        }
        catch
        {
            PosixSpawn.KillAndReap(child.Pid);
            _ = Interop.Close(child.PidFd);
            foreach (int fd in (ReadOnlySpan<int>)[child.StdinFd, child.StdoutFd, child.StderrFd])
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
