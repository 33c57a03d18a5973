using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using System.Threading.Tasks.Sources;

namespace Tulip;

// SockAcceptValueAsync and SockConnectValueAsync, the readiness way, as SockRecvValueAsync: the
// non-blocking call first, and only when it would block an operation from the loop's pool, armed as
// the fd's reader (accept) or writer (connect) with a handle it keeps, cleared as it completes or is
// withdrawn. Accepting is accept4(2) straight into a non-blocking fd, so an empty backlog is an errno,
// not a thrown SocketException as Socket.Accept makes it.
public partial class SelectorEventLoop
{
    /// <summary>SO_ERROR (Linux): the pending error of a socket, read and cleared once a connect is over.</summary>
    private const int SO_ERROR = 4;

    // Owned by the loop thread.
    private ValueOperationPool<AcceptOperation> _acceptOperations;
    private ValueOperationPool<ConnectOperation> _connectOperations;

    /// <inheritdoc/>
    public override ValueTask<Socket> SockAcceptValueAsync(Socket socket, CancellationToken cancellationToken = default)
    {
        CheckValueSockThread();
        int fd = CheckNonBlocking(socket, SockCall.Accept);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromException<Socket>(new CancelledError());
        }

        var connection = TryAccept(fd, out var error);
        if (connection is not null || error is not null)
        {
            return error is null ? new ValueTask<Socket>(connection!) : ValueTask.FromException<Socket>(error);
        }

        if (_registrations.TryGetValue(fd, out var reg) && reg.Reader is not null)
        {
            throw new InvalidOperationException($"An accept (or a reader) is already waiting on fd {fd}: one accept at a time per listening socket.");
        }

        if (!_acceptOperations.TryRent(out var op))
        {
            op = new AcceptOperation(this);
        }

        op.Start(fd, cancellationToken);
        return new ValueTask<Socket>(op, op.Version);
    }

    /// <inheritdoc/>
    public override ValueTask SockConnectValueAsync(Socket socket, EndPoint address, CancellationToken cancellationToken = default)
    {
        CheckValueSockThread();
        int fd = CheckNonBlocking(socket);
        CheckConnectAddress(address);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromException(new CancelledError());
        }

        if (socket.AddressFamily == AddressFamily.Unix)
        {
            // Nothing to wait for but room in the backlog, which nothing signals: the retrying form.
            return FutureValueOperation.Await(SockConnectAsync(socket, address, cancellationToken), cancelFuture: true);
        }

        // Checked before the connect starts: refused, it must not have begun a handshake.
        if (_registrations.TryGetValue(fd, out var reg) && reg.Writer is not null)
        {
            throw new InvalidOperationException($"A send or connect (or a writer) is already waiting on fd {fd}: one at a time per socket.");
        }

        try
        {
            socket.Connect(address);
            return default;
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress or SocketError.Interrupted)
        {
            // EINPROGRESS: the handshake goes on; writability says it is over. (Socket.Connect reports it
            // by throwing: the one allocation of this path that is the runtime's, not the loop's.)
        }
        catch (SocketException ex)
        {
            return ValueTask.FromException(ex);
        }

        if (!_connectOperations.TryRent(out var op))
        {
            op = new ConnectOperation(this);
        }

        op.Start(socket, fd, cancellationToken);
        return new ValueTask(op, op.Version);
    }

    /// <summary>
    /// One accept4(2) on <paramref name="listenFd"/>: the connection as a non-blocking
    /// <see cref="Socket"/>; or null, with <paramref name="error"/> null when none is waiting (EAGAIN,
    /// EINTR) and the failure otherwise.
    /// </summary>
    private static unsafe Socket? TryAccept(int listenFd, out Exception? error)
    {
        int fd = Interop.Accept4(listenFd, null, null, Interop.SOCK_NONBLOCK | Interop.SOCK_CLOEXEC);
        if (fd < 0)
        {
            int errno = Interop.GetLastErrno();
            error = errno is Interop.Errno.EAGAIN or Interop.Errno.EINTR
                ? null
                : Interop.GetExceptionForErrno(errno, $"accept4(fd {listenFd})", source: Interop.ErrnoSource.Socket);
            return null;
        }

        error = null;
        // The fd is already O_NONBLOCK; setting Blocking tells the Socket so (it does not ask the fd).
        return new Socket(new SafeSocketHandle(fd, ownsHandle: true)) { Blocking = false };
    }

    /// <summary>An accept waiting for its listening fd to be readable.</summary>
    private sealed class AcceptOperation : LoopValueOperation, IValueTaskSource<Socket>
    {
        private readonly SelectorEventLoop _loop;
        private readonly Handle _readable;
        private int _fd;
        private Socket? _accepted;

        public AcceptOperation(SelectorEventLoop loop) : base(loop)
        {
            _loop = loop;
            _readable = new StateHandle<AcceptOperation>(loop, static op => op.OnReadable(), this);
        }

        public void Start(int fd, CancellationToken cancellationToken)
        {
            _fd = fd;
            _loop.SetReader(fd, _readable, cancelReplaced: false);
            BeginPending(cancellationToken);
        }

        private void OnReadable()
        {
            // A run queued before the reader was cleared still happens once: it finds nothing pending.
            if (!IsPending)
            {
                return;
            }

            var connection = TryAccept(_fd, out var error);
            if (connection is null && error is null)
            {
                return; // another accept took it, or the peer gave up: wait on
            }

            _accepted = connection;
            Finish(error);
        }

        protected override void CancelCore() => Finish(new CancelledError());

        private void Finish(Exception? error)
        {
            _loop.SetReader(_fd, null, cancelReplaced: false);
            Complete(0, error);
        }

        Socket IValueTaskSource<Socket>.GetResult(short token) => GetResult(token, ref _accepted);

        protected override void Release() => _loop._acceptOperations.Return(this);
    }

    /// <summary>A connect waiting for its fd to be writable (the handshake over, one way or the other).</summary>
    private sealed class ConnectOperation : LoopValueOperation
    {
        private readonly SelectorEventLoop _loop;
        private readonly Handle _writable;
        private Socket? _socket;
        private int _fd;

        public ConnectOperation(SelectorEventLoop loop) : base(loop)
        {
            _loop = loop;
            _writable = new StateHandle<ConnectOperation>(loop, static op => op.OnWritable(), this);
        }

        public void Start(Socket socket, int fd, CancellationToken cancellationToken)
        {
            _socket = socket;
            _fd = fd;
            _loop.SetWriter(fd, _writable, cancelReplaced: false);
            BeginPending(cancellationToken);
        }

        private void OnWritable()
        {
            if (!IsPending)
            {
                return;
            }

            Exception? error = null;
            try
            {
                Span<byte> value = stackalloc byte[sizeof(int)];
                _socket!.GetRawSocketOption(Interop.SOL_SOCKET, SO_ERROR, value);
                int errno = BitConverter.ToInt32(value);
                if (errno != 0)
                {
                    error = Interop.GetExceptionForErrno(errno, $"connect(fd {_fd})", source: Interop.ErrnoSource.Socket);
                }
                else
                {
                    // Reading Connected makes .NET record the finished non-blocking connect (RemoteEndPoint etc.).
                    _ = _socket.Connected;
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                error = ex;
            }

            Finish(error);
        }

        protected override void CancelCore() => Finish(new CancelledError());

        private void Finish(Exception? error)
        {
            _loop.SetWriter(_fd, null, cancelReplaced: false);
            _socket = null;
            Complete(0, error);
        }

        protected override void Release() => _loop._connectOperations.Return(this);
    }
}
