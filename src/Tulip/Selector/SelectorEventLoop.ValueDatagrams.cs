using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip;

// SockRecvFromValueAsync and SockSendToValueAsync, the readiness way, as SockRecvValueAsync: the
// non-blocking recvfrom(2)/sendto(2) first, and only on EAGAIN an operation from the loop's pool,
// armed as the fd's reader or writer. The sender's address is written into the caller's
// SocketAddress (the .NET 8 shape of Socket.ReceiveFromAsync), so a steady peer costs nothing.
public partial class SelectorEventLoop
{
    private Stack<RecvFromOperation>? _recvFromOperations;
    private Stack<SendToOperation>? _sendToOperations;

    /// <inheritdoc/>
    public override ValueTask<int> SockRecvFromValueAsync(Socket socket, Memory<byte> buffer, SocketAddress receivedAddress, CancellationToken cancellationToken = default)
    {
        CheckValueSockThread();
        int fd = CheckNonBlocking(socket, SockCall.Datagram);
        CheckDatagramAddress(socket, receivedAddress, nameof(receivedAddress), receiving: true);
        if (cancellationToken.IsCancellationRequested)
        {
            return CancelledBeforeStart();
        }

        int result = RecvFromNow(fd, buffer.Span, receivedAddress);
        if (result >= 0)
        {
            return new ValueTask<int>(result);
        }

        if (result != -Interop.Errno.EAGAIN)
        {
            return ValueTask.FromException<int>(Interop.GetExceptionForErrno(-result, $"recvfrom(fd {fd})", source: Interop.ErrnoSource.Socket));
        }

        if (_registrations.TryGetValue(fd, out var reg) && reg.Reader is not null)
        {
            throw new InvalidOperationException($"A receive (or a reader) is already waiting on fd {fd}: one receive at a time per socket.");
        }

        var op = _recvFromOperations is { Count: > 0 } pool ? pool.Pop() : new RecvFromOperation(this);
        op.Start(fd, buffer, receivedAddress, cancellationToken);
        return new ValueTask<int>(op, op.Version);
    }

    /// <inheritdoc/>
    public override ValueTask<int> SockSendToValueAsync(Socket socket, ReadOnlyMemory<byte> data, SocketAddress address, CancellationToken cancellationToken = default)
    {
        CheckValueSockThread();
        int fd = CheckNonBlocking(socket, SockCall.Datagram);
        CheckDatagramAddress(socket, address, nameof(address));
        if (cancellationToken.IsCancellationRequested)
        {
            return CancelledBeforeStart();
        }

        int result = SendToNow(fd, data.Span, address);
        if (result >= 0)
        {
            return new ValueTask<int>(result);
        }

        if (result != -Interop.Errno.EAGAIN)
        {
            return ValueTask.FromException<int>(Interop.GetExceptionForErrno(-result, $"sendto(fd {fd})", source: Interop.ErrnoSource.Socket));
        }

        if (_registrations.TryGetValue(fd, out var reg) && reg.Writer is not null)
        {
            throw new InvalidOperationException($"A send (or a writer) is already waiting on fd {fd}: one send at a time per socket.");
        }

        var op = _sendToOperations is { Count: > 0 } pool ? pool.Pop() : new SendToOperation(this);
        op.Start(fd, data, address, cancellationToken);
        return new ValueTask<int>(op, op.Version);
    }

    /// <summary>One non-blocking recvfrom(2): the bytes received (a datagram longer than the buffer is cut, as asyncio's <c>sock_recvfrom</c>), or -errno (EINTR as EAGAIN).</summary>
    private static unsafe int RecvFromNow(int fd, Span<byte> buffer, SocketAddress receivedAddress)
    {
        var name = receivedAddress.Buffer.Span;
        uint nameLength = (uint)name.Length;
        nint n;
        fixed (byte* data = buffer)
        fixed (byte* address = name)
        {
            n = Interop.RecvFrom(fd, data, (nuint)buffer.Length, Interop.MSG_DONTWAIT, address, &nameLength);
        }

        if (n < 0)
        {
            int errno = Interop.GetLastErrno();
            return errno == Interop.Errno.EINTR ? -Interop.Errno.EAGAIN : -errno;
        }

        // An unbound UNIX sender has no name: Linux gives the family alone (2 bytes), gVisor nothing.
        receivedAddress.Size = Math.Max((int)Math.Min(nameLength, (uint)name.Length), 2);
        return (int)n;
    }

