using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Threading;
using System.Runtime.Versioning;

namespace Tulip;

/// <summary>
/// The library's <see cref="IPipeTransportFactory"/> for every <see cref="IReadinessEventLoop"/>:
/// pipe transports driven by fd readiness and non-blocking read(2)/write(2), as asyncio's unix loop.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class ReadinessPipeTransportFactory : IPipeTransportFactory
{
    internal static readonly ReadinessPipeTransportFactory Instance = new();

    private ReadinessPipeTransportFactory()
    {
    }

    /// <inheritdoc/>
    public LoopTask<(IReadTransport Transport, TProtocol Protocol)> ConnectReadPipeAsync<TProtocol>(IEventLoop loop,
        Func<TProtocol> protocolFactory, SafeHandle pipe, IDisposable? owner, CancellationToken cancellationToken)
        where TProtocol : IBaseProtocol =>
        ConnectAsync<IReadTransport, TProtocol>(loop, protocolFactory, pipe, owner, forWriting: false, cancellationToken,
            static (readiness, fd, protocol, waiter) =>
            {
                ReadPipeTransport.CheckReadProtocol(protocol);
                return new ReadPipeTransport(readiness, fd, protocol, waiter);
            });

    /// <inheritdoc/>
    public LoopTask<(IWriteTransport Transport, TProtocol Protocol)> ConnectWritePipeAsync<TProtocol>(IEventLoop loop,
        Func<TProtocol> protocolFactory, SafeHandle pipe, IDisposable? owner, CancellationToken cancellationToken)
        where TProtocol : IBaseProtocol =>
        ConnectAsync<IWriteTransport, TProtocol>(loop, protocolFactory, pipe, owner, forWriting: true, cancellationToken,
            static (readiness, fd, protocol, waiter) => new WritePipeTransport(readiness, fd, protocol, waiter));

    /// <summary>
    /// Both directions: takes the fd, probes it, makes the protocol and the transport with
    /// <paramref name="makeTransport"/>, and waits for ConnectionMade. Before the transport exists a
    /// failure gives the fd back as it was; after, it closes the transport (and with it the fd).
    /// <typeparamref name="TTransport"/> is the interface the caller returns, which the made transport implements.
    /// </summary>
    private static async LoopTask<(TTransport Transport, TProtocol Protocol)> ConnectAsync<TTransport, TProtocol>(IEventLoop loop,
        Func<TProtocol> protocolFactory, SafeHandle pipe, IDisposable? owner, bool forWriting, CancellationToken cancellationToken,
        Func<IReadinessEventLoop, PipeFd, TProtocol, Future<VoidResult>, PipeTransport> makeTransport)
        where TTransport : class, IBaseTransport
        where TProtocol : IBaseProtocol
    {
        var readiness = ReadinessOf(loop);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var fd = PipeFd.Take(pipe, owner, forWriting);
        var waiter = loop.CreateFuture<VoidResult>();
        ProbeWatchable(readiness, fd);
        PipeTransport transport;
        TProtocol protocol;
        try
        {
            protocol = MakeProtocol(protocolFactory);
            transport = makeTransport(readiness, fd, protocol, waiter);
        }
        catch
        {
            fd.GiveBack();
            throw;
        }

        try
        {
            await waiter;
        }
        catch
        {
            transport.CloseNow();
            throw;
        }

        return ((TTransport)(IBaseTransport)transport, protocol);
    }

    /// <summary>
    /// Registers the fd once and removes it, so an fd the multiplexer cannot watch fails the call
    /// with a clear message (epoll refuses some character devices, /dev/null among them, with EPERM;
    /// poll accepts them) instead of failing later inside a loop callback. Gives the fd back on failure.
    /// </summary>
    private static void ProbeWatchable(IReadinessEventLoop loop, PipeFd fd)
    {
        if (loop is SelectorEventLoop owner && owner.IsRegistered(fd.Fd))
        {
            // asyncio's _ensure_fd_no_transport: a second watcher would silently take the fd's events.
            fd.GiveBack();
            throw new ArgumentException(
                $"fd {fd.Fd} is already watched by this loop (by another transport, or AddReader/AddWriter): give each pipe to one transport.");
        }

        var probe = loop.CreateIoHandle(static _ => { }, 0);
        try
        {
            loop.SetReader(fd.Fd, probe);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            fd.GiveBack();
            string backend = loop is SelectorEventLoop selector ? $"the {selector.SelectorName} selector" : loop.GetType().Name;
            throw new ArgumentException(
                $"fd {fd.Fd} cannot be watched by {backend}: {ex.Message} (epoll refuses devices that do not support polling, " +
                "such as /dev/null; the poll backend takes them).", ex);
        }
        finally
        {
            probe.Cancel();
        }

        loop.SetReader(fd.Fd, null);
    }

    private static IReadinessEventLoop ReadinessOf(IEventLoop loop) =>
        loop as IReadinessEventLoop ?? throw new ArgumentException(
            $"The fd-readiness pipe transports need an {nameof(IReadinessEventLoop)}; {loop.GetType().Name} is not one. " +
            $"Register an {nameof(IPipeTransportFactory)} that suits it in loop.Transports.", nameof(loop));

    private static TProtocol MakeProtocol<TProtocol>(Func<TProtocol> protocolFactory) =>
        protocolFactory() ?? throw new InvalidOperationException("The protocol factory returned null.");
}
