using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using Microsoft.Extensions.Logging;
using Tulip.IoUring;
using Tulip.Selectors;

namespace Tulip;

/// <summary>
/// The io_uring loop (issue 14): one ring per loop, whose completions are read on the loop thread
/// itself, with no helper thread and no thread hop. TCP and UNIX stream connections, datagram endpoints
/// and pipes are completion transports (receives and reads armed on the ring, sends and writes submitted
/// with the loop's wait); everything readiness-based (<c>AddReader</c>/<c>AddWriter</c>, the <c>Sock*</c>
/// methods, third-party readiness transports) runs on the same ring through poll requests, so this loop
/// implements <see cref="IReadinessEventLoop"/> as the selector loop does: it offers both models.
/// </summary>
/// <remarks>
/// <para>
/// One loop iteration is one <c>io_uring_enter</c>: it submits what the iteration queued (receives to
/// arm, sends, polls, cancellations) and waits for completions until the next timer. A burst of
/// writes on many connections therefore costs no system call per write.
/// </para>
/// <para>
/// Where the kernel lacks provided-buffer rings (older than 5.19) the stream transports fall back to
/// the readiness ones on the same ring. Where io_uring itself is unavailable (disabled by the sysctl,
/// refused by a seccomp filter, an old kernel) the constructor throws
/// <see cref="PlatformNotSupportedException"/> saying which and what to use instead; the automatic
/// loop choice never picks this loop.
/// </para>
/// </remarks>
[SupportedOSPlatform("linux")]
public sealed partial class IoUringEventLoop : SelectorEventLoop
{
    /// <summary>Receive buffers in the provided-buffer ring.</summary>
    internal const int ReceiveBufferCount = 256;

    /// <summary>Bytes per receive buffer: a completion carries at most this much (the selector loop reads as much per recv).</summary>
    internal const int ReceiveBufferSize = 64 * 1024;

    private readonly IoUringSelector _uring;
    private readonly IoUringBufferRing? _receiveBuffers;
    private readonly PinnedBufferPool _sendBuffers = new();
    private bool _closed;

    /// <summary>Creates the loop and its ring.</summary>
    /// <param name="loggerFactory">Where the loop logs; stderr if null.</param>
    /// <exception cref="PlatformNotSupportedException">io_uring is disabled or missing here; the message says which and what to use instead.</exception>
    public IoUringEventLoop(ILoggerFactory? loggerFactory = null) : this(new IoUringSelector(), loggerFactory, ReceiveBufferCount)
    {
    }

    /// <summary>A loop whose provided-buffer ring has <paramref name="receiveBuffers"/> buffers (a power of two): for tests that run it dry.</summary>
    internal IoUringEventLoop(int receiveBuffers, ILoggerFactory? loggerFactory = null) : this(new IoUringSelector(), loggerFactory, receiveBuffers)
    {
    }

    /// <summary>
    /// A loop whose provided-buffer rings have <paramref name="receiveBuffers"/> stream/IP buffers and
    /// <paramref name="unixDatagramBuffers"/> UNIX datagram buffers (powers of two): for tests that run them dry.
    /// </summary>
    internal IoUringEventLoop(int receiveBuffers, int unixDatagramBuffers, ILoggerFactory? loggerFactory = null)
        : this(new IoUringSelector(), loggerFactory, receiveBuffers)
    {
        _unixDatagramBufferCount = unixDatagramBuffers;
    }

    /// <summary>A loop over <paramref name="selector"/> (a small ring, for tests that fill it).</summary>
    internal IoUringEventLoop(IoUringSelector selector, ILoggerFactory? loggerFactory = null) : this(selector, loggerFactory, ReceiveBufferCount)
    {
    }

    private IoUringEventLoop(IoUringSelector selector, ILoggerFactory? loggerFactory, int receiveBuffers) : base(selector, loggerFactory)
    {
        _uring = selector;
        try
        {
            _receiveBuffers = new IoUringBufferRing(selector.Ring, groupId: 0, receiveBuffers, ReceiveBufferSize);
            RegisterCompletionPipes();
        }
        catch (PlatformNotSupportedException ex)
        {
            // Readiness transports on the same ring instead: slower, and the same behaviour.
            if (Logger.IsEnabled(LogLevel.Information))
            {
                Diagnostics.Log.IoUringCompletionTransportsUnavailable(Logger, ex.Message);
            }
        }
        catch
        {
            Close();
            throw;
        }
    }

    /// <summary>Whether stream connections are completion transports (false where the kernel has no provided-buffer rings).</summary>
    public bool CompletionTransports => _receiveBuffers is not null;

    internal IoUringSelector Uring => _uring;

    internal IoUringBufferRing ReceiveBuffers => _receiveBuffers!;

    internal PinnedBufferPool SendBuffers => _sendBuffers;

    /// <summary>
    /// Whether stream writes go to the kernel by ring sends at the end of the loop iteration rather than
    /// by a send(2) inside <c>Write</c> (the default, every loop's contract: what the socket takes is sent
    /// when <c>Write</c> returns). On, every write of an iteration to one connection is gathered into one
    /// pinned buffer and leaves in one SEND submitted with the iteration's <c>io_uring_enter</c>: no
    /// system call per write, at the cost of a copy, and <c>GetWriteBufferSize</c> counts the gathered
    /// bytes until then. <c>TULIP_URING_WRITES=ring</c> turns it on for a program (docs/PERFORMANCE.md);
    /// set it before the first connection.
    /// </summary>
    internal bool RingWrites { get; set; } = Environment.GetEnvironmentVariable("TULIP_URING_WRITES") == "ring";

