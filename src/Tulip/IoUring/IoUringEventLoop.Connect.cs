using System;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Threading;
using System.Threading.Tasks;
using Tulip.IoUring;
using Tulip.Selectors;

namespace Tulip;

// SockConnectAsync and SockConnectValueAsync on the ring (issue 14, "connect"): one IORING_OP_CONNECT
// per connect, submitted with the loop's next wait, instead of a non-blocking connect(2) and a poll for
// writability. Every connect of the loop goes through here (CreateConnectionAsync, happy eyeballs).
public sealed partial class IoUringEventLoop
{
    private ValueOperationPool<RingConnectOperation> _ringConnects;

    /// <summary>Connects through the ring (<c>IORING_OP_CONNECT</c>): for tests, one per connect that did.</summary>
    internal long ConnectsSubmitted { get; private set; }

    /// <inheritdoc/>
    /// <remarks>
    /// A TCP connect is one <c>IORING_OP_CONNECT</c> on the ring; cancelling it (the token, or the task)
    /// withdraws it with <c>IORING_OP_ASYNC_CANCEL</c> and completes once the kernel has let it go. UNIX
    /// connects, addresses of another family than the socket's, and kernels without provided-buffer
    /// rings take the selector loop's path.
    /// </remarks>
    public override async LoopTask SockConnectAsync(Socket socket, EndPoint address, CancellationToken cancellationToken = default)
    {
        int fd = CheckNonBlocking(socket);
        CheckConnectAddress(address);
        if (!OnRing(socket, address))
        {
            await base.SockConnectAsync(socket, address, cancellationToken);
            return;
        }

        // As the selector loop: the token cancels the task, and the task's cancellation withdraws the connect.
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        await StartRingConnect(socket, fd, (IPEndPoint)address, default);
    }

    /// <inheritdoc/>
    /// <remarks>See <see cref="SockConnectAsync"/>: the same ring operation, pooled, so a connect allocates nothing of the loop's.</remarks>
    public override ValueTask SockConnectValueAsync(Socket socket, EndPoint address, CancellationToken cancellationToken = default)
    {
        CheckValueSockThread();
        int fd = CheckNonBlocking(socket);
        CheckConnectAddress(address);
        if (!OnRing(socket, address))
        {
            return base.SockConnectValueAsync(socket, address, cancellationToken);
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromException(new CancelledError());
        }

        return StartRingConnect(socket, fd, (IPEndPoint)address, cancellationToken);
    }

    // AF_UNIX stays on the selector loop's path: a non-blocking UNIX connect to a full backlog fails with
    // EAGAIN at once, and nothing signals room in another process's backlog, so the inherited path retries
    // with a backoff. What IORING_OP_CONNECT does then (park in an io-wq worker, or poll an unconnected
    // socket that is always writable) was not measured on this kernel: the inherited path is the one known
    // not to spin. Addresses of another family than the socket's (an IPv4 address on a dual-mode IPv6
    // socket) go there too, so their mapping and errors are the runtime's.
    private bool OnRing(Socket socket, EndPoint address) =>
        _receiveBuffers is not null && !_closed && address is IPEndPoint ip && ip.AddressFamily == socket.AddressFamily
        && socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6;

    private ValueTask StartRingConnect(Socket socket, int fd, IPEndPoint address, CancellationToken cancellationToken)
    {
        if (!_ringConnects.TryRent(out var op))
        {
            op = new RingConnectOperation(this);
        }

        op.Start(socket, fd, address, cancellationToken);
        return new ValueTask(op, op.Version);
    }

    /// <summary>
    /// One <c>IORING_OP_CONNECT</c>: the sockaddr it names is in a pinned block of its own, which the kernel
    /// may read until the completion. The completion is read inside the wait and handed to the ready queue;
    /// a cancel (or the loop's close) queues an <c>ASYNC_CANCEL</c> and the operation ends with its
    /// completion, whichever result the kernel gives (a connect that raced the cancel and succeeded leaves
    /// a connected socket, which the caller closes).
    /// </summary>
    private sealed unsafe class RingConnectOperation : LoopValueOperation, IIoUringOperation
    {
        // sockaddr_in6 is 28 bytes, sockaddr_in 16.
        private const int AddressSize = 28;

