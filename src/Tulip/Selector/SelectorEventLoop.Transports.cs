using System;
using System.Net;
using System.Net.Sockets;

namespace Tulip;

// The base loop's transport hooks, the readiness way (asyncio's selector_events): socket and
// datagram transports that wait for readiness on their fd, and a listener watched for readability
// that accepts up to a backlog of connections per wake-up. The connection code above them is the
// base loop's (BaseEventLoop.Streams.cs, .Datagrams.cs).
public partial class SelectorEventLoop
{
    /// <summary>
    /// Bytes read per recv for <see cref="IProtocol"/> transports. asyncio reads up to 256 KiB;
    /// 64 KiB is one TCP window on loopback and keeps the shared buffer off the large object heap.
    /// </summary>
    internal const int MaxReadSize = 64 * 1024;

    /// <summary>asyncio's ACCEPT_RETRY_DELAY: seconds a listener rests after running out of fds.</summary>
    internal const double AcceptRetryDelay = 1.0;

    // One read buffer per loop: every IProtocol transport reads into it and hands DataReceived a
    // span of it, valid only during the call. Owned by the loop thread.
    private byte[]? _readBuffer;

    // The receive buffer of UNIX datagram transports (UDP ones share ReadBuffer: an IP datagram
    // never exceeds 64 KiB). Allocated on first use; owned by the loop thread.
    private byte[]? _datagramReadBuffer;

    internal byte[] ReadBuffer => _readBuffer ??= new byte[MaxReadSize];

    internal byte[] DatagramReadBuffer => _datagramReadBuffer ??= new byte[SelectorDatagramTransport.MaxUnixDatagramSize];

    /// <inheritdoc/>
    /// <remarks>A <see cref="SelectorSocketTransport"/>: asyncio's <c>_SelectorSocketTransport</c>.</remarks>
    protected override ITransport MakeSocketTransport(Socket socket, IBaseProtocol protocol, Future<VoidResult>? waiter,
        Action<ITransport>? connectionLost) =>
        new SelectorSocketTransport(this, socket, protocol, waiter, connectionLost);

    /// <summary>The transport of a connection accepted with accept4(2) (its fd's handle only): a <see cref="SelectorSocketTransport"/>.</summary>
    private protected virtual ITransport MakeAcceptedTransport(SocketFdHandle connection, EndPoint? local, EndPoint? peer, ulong packedPeer,
        IBaseProtocol protocol, Action<ITransport> connectionLost) =>
        new SelectorSocketTransport(this, connection, local, peer, packedPeer, protocol, connectionLost);

    /// <inheritdoc/>
    /// <remarks>A <see cref="SelectorDatagramTransport"/>: asyncio's <c>_SelectorDatagramTransport</c>.</remarks>
    protected override IDatagramTransport MakeDatagramTransport(Socket socket, IDatagramProtocol protocol, EndPoint? remote, EndPoint? remoteAsGiven,
        Future<VoidResult>? waiter) =>
        new SelectorDatagramTransport(this, socket, protocol, remote, remoteAsGiven, waiter);

    /// <inheritdoc/>
    /// <remarks>
    /// The listener's fd is watched for readability; each wake-up accepts up to
    /// <see cref="ServerOptions.Backlog"/> connections (asyncio's <c>_accept_connection</c>), so a flood
    /// drains quickly without starving the other callbacks of the iteration. After EMFILE, ENFILE,
    /// ENOBUFS or ENOMEM the listener rests <see cref="AcceptRetryDelay"/> seconds. Connections are
    /// accepted with accept4(2) straight into a non-blocking fd held by a bare handle: no
    /// <see cref="Socket"/> is made for them (about 400 B each; docs/PERFORMANCE.md, "Memory per idle
    /// connection") until <c>GetExtraInfo("socket")</c> asks, and that one does not own the fd.
    /// </remarks>
    protected override IDisposable StartAccepting(Socket listener, ServerOptions options, Func<IBaseProtocol> protocolFactory,
        Action<ITransport> accepted, Action<ITransport> connectionLost)
    {
        ArgumentNullException.ThrowIfNull(listener);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentNullException.ThrowIfNull(accepted);
        ArgumentNullException.ThrowIfNull(connectionLost);
        var acceptor = new Acceptor(this, listener, options, protocolFactory, accepted, connectionLost);
        acceptor.Resume();
        return acceptor;
    }

    /// <summary>One listening socket being served: its fd, bound address, reader handle and retry timer. Owned by the loop thread.</summary>
    private sealed class Acceptor : IDisposable
    {
        private readonly SelectorEventLoop _loop;
        private readonly Socket _listener;
        private readonly int _fd;
        private readonly int _backlog;
        private readonly bool _noDelay;
        private readonly Func<IBaseProtocol> _protocolFactory;
        private readonly Action<ITransport> _accepted;
        private readonly Action<ITransport> _connectionLost;
        private readonly StateHandle<Acceptor> _handle;
        private EndPoint? _endPoint;
        private TimerHandle? _retry;
        private bool _stopped;

        public Acceptor(SelectorEventLoop loop, Socket listener, ServerOptions options, Func<IBaseProtocol> protocolFactory,
            Action<ITransport> accepted, Action<ITransport> connectionLost)
        {
            _loop = loop;
            _listener = listener;
            _fd = FdOf(listener);
            _backlog = Math.Max(options.Backlog, 1);
            _noDelay = options.NoDelay && listener.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6;
            _protocolFactory = protocolFactory;
            _accepted = accepted;
            _connectionLost = connectionLost;
            _handle = new StateHandle<Acceptor>(loop, static a => a.Accept(), this);
        }

        /// <summary>The address the listener is bound to: the accepted connections' "sockname" (unless a
        /// wildcard), and the kind of end point their addresses are.</summary>
        private EndPoint EndPoint => _endPoint ??= _listener.LocalEndPoint!;