    /// <summary>Stream sends submitted to the ring (each one SEND entry): for tests.</summary>
    internal long RingSends { get; set; }

    /// <summary>Operations in the kernel (armed receives, sends in flight): for tests, 0 when every transport has ended.</summary>
    internal int OperationsInKernel { get; set; }

    /// <summary>Receive buffers held by transports (delivered to no protocol yet): for tests.</summary>
    internal int ReceiveBuffersHeld => _receiveBuffers?.Outstanding ?? 0;

    /// <summary>Operation slots still registered: for tests, 0 once every transport has ended and its completions came.</summary>
    internal int RegisteredOperations => _uring.OperationCount;

    /// <inheritdoc/>
    private protected override bool HasCompletionWork => OperationsInKernel != 0 || _uring.HasWork;

    /// <summary>Queues <paramref name="handle"/> on the ready queue (a transport's completion handler).</summary>
    internal void Schedule(Handle handle) => AddReadyHandle(handle);

    /// <summary>Gives a receive buffer back, and re-arms the receives that ran out of buffers.</summary>
    internal void ReturnBuffer(ushort id) => _receiveBuffers!.GiveBack(id);

    internal void WaitForBuffers(IIoUringBufferWaiter transport) => _receiveBuffers!.WaitForBuffers(transport);

    /// <summary>Multishot accepts armed (once per server, and again each time the kernel ended one): for tests.</summary>
    internal long AcceptsArmed { get; set; }

    /// <summary>Receives that ended because the ring had no buffer (ENOBUFS): for tests.</summary>
    internal long BufferExhaustions { get; set; }

    internal void StopWaitingForBuffers(IIoUringBufferWaiter transport) => _receiveBuffers!.StopWaiting(transport);

    /// <inheritdoc/>
    /// <remarks>An <see cref="IoUringSocketTransport"/> (completions), or where the kernel lacks provided-buffer rings the selector loop's readiness transport.</remarks>
    protected override ITransport MakeSocketTransport(Socket socket, IBaseProtocol protocol, Future<VoidResult>? waiter, Action<ITransport>? connectionLost) =>
        _receiveBuffers is null
            ? base.MakeSocketTransport(socket, protocol, waiter, connectionLost)
            : new IoUringSocketTransport(this, socket, protocol, waiter, connectionLost);

    private protected override ITransport MakeAcceptedTransport(SocketFdHandle connection, EndPoint? local, EndPoint? peer, ulong packedPeer,
        IBaseProtocol protocol, Action<ITransport> connectionLost) =>
        _receiveBuffers is null
            ? base.MakeAcceptedTransport(connection, local, peer, packedPeer, protocol, connectionLost)
            : new IoUringSocketTransport(this, connection, local, peer, packedPeer, protocol, connectionLost);

    /// <inheritdoc/>
    /// <remarks>A multishot accept on the ring (<see cref="IoUringAcceptor"/>); the readiness acceptor where the stream transports are readiness ones.</remarks>
    protected override IDisposable StartAccepting(Socket listener, ServerOptions options, Func<IBaseProtocol> protocolFactory,
        Action<ITransport> accepted, Action<ITransport> connectionLost)
    {
        if (_receiveBuffers is null)
        {
            return base.StartAccepting(listener, options, protocolFactory, accepted, connectionLost);
        }

        ArgumentNullException.ThrowIfNull(listener);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentNullException.ThrowIfNull(accepted);
        ArgumentNullException.ThrowIfNull(connectionLost);
        var acceptor = new IoUringAcceptor(this, listener, FdOf(listener), options, protocolFactory, accepted, connectionLost);
        acceptor.Start();
        return acceptor;
    }

    /// <inheritdoc/>
    private protected override void OnRunStopped()
    {
        // What the last iteration queued (sends, above all) goes to the kernel now: a caller that stops
        // the loop and then reads from the peer on its own thread must find the bytes sent.
        if (!_closed && _uring.HasWork)
        {
            _uring.SubmitAll();
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Operations still in the kernel (the receives of connections left open) are cancelled and their
    /// completions awaited before the ring closes, so no receive can write into a buffer after it is
    /// freed; if the kernel does not report them all in time the buffers are left allocated rather than freed.
    /// </remarks>
    protected override void CloseCore()
    {
        _closed = true;
        bool drained = true;
        if (_receiveBuffers is not null && OperationsInKernel != 0)
        {
            drained = CancelEverything();
        }

        base.CloseCore();
        if (drained)
        {
            _receiveBuffers?.Dispose();
            _unixDatagramBuffers?.Dispose();
        }
        else if (Logger.IsEnabled(LogLevel.Warning))
        {
            Diagnostics.Log.IoUringOperationsLeftInKernel(Logger, OperationsInKernel);
        }
    }

    private bool CancelEverything()
    {
        ref IoUringSqe sqe = ref _uring.GetSqe();
        sqe.Opcode = Interop.IoUring.OP_ASYNC_CANCEL;
        sqe.Fd = -1;
        sqe.OpFlags = Interop.IoUring.ASYNC_CANCEL_ANY | Interop.IoUring.ASYNC_CANCEL_ALL;
        sqe.UserData = IoUringSelector.CancelTag;
        Span<SelectorEvent> events = stackalloc SelectorEvent[16];
        // Each wait is bounded; a cancelled receive completes at once, so this takes one or two rounds.
        for (int round = 0; round < 100 && OperationsInKernel != 0; round++)
        {
            _uring.Select(events, 10);
        }

        return OperationsInKernel == 0;
    }
}
