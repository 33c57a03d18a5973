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

    /// <inheritdoc/>
    /// <remarks>A <see cref="SelectorDatagramTransport"/>: asyncio's <c>_SelectorDatagramTransport</c>.</remarks>
    protected override IDatagramTransport MakeDatagramTransport(Socket socket, IDatagramProtocol protocol, EndPoint? remote, EndPoint? remoteAsGiven,
        Future<VoidResult>? waiter) =>
        new SelectorDatagramTransport(this, socket, protocol, remote, remoteAsGiven, waiter);

    /// <inheritdoc/>
    /// <remarks>
    /// The listener's fd is watched for readability; each wake-up accepts up to
    /// <paramref name="backlog"/> connections (asyncio's <c>_accept_connection</c>), so a flood
    /// drains quickly without starving the other callbacks of the iteration. After EMFILE, ENFILE,
    /// ENOBUFS or ENOMEM the listener rests <see cref="AcceptRetryDelay"/> seconds.
    /// </remarks>
    protected override IDisposable StartAccepting(Socket listener, int backlog, Action<Socket> accepted)
    {
        ArgumentNullException.ThrowIfNull(listener);
        ArgumentNullException.ThrowIfNull(accepted);
        var acceptor = new Acceptor(this, listener, backlog, accepted);
        acceptor.Resume();
        return acceptor;
    }

    /// <summary>One listening socket being served: its fd, reader handle and retry timer. Owned by the loop thread.</summary>
    private sealed class Acceptor : IDisposable
    {
        private readonly SelectorEventLoop _loop;
        private readonly Socket _listener;
        private readonly int _fd;
        private readonly int _backlog;
        private readonly Action<Socket> _accepted;
        private readonly StateHandle<Acceptor> _handle;
        private TimerHandle? _retry;
        private bool _stopped;

        public Acceptor(SelectorEventLoop loop, Socket listener, int backlog, Action<Socket> accepted)
        {
            _loop = loop;
            _listener = listener;
            _fd = FdOf(listener);
            _backlog = Math.Max(backlog, 1);
            _accepted = accepted;
            _handle = new StateHandle<Acceptor>(loop, static a => a.Accept(), this);
        }

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
            _loop.SetReader(_fd, null, cancelReplaced: false);
            _retry?.Cancel();
            _retry = _loop.CallLater(AcceptRetryDelay, static a => a.Resume(), this);
        }

        private void Accept()
        {
            for (int i = 0; i < _backlog && !_stopped; i++)
            {
                Socket connection;
                try
                {
                    connection = _listener.Accept();
                }
                catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.Interrupted
                    or SocketError.ConnectionAborted or SocketError.ConnectionReset)
                {
                    return;
                }
                catch (SocketException ex) when (ex.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
                {
                    _loop.CallExceptionHandler(new ExceptionContext("socket.accept() out of system resource")
                    {
                        Exception = ex,
                        Socket = _listener,
                    });
                    RestAndRetry();
                    return;
                }
                catch (Exception ex)
                {
                    _loop.CallExceptionHandler(new ExceptionContext("Error on socket.accept()") { Exception = ex, Socket = _listener });
                    return;
                }

                _accepted(connection);
            }
        }
    }
}