        public void Resume()
        {
            _retry = null;
            if (!_stopped)
            {
                _loop.SetReader(_fd, _handle, cancelReplaced: false);
            }
        }

        /// <summary>Stops accepting: the reader and any retry timer go. Idempotent.</summary>
        public void Dispose()
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
            _retry?.Cancel();
            _retry = null;
            if (!_loop.IsClosed)
            {
                _loop.SetReader(_fd, null, cancelReplaced: false);
            }
        }

        private void RestAndRetry()
        {
            Diagnostics.TulipMetrics.AcceptBackedOff(_loop);
            _loop.SetReader(_fd, null, cancelReplaced: false);
            _retry?.Cancel();
            _retry = _loop.CallLater(AcceptRetryDelay, static a => a.Resume(), this);
        }

        private void Accept()
        {
            for (int i = 0; i < _backlog && !_stopped; i++)
            {
                var connection = SocketAccept.Accept(_fd, EndPoint, out EndPoint? peer, out ulong packedPeer, out int errno);
                if (connection is null)
                {
                    if (IsTransientAcceptError(errno))
                    {
                        return;
                    }

                    if (_loop.ReportAcceptError(errno, _listener, $"accept4(fd {_fd})"))
                    {
                        RestAndRetry();
                    }

                    return;
                }

                _loop.AcceptConnection(connection, EndPoint, _noDelay, peer, packedPeer, _protocolFactory, _accepted, _connectionLost);
            }
        }
    }

    /// <summary>
    /// How every acceptor of this loop reports a failed accept (asyncio's <c>_accept_connection</c>): out
    /// of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) is "socket.accept() out of system
    /// resource", and the caller rests the listener <see cref="AcceptRetryDelay"/> seconds (returns true);
    /// anything else is "Error on socket.accept()" and accepting goes on. Connections reset or aborted before
    /// they were accepted, EAGAIN and EINTR are not errors: the caller skips them before asking.
    /// </summary>
    internal bool ReportAcceptError(int errno, Socket listener, string operation)
    {
        if (errno is Interop.Errno.EMFILE or Interop.Errno.ENFILE or Interop.Errno.ENOBUFS or Interop.Errno.ENOMEM)
        {
            var code = errno is Interop.Errno.EMFILE or Interop.Errno.ENFILE ? SocketError.TooManyOpenSockets : SocketError.NoBufferSpaceAvailable;
            CallExceptionHandler(new ExceptionContext("socket.accept() out of system resource")
            {
                Exception = new SocketException((int)code, Interop.GetExceptionForErrno(errno, operation).Message),
                Socket = listener,
            });
            return true;
        }

        CallExceptionHandler(new ExceptionContext("Error on socket.accept()")
        {
            Exception = Interop.GetExceptionForErrno(errno, operation, source: Interop.ErrnoSource.Socket),
            Socket = listener,
        });
        return false;
    }

    /// <summary>Whether a failed accept is no error (EAGAIN, EINTR, a connection reset or aborted before it was accepted).</summary>
    internal static bool IsTransientAcceptError(int errno) =>
        errno is Interop.Errno.EAGAIN or Interop.Errno.EINTR or Interop.Errno.ECONNABORTED or Interop.Errno.ECONNRESET;

    /// <summary>
    /// asyncio's <c>_accept_connection2</c>, for every acceptor of this loop: TCP_NODELAY, the protocol,
    /// the transport (<see cref="MakeAcceptedTransport"/>), and the server told. A failure closes the
    /// connection and goes to the exception handler; the server goes on.
    /// </summary>
    /// <param name="connection">The accepted fd, owned by this call from now on.</param>
    /// <param name="listenerEndPoint">The listener's bound address (see <see cref="SocketAccept.LocalEndPoint"/>).</param>
    /// <param name="noDelay">Whether to set TCP_NODELAY (a TCP listener whose server asked for it).</param>
    /// <param name="peer">The peer's address, or null (with <paramref name="packedPeer"/> for IPv4).</param>
    /// <param name="packedPeer">An IPv4 peer packed by <see cref="SocketAccept.PackIPv4"/>, or 0.</param>
    /// <param name="protocolFactory">The server's protocol factory.</param>
    /// <param name="accepted">The server's attach callback.</param>
    /// <param name="connectionLost">The server's detach callback.</param>
    internal void AcceptConnection(SocketFdHandle connection, EndPoint listenerEndPoint, bool noDelay, EndPoint? peer, ulong packedPeer,
        Func<IBaseProtocol> protocolFactory, Action<ITransport> accepted, Action<ITransport> connectionLost)
    {
        IBaseProtocol? protocol = null;
        ITransport transport;
        try
        {
            int fd = (int)connection.DangerousGetHandle();
            if (noDelay && Interop.SetSockOptInt(fd, Interop.IPPROTO_TCP, Interop.TCP_NODELAY, 1) != 0)
            {
                throw Interop.GetExceptionForErrno(Interop.GetLastErrno(), $"setsockopt(fd {fd}, TCP_NODELAY)", source: Interop.ErrnoSource.Socket);
            }

            var local = SocketAccept.LocalEndPoint(fd, listenerEndPoint);
            protocol = protocolFactory();
            transport = MakeAcceptedTransport(connection, local, peer, packedPeer, protocol, connectionLost);
        }
        catch (Exception ex)
        {
            connection.Dispose();
            CallExceptionHandler(new ExceptionContext("Error on transport creation for incoming connection")
            {
                Exception = ex,
                Socket = connection, // the accepted fd's (now closed) handle: no Socket is made for it
                Protocol = protocol,
            });
            return;
        }

        accepted(transport);
    }
}
