using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip;

// SockRecvFromValueAsync and SockSendToValueAsync, the completion way, as SockRecvValueAsync: Socket's
// own SocketAddress-taking ValueTask calls, started with the token of an operation from the loop's
// pool; one the runtime completes at once returns its value with nothing more.
public sealed partial class ProactorEventLoop
{
    private Stack<DatagramOperation>? _datagramOperations;

    /// <inheritdoc/>
    public override ValueTask<int> SockRecvFromValueAsync(Socket socket, Memory<byte> buffer, SocketAddress receivedAddress, CancellationToken cancellationToken = default)
    {
        CheckValueSockThread();
        CheckSockCall(socket, SockCall.Datagram);
        CheckDatagramAddress(socket, receivedAddress, nameof(receivedAddress), receiving: true);
        if (cancellationToken.IsCancellationRequested)
        {
            return CancelledBeforeStart();
        }

        var op = _datagramOperations is { Count: > 0 } pool ? pool.Pop() : new DatagramOperation(this);
        return op.Start(socket, buffer, default, receivedAddress, receive: true, cancellationToken);
    }

    /// <inheritdoc/>
    public override ValueTask<int> SockSendToValueAsync(Socket socket, ReadOnlyMemory<byte> data, SocketAddress address, CancellationToken cancellationToken = default)
    {
        CheckValueSockThread();
        CheckSockCall(socket, SockCall.Datagram);
        CheckDatagramAddress(socket, address, nameof(address));
        if (cancellationToken.IsCancellationRequested)
        {
            return CancelledBeforeStart();
        }

        var op = _datagramOperations is { Count: > 0 } pool ? pool.Pop() : new DatagramOperation(this);
        return op.Start(socket, default, data, address, receive: false, cancellationToken);
    }

    private void ReturnOperation(DatagramOperation op)
    {
        _datagramOperations ??= new Stack<DatagramOperation>();
        if (_datagramOperations.Count < ValueOperationPoolSize)
        {
            _datagramOperations.Push(op);
        }
    }

    /// <summary>A datagram receive or send in flight in the runtime.</summary>
    private sealed class DatagramOperation(ProactorEventLoop loop) : RuntimeOperation(loop)
    {
        public ValueTask<int> Start(Socket socket, Memory<byte> buffer, ReadOnlyMemory<byte> data, SocketAddress address, bool receive,
            CancellationToken cancellationToken)
        {
            ValueTask<int> call;
            try
            {
                call = receive
                    ? socket.ReceiveFromAsync(buffer, SocketFlags.None, address, RuntimeToken)
                    : socket.SendToAsync(data, SocketFlags.None, address, RuntimeToken);
            }
            catch
            {
                Release();
                throw;
            }

            return Started(call, cancellationToken);
        }

        protected override void OnRuntimeOutcome(int result, Exception? error) => Complete(result, error);

        protected override void Release() => Loop.ReturnOperation(this);
    }
}