        private readonly IoUringEventLoop _loop;
        private readonly Handle _completed;
        private readonly byte[] _sockaddr = GC.AllocateArray<byte>(AddressSize, pinned: true);
        private Socket? _socket;
        private IPEndPoint? _address;
        private int _fd;
        private int _index = -1;
        private int _result;
        private bool _inKernel;
        private bool _cancelQueued;

        public RingConnectOperation(IoUringEventLoop loop) : base(loop)
        {
            _loop = loop;
            _completed = new StateHandle<RingConnectOperation>(loop, static op => op.OnCompleted(), this);
        }

        public void Start(Socket socket, int fd, IPEndPoint address, CancellationToken cancellationToken)
        {
            _socket = socket;
            _fd = fd;
            _address = address;
            _cancelQueued = false;
            int length = Write(address);
            _index = _loop._uring.RegisterOperation(this);
            ref IoUringSqe sqe = ref _loop._uring.GetSqe();
            sqe.Opcode = Interop.IoUring.OP_CONNECT;
            sqe.Fd = fd;
            sqe.Addr = (ulong)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_sockaddr));
            sqe.Off = (ulong)length;
            sqe.UserData = IoUringSelector.OperationUserData(_index);
            _inKernel = true;
            _loop.OperationsInKernel++;
            _loop.ConnectsSubmitted++;
            BeginPending(cancellationToken);
        }

        // The sockaddr of address as the runtime lays it out for the kernel (IPEndPoint.Serialize, the
        // layout the datagram transport hands to SENDMSG too), copied into the pinned block.
        private int Write(IPEndPoint address)
        {
            SocketAddress raw = address.Serialize();
            raw.Buffer.Span[..raw.Size].CopyTo(_sockaddr);
            return raw.Size;
        }

        /// <summary>The completion, inside the wait: recorded, and handled on the ready queue (at once while the loop closes).</summary>
        public void OnCompletion(int result, uint flags)
        {
            _inKernel = false;
            _loop.OperationsInKernel--;
            _loop._uring.UnregisterOperation(_index);
            _index = -1;
            _result = result;
            if (_loop._closed)
            {
                // The loop's close cancelled everything and reads the completions itself: no ready queue runs.
                Finish(new CancelledError());
                return;
            }

            _loop.Schedule(_completed);
        }

        private void OnCompleted()
        {
            if (CancelRequested)
            {
                // Cancelled, and the kernel has let go: whatever the connect came to, the caller asked to stop.
                Finish(new CancelledError());
                return;
            }

            if (_result < 0)
            {
                // errno to SocketError as the selector loop's connect maps SO_ERROR (a SocketException
                // made from a raw errno would carry the wrong code: 111 is not ConnectionRefused).
                Finish(Interop.GetExceptionForErrno(-_result, $"connect(fd {_fd})", source: Interop.ErrnoSource.Socket));
                return;
            }

            Exception? error = null;
            try
            {
                RecordConnected();
            }
            catch (ObjectDisposedException ex)
            {
                error = ex;
            }

            Finish(error);
        }

        // The runtime's Socket knows nothing of a connect made behind it (Connected false, RemoteEndPoint
        // null). A non-blocking Socket.Connect records the address as a connect in progress before it calls
        // connect(2), which fails now with EISCONN; reading Connected then finds the socket writable and
        // records the connection, as it does after the selector loop's non-blocking connect.
        private void RecordConnected()
        {
            try
            {
                _socket!.Connect(_address!);
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.IsConnected)
            {
            }

            _ = _socket!.Connected;
        }

        protected override void CancelCore()
        {
            if (!_inKernel)
            {
                // Completed and waiting on the ready queue: OnCompleted sees the cancel.
                return;
            }

            if (!_cancelQueued)
            {
                _cancelQueued = true;
                ref IoUringSqe sqe = ref _loop._uring.GetSqe();
                sqe.Opcode = Interop.IoUring.OP_ASYNC_CANCEL;
                sqe.Fd = -1;
                sqe.Addr = IoUringSelector.OperationUserData(_index);
                sqe.UserData = IoUringSelector.CancelTag;
            }
        }

        private void Finish(Exception? error)
        {
            _socket = null;
            _address = null;
            Complete(0, error);
        }

        protected override void Release() => _loop._ringConnects.Return(this);
    }
}
