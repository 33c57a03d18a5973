using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using System.Threading.Tasks.Sources;

namespace Tulip;

// SockAcceptValueAsync and SockConnectValueAsync, the completion way, as SockRecvValueAsync: Socket's
// own AcceptAsync and ConnectAsync, started with the token of an operation from the loop's pool. One
// the runtime completes at once returns its outcome with nothing more; one in flight completes on a
// runtime thread, which hands the outcome to the loop. Withdrawing is cancelling the runtime call: an
// accept withdrawn took no connection (it stays in the backlog), a connect withdrawn is abandoned.
public sealed partial class ProactorEventLoop
{
    // Owned by the loop thread.
    private ValueOperationPool<AcceptOperation> _acceptOperations;
    private ValueOperationPool<ConnectOperation> _connectOperations;

    /// <inheritdoc/>
    public override ValueTask<Socket> SockAcceptValueAsync(Socket socket, CancellationToken cancellationToken = default)
    {
        CheckValueSockThread();
        CheckSockCall(socket, SockCall.Accept);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromException<Socket>(new CancelledError());
        }

        if (!_acceptOperations.TryRent(out var op))
        {
            op = new AcceptOperation(this);
        }

        return op.Start(socket, cancellationToken);
    }

    /// <inheritdoc/>
    public override ValueTask SockConnectValueAsync(Socket socket, EndPoint address, CancellationToken cancellationToken = default)
    {
        CheckValueSockThread();
        CheckSockCall(socket);
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

        if (!_connectOperations.TryRent(out var op))
        {
            op = new ConnectOperation(this);
        }

        return op.Start(socket, address, cancellationToken);
    }

    /// <summary>A connect's outcome as SockConnectAsync gives it: a reset before the runtime saw the connect complete is a connection made (ProactorEventLoop.ConnectReset.cs).</summary>
    private Exception? ConnectOutcome(Socket socket, EndPoint address, Exception? error)
    {
        if (error is SocketException { SocketErrorCode: SocketError.ConnectionReset } && socket.SocketType == SocketType.Stream)
        {
            NoteResetAtConnect(socket, address);
            return null;
        }

        return error;
    }

    /// <summary>An accept in flight in the runtime.</summary>
    private sealed class AcceptOperation(ProactorEventLoop loop) : RuntimeOperation(loop), IValueTaskSource<Socket>
    {
        private ValueTask<Socket> _call;

        // Set by TakeInFlight on the runtime's thread, read on the loop thread after the hand-over.
        private Socket? _accepted;

        public ValueTask<Socket> Start(Socket listener, CancellationToken cancellationToken)
        {
            ValueTask<Socket> call;
            try
            {
                call = listener.AcceptAsync(RuntimeToken);
            }
            catch
            {
                Loop._acceptOperations.Return(this);
                throw;
            }

            if (call.IsCompleted)
            {
                Loop._acceptOperations.Return(this);
                try
                {
                    var connection = call.GetAwaiter().GetResult();
                    connection.Blocking = false;
                    return new ValueTask<Socket>(connection);
                }
                catch (Exception ex)
                {
                    return ValueTask.FromException<Socket>(ex);
                }
            }

            BeginPending(cancellationToken);
            _call = call;
            call.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(BeginRuntimeWait());
            return new ValueTask<Socket>(this, Version);
        }

        protected override int TakeInFlight()
        {
            var call = _call;
            _call = default;
            _accepted = call.GetAwaiter().GetResult();
            return 0;
        }

        protected override void OnRuntimeOutcome(int result, Exception? error)
        {
            if (error is null)
            {
                try
                {
                    _accepted!.Blocking = false;
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    _accepted!.Dispose();
                    _accepted = null;
                    error = ex;
                }
            }

            Complete(0, error);
        }

        Socket IValueTaskSource<Socket>.GetResult(short token) => GetResult(token, ref _accepted);

        protected override void Release() => Loop._acceptOperations.Return(this);
    }

    /// <summary>A connect in flight in the runtime.</summary>
    private sealed class ConnectOperation(ProactorEventLoop loop) : RuntimeOperation(loop)
    {
        private ValueTask _call;
        private Socket? _socket;
        private EndPoint? _address;

        public ValueTask Start(Socket socket, EndPoint address, CancellationToken cancellationToken)
        {
            ValueTask call;
            try
            {
                call = socket.ConnectAsync(address, RuntimeToken);
            }
            catch
            {
                Loop._connectOperations.Return(this);
                throw;
            }

            if (call.IsCompleted)
            {
                Loop._connectOperations.Return(this);
                Exception? error = null;
                try
                {
                    call.GetAwaiter().GetResult();
                }
                catch (Exception ex)
                {
                    error = ex;
                }

                error = Loop.ConnectOutcome(socket, address, error);
                return error is null ? default : ValueTask.FromException(error);
            }

            _socket = socket;
            _address = address;
            BeginPending(cancellationToken);
            _call = call;
            call.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(BeginRuntimeWait());
            return new ValueTask(this, Version);
        }

        protected override int TakeInFlight()
        {
            var call = _call;
            _call = default;
            call.GetAwaiter().GetResult();
            return 0;
        }

        protected override void OnRuntimeOutcome(int result, Exception? error)
        {
            error = Loop.ConnectOutcome(_socket!, _address!, error);
            _socket = null;
            _address = null;
            Complete(0, error);
        }

        protected override void Release() => Loop._connectOperations.Return(this);
    }
}
