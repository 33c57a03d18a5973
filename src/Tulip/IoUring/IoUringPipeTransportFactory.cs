using System;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Threading;

namespace Tulip;

/// <summary>
/// The io_uring loop's <see cref="IPipeTransportFactory"/>, registered in each <see cref="IoUringEventLoop"/>'s
/// <see cref="IEventLoop.Transports"/> where its stream transports are completion ones: pipes and FIFOs
/// become completion transports (<see cref="IoUringReadPipeTransport"/>, <see cref="IoUringWritePipeTransport"/>:
/// <c>IORING_OP_READ</c> and <c>IORING_OP_WRITE</c> on the ring); the other kinds a pipe method takes (a
/// socket, a character device such as a terminal or /dev/null, whose drivers may not support the
/// non-blocking attempt io_uring makes first) go to the readiness transports every readiness loop uses.
/// </summary>
/// <remarks>Same checks, same refusals and the same ownership rules as the readiness factory; loop thread.</remarks>
[SupportedOSPlatform("linux")]
internal sealed class IoUringPipeTransportFactory : IPipeTransportFactory
{
    /// <inheritdoc/>
    public LoopTask<(IReadTransport Transport, TProtocol Protocol)> ConnectReadPipeAsync<TProtocol>(IEventLoop loop,
        Func<TProtocol> protocolFactory, SafeHandle pipe, IDisposable? owner, CancellationToken cancellationToken)
        where TProtocol : IBaseProtocol =>
        IsFifo(loop, pipe, forWriting: false, out var uring)
            ? ConnectAsync<IReadTransport, TProtocol>(uring, protocolFactory, pipe, owner, forWriting: false, cancellationToken,
                static (loop, fd, protocol, waiter) =>
                {
                    PipeHandleProbe.CheckReadProtocol(protocol);
                    return new IoUringReadPipeTransport(loop, fd, protocol, waiter);
                })
            : ReadinessPipeTransportFactory.Instance.ConnectReadPipeAsync(loop, protocolFactory, pipe, owner, cancellationToken);

    /// <inheritdoc/>
    public LoopTask<(IWriteTransport Transport, TProtocol Protocol)> ConnectWritePipeAsync<TProtocol>(IEventLoop loop,
        Func<TProtocol> protocolFactory, SafeHandle pipe, IDisposable? owner, CancellationToken cancellationToken)
        where TProtocol : IBaseProtocol =>
        IsFifo(loop, pipe, forWriting: true, out var uring)
            ? ConnectAsync<IWriteTransport, TProtocol>(uring, protocolFactory, pipe, owner, forWriting: true, cancellationToken,
                static (loop, fd, protocol, waiter) => new IoUringWritePipeTransport(loop, fd, protocol, waiter))
            : ReadinessPipeTransportFactory.Instance.ConnectWritePipeAsync(loop, protocolFactory, pipe, owner, cancellationToken);

    /// <summary>Whether the completion transports take this handle: an io_uring loop with them, and a pipe or FIFO. Bad handles are left to the readiness factory's checks.</summary>
    private static bool IsFifo(IEventLoop loop, SafeHandle pipe, bool forWriting, out IoUringEventLoop uring)
    {
        uring = (loop as IoUringEventLoop)!;
        if (uring is not { CompletionTransports: true } || pipe is null || pipe.IsClosed || pipe.IsInvalid)
        {
            return false;
        }

        try
        {
            return PipeHandleProbe.Check(pipe, forWriting).FileType == Interop.S_IFIFO;
        }
        catch (ArgumentException)
        {
            return false; // the readiness factory throws the same, from the same checks
        }
    }

    /// <summary>
    /// As the readiness factory: takes the fd, makes the protocol and the transport, and waits for
    /// ConnectionMade. Before the transport exists a failure gives the fd back as it was; after, it
    /// closes the transport (and with it the fd).
    /// </summary>
    private static async LoopTask<(TTransport Transport, TProtocol Protocol)> ConnectAsync<TTransport, TProtocol>(IoUringEventLoop loop,
        Func<TProtocol> protocolFactory, SafeHandle pipe, IDisposable? owner, bool forWriting, CancellationToken cancellationToken,
        Func<IoUringEventLoop, PipeFd, TProtocol, Future<VoidResult>, PipeTransport> makeTransport)
        where TTransport : class, IBaseTransport
        where TProtocol : IBaseProtocol
    {
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var fd = PipeFd.Take(pipe, owner, forWriting);
        if (loop.IsRegistered(fd.Fd))
        {
            // asyncio's _ensure_fd_no_transport: a second transport would take the fd's data.
            fd.GiveBack();
            throw new ArgumentException(
                $"fd {fd.Fd} is already watched by this loop (by another transport, or AddReader/AddWriter): give each pipe to one transport.");
        }

        var waiter = loop.CreateFuture<VoidResult>();
        PipeTransport transport;
        TProtocol protocol;
        try
        {
            protocol = protocolFactory() ?? throw new InvalidOperationException("The protocol factory returned null.");
            transport = makeTransport(loop, fd, protocol, waiter);
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
}