    /// <summary>One non-blocking sendto(2) of the whole datagram: its length, or -errno (EINTR as EAGAIN).</summary>
    private static unsafe int SendToNow(int fd, ReadOnlySpan<byte> data, SocketAddress address)
    {
        nint n;
        fixed (byte* p = data)
        fixed (byte* a = address.Buffer.Span)
        {
            n = Interop.SendTo(fd, p, (nuint)data.Length, Interop.MSG_DONTWAIT | Interop.MSG_NOSIGNAL, a, (uint)address.Size);
        }

        if (n < 0)
        {
            int errno = Interop.GetLastErrno();
            return errno == Interop.Errno.EINTR ? -Interop.Errno.EAGAIN : -errno;
        }

        return (int)n;
    }

    private void ReturnOperation(RecvFromOperation op)
    {
        _recvFromOperations ??= new Stack<RecvFromOperation>();
        if (_recvFromOperations.Count < ValueOperationPoolSize)
        {
            _recvFromOperations.Push(op);
        }
    }

    private void ReturnOperation(SendToOperation op)
    {
        _sendToOperations ??= new Stack<SendToOperation>();
        if (_sendToOperations.Count < ValueOperationPoolSize)
        {
            _sendToOperations.Push(op);
        }
    }

    /// <summary>A receive of one datagram waiting for its fd to be readable.</summary>
    private sealed class RecvFromOperation : LoopValueOperation
    {
        private readonly SelectorEventLoop _loop;
        private readonly Handle _readable;
        private int _fd;
        private Memory<byte> _buffer;
        private SocketAddress? _address;

        public RecvFromOperation(SelectorEventLoop loop) : base(loop)
        {
            _loop = loop;
            _readable = new StateHandle<RecvFromOperation>(loop, static op => op.OnReadable(), this);
        }

        public void Start(int fd, Memory<byte> buffer, SocketAddress address, CancellationToken cancellationToken)
        {
            _fd = fd;
            _buffer = buffer;
            _address = address;
            _loop.SetReader(fd, _readable, cancelReplaced: false);
            BeginPending(cancellationToken);
        }

        private void OnReadable()
        {
            if (!IsPending)
            {
                return; // a run queued before the reader was cleared (IReadinessEventLoop)
            }

            int result = RecvFromNow(_fd, _buffer.Span, _address!);
            if (result == -Interop.Errno.EAGAIN)
            {
                return;
            }

            Finish(Math.Max(result, 0), result >= 0 ? null : Interop.GetExceptionForErrno(-result, $"recvfrom(fd {_fd})", source: Interop.ErrnoSource.Socket));
        }

        protected override void CancelCore() => Finish(0, new CancelledError());

        private void Finish(int n, Exception? error)
        {
            _loop.SetReader(_fd, null, cancelReplaced: false);
            _buffer = default;
            _address = null;
            Complete(n, error);
        }

        protected override void Release() => _loop.ReturnOperation(this);
    }

    /// <summary>A datagram waiting for room in its fd's send buffer.</summary>
    private sealed class SendToOperation : LoopValueOperation
    {
        private readonly SelectorEventLoop _loop;
        private readonly Handle _writable;
        private int _fd;
        private ReadOnlyMemory<byte> _data;
        private SocketAddress? _address;

        public SendToOperation(SelectorEventLoop loop) : base(loop)
        {
            _loop = loop;
            _writable = new StateHandle<SendToOperation>(loop, static op => op.OnWritable(), this);
        }

        public void Start(int fd, ReadOnlyMemory<byte> data, SocketAddress address, CancellationToken cancellationToken)
        {
            _fd = fd;
            _data = data;
            _address = address;
            _loop.SetWriter(fd, _writable, cancelReplaced: false);
            BeginPending(cancellationToken);
        }

        private void OnWritable()
        {
            if (!IsPending)
            {
                return;
            }

            int result = SendToNow(_fd, _data.Span, _address!);
            if (result == -Interop.Errno.EAGAIN)
            {
                return;
            }

            Finish(Math.Max(result, 0), result >= 0 ? null : Interop.GetExceptionForErrno(-result, $"sendto(fd {_fd})", source: Interop.ErrnoSource.Socket));
        }

        protected override void CancelCore() => Finish(0, new CancelledError());

        private void Finish(int n, Exception? error)
        {
            _loop.SetWriter(_fd, null, cancelReplaced: false);
            _data = default;
            _address = null;
            Complete(n, error);
        }

        protected override void Release() => _loop.ReturnOperation(this);
    }
}
