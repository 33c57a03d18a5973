using System;
using System.Collections.Generic;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip;

// SockRecvValueAsync and SockSendAllValueAsync, the readiness way: the non-blocking call first, and
// only on EAGAIN an operation from the loop's pool, armed as the fd's reader or writer with a
// handle it keeps (so re-arming allocates nothing) and cleared as it completes or is withdrawn.
public partial class SelectorEventLoop
{
    /// <summary>Operations kept for reuse: enough for this many waiting at once before the pool makes new ones that are dropped after use.</summary>
    private const int ValueOperationPoolSize = 16;

    // Owned by the loop thread.
    private Stack<RecvOperation>? _recvOperations;
    private Stack<SendOperation>? _sendOperations;

    /// <inheritdoc/>
    public override ValueTask<int> SockRecvValueAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckValueSockThread();
        int fd = CheckNonBlocking(socket);
        if (cancellationToken.IsCancellationRequested)
        {
            return CancelledBeforeStart();
        }

        if (buffer.IsEmpty)
        {
            return new ValueTask<int>(0); // as SockRecvAsync: 0 at once, not a wait for data
        }

        int n = socket.Receive(buffer.Span, SocketFlags.None, out SocketError error);
        if (error == SocketError.Success)
        {
            return new ValueTask<int>(n);
        }

        if (error is not (SocketError.WouldBlock or SocketError.Interrupted))
        {
            return ValueTask.FromException<int>(new SocketException((int)error));
        }

        if (_registrations.TryGetValue(fd, out var reg) && reg.Reader is not null)
        {
            throw new InvalidOperationException($"A receive (or a reader) is already waiting on fd {fd}: one receive at a time per socket.");
        }

        var op = _recvOperations is { Count: > 0 } pool ? pool.Pop() : new RecvOperation(this);
        op.Start(socket, fd, buffer, cancellationToken);
        return new ValueTask<int>(op, op.Version);
    }

    /// <inheritdoc/>
    public override ValueTask SockSendAllValueAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        CheckValueSockThread();
        int fd = CheckNonBlocking(socket);
        if (cancellationToken.IsCancellationRequested)
        {
            return new ValueTask(CancelledBeforeStart().AsTask());
        }

        while (!data.IsEmpty)
        {
            int n = socket.Send(data.Span, SocketFlags.None, out SocketError error);
            if (error == SocketError.Success)
            {
                data = data.Slice(n);
                continue;
            }

            if (error is not (SocketError.WouldBlock or SocketError.Interrupted))
            {
                return ValueTask.FromException(new SocketException((int)error));
            }

            if (_registrations.TryGetValue(fd, out var reg) && reg.Writer is not null)
            {
                throw new InvalidOperationException($"A send (or a writer) is already waiting on fd {fd}: one send at a time per socket.");
            }

            var op = _sendOperations is { Count: > 0 } pool ? pool.Pop() : new SendOperation(this);
            op.Start(socket, fd, data, cancellationToken);
            return new ValueTask(op, op.Version);
        }

        return ValueTask.CompletedTask;
    }

    private void ReturnOperation(RecvOperation op)
    {
        _recvOperations ??= new Stack<RecvOperation>();
        if (_recvOperations.Count < ValueOperationPoolSize)
        {
            _recvOperations.Push(op);
        }
    }

    private void ReturnOperation(SendOperation op)
    {
        _sendOperations ??= new Stack<SendOperation>();
        if (_sendOperations.Count < ValueOperationPoolSize)
        {
            _sendOperations.Push(op);
        }
    }

    /// <summary>A receive waiting for its fd to be readable.</summary>
    private sealed class RecvOperation : LoopValueOperation
    {
        private readonly SelectorEventLoop _loop;
        private readonly Handle _readable;
        private Socket? _socket;
        private int _fd;
        private Memory<byte> _buffer;

        public RecvOperation(SelectorEventLoop loop) : base(loop)
        {
            _loop = loop;
            _readable = new StateHandle<RecvOperation>(loop, static op => op.OnReadable(), this);
        }

        public void Start(Socket socket, int fd, Memory<byte> buffer, CancellationToken cancellationToken)
        {
            _socket = socket;
            _fd = fd;
            _buffer = buffer;
            _loop.SetReader(fd, _readable, cancelReplaced: false);
            BeginPending(cancellationToken);
        }

        private void OnReadable()
        {
            // A run queued before the reader was cleared still happens once (IReadinessEventLoop):
            // it finds nothing pending, or tries a harmless non-blocking receive for the current use.
            if (!IsPending)
            {
                return;
            }

            int n;
            SocketError error;
            try
            {
                n = _socket!.Receive(_buffer.Span, SocketFlags.None, out error);
            }
            catch (Exception ex)
            {
                Finish(0, ex);
                return;
            }

            if (error is SocketError.WouldBlock or SocketError.Interrupted)
            {
                return;
            }

            Finish(n, error == SocketError.Success ? null : new SocketException((int)error));
        }

        protected override void CancelCore() => Finish(0, new CancelledError());

        private void Finish(int n, Exception? error)
        {
            _loop.SetReader(_fd, null, cancelReplaced: false);
            _socket = null;
            _buffer = default;
            Complete(n, error);
        }

        protected override void Release() => _loop.ReturnOperation(this);
    }

    /// <summary>A send waiting for room in its fd's send buffer.</summary>
    private sealed class SendOperation : LoopValueOperation
    {
        private readonly SelectorEventLoop _loop;
        private readonly Handle _writable;
        private Socket? _socket;
        private int _fd;
        private ReadOnlyMemory<byte> _data;

        public SendOperation(SelectorEventLoop loop) : base(loop)
        {
            _loop = loop;
            _writable = new StateHandle<SendOperation>(loop, static op => op.OnWritable(), this);
        }

        public void Start(Socket socket, int fd, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            _socket = socket;
            _fd = fd;
            _data = data;
            _loop.SetWriter(fd, _writable, cancelReplaced: false);
            BeginPending(cancellationToken);
        }

        private void OnWritable()
        {
            if (!IsPending)
            {
                return;
            }

            while (!_data.IsEmpty)
            {
                int n;
                SocketError error;
                try
                {
                    n = _socket!.Send(_data.Span, SocketFlags.None, out error);
                }
                catch (Exception ex)
                {
                    Finish(ex);
                    return;
                }

                if (error == SocketError.Success)
                {
                    _data = _data.Slice(n);
                    continue;
                }

                if (error is SocketError.WouldBlock or SocketError.Interrupted)
                {
                    return;
                }

                Finish(new SocketException((int)error));
                return;
            }

            Finish(null);
        }

        protected override void CancelCore() => Finish(new CancelledError());

        private void Finish(Exception? error)
        {
            _loop.SetWriter(_fd, null, cancelReplaced: false);
            _socket = null;
            _data = default;
            Complete(0, error);
        }

        protected override void Release() => _loop.ReturnOperation(this);
    }
}
