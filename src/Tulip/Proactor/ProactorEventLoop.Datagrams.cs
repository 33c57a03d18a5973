using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Tulip;

// Datagrams the completion way (asyncio's _ProactorDatagramTransport, IocpProactor.recvfrom and
// sendto): the base loop's datagram hook, and the PEP's datagram socket methods on .NET's
// asynchronous socket operations. Resolution, binding, connecting and address pairing are the base
// loop's (BaseEventLoop.Datagrams.cs), as for every loop.
public sealed partial class ProactorEventLoop
{
    /// <inheritdoc/>
    /// <remarks>A <see cref="ProactorDatagramTransport"/>: asyncio's <c>_ProactorDatagramTransport</c>.</remarks>
    protected override IDatagramTransport MakeDatagramTransport(Socket socket, IDatagramProtocol protocol, EndPoint? remote, EndPoint? remoteAsGiven,
        Future<VoidResult>? waiter) =>
        new ProactorDatagramTransport(this, socket, protocol, remote, remoteAsGiven, waiter);

    /// <inheritdoc/>
    /// <remarks>One asynchronous receive; cancelling the awaiting task cancels it (<see cref="CancelledError"/>).</remarks>
    public override async LoopTask<(int Count, EndPoint Address)> SockRecvFromAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckDatagramSockCall(socket);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var token = CurrentTask?.CancellationToken ?? default;
        EndPoint template = socket.AddressFamily switch
        {
            AddressFamily.InterNetworkV6 => new IPEndPoint(IPAddress.IPv6Any, 0),
            AddressFamily.Unix => new UnixDomainSocketEndPoint("/"),
            _ => new IPEndPoint(IPAddress.Any, 0),
        };
        try
        {
            var operation = socket.ReceiveFromAsync(buffer, SocketFlags.None, template, token);
            bool counted = BeginCounted(operation.IsCompleted);
            try
            {
                var result = await operation;
                return (result.ReceivedBytes, result.RemoteEndPoint);
            }
            finally
            {
                EndCounted(counted);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            throw new CancelledError();
        }
    }

    /// <inheritdoc/>
    public override LoopTask<(int Count, EndPoint Address)> SockRecvFromIntoAsync(Socket socket, Memory<byte> buffer, int count = 0,
        CancellationToken cancellationToken = default)
    {
        if ((uint)count > (uint)buffer.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count,
                $"count is between 0 (the whole buffer) and the buffer's length, {buffer.Length}.");
        }

        return SockRecvFromAsync(socket, count == 0 ? buffer : buffer[..count], cancellationToken);
    }

    /// <inheritdoc/>
    /// <remarks>One asynchronous send; cancelling the awaiting task cancels it (<see cref="CancelledError"/>).</remarks>
    public override async LoopTask<int> SockSendToAsync(Socket socket, ReadOnlyMemory<byte> data, EndPoint address, CancellationToken cancellationToken = default)
    {
        CheckDatagramSockCall(socket);
        ArgumentNullException.ThrowIfNull(address);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var token = CurrentTask?.CancellationToken ?? default;
        try
        {
            var operation = socket.SendToAsync(data, SocketFlags.None, address, token);
            bool counted = BeginCounted(operation.IsCompleted);
            try
            {
                return await operation;
            }
            finally
            {
                EndCounted(counted);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            throw new CancelledError();
        }
    }

    /// <summary>The selector loop's checks of a datagram Sock* call's socket (<see cref="CheckSockCall"/>: not null, not disposed, non-blocking, not a stream socket, on an open loop and its thread in debug mode, not an open transport's).</summary>
    private void CheckDatagramSockCall(Socket socket) => CheckSockCall(socket, SockCall.Datagram);
}
