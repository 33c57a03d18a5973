using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip;

// The .NET-shaped forms of sock_recv and sock_sendall: ValueTasks over operations the loop reuses
// (LoopValueOperation), for loops that receive and send in a hot loop of their own. The base loop
// has no sockets; the multiplexers override them, each its own way (readiness, completion).
public abstract partial class BaseEventLoop
{
    /// <inheritdoc/>
    public virtual ValueTask<int> SockRecvValueAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        throw Unsupported();

    /// <inheritdoc/>
    public virtual ValueTask SockSendAllValueAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        throw Unsupported();

    /// <inheritdoc/>
    public ValueTask<int> SockRecvIntoValueAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        SockRecvValueAsync(socket, buffer, cancellationToken);

    /// <inheritdoc/>
    public virtual ValueTask<Socket> SockAcceptValueAsync(Socket socket, CancellationToken cancellationToken = default) =>
        throw Unsupported();

    /// <inheritdoc/>
    public virtual ValueTask SockConnectValueAsync(Socket socket, EndPoint address, CancellationToken cancellationToken = default) =>
        throw Unsupported();

    /// <inheritdoc/>
    public virtual ValueTask<int> SockRecvFromValueAsync(Socket socket, Memory<byte> buffer, SocketAddress receivedAddress, CancellationToken cancellationToken = default) =>
        throw Unsupported();

    /// <inheritdoc/>
    public virtual ValueTask<int> SockSendToValueAsync(Socket socket, ReadOnlyMemory<byte> data, SocketAddress address, CancellationToken cancellationToken = default) =>
        throw Unsupported();

    /// <summary>The address check of both datagram forms: present, and of the socket's family.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="address"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="address"/> is of another family than <paramref name="socket"/>.</exception>
    /// <exception cref="ArgumentException">A receive's <paramref name="address"/> has less room than the family's largest address.</exception>
    private protected static void CheckDatagramAddress(Socket socket, SocketAddress address, string parameter, bool receiving = false)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(address, parameter);
        if (address.Family != socket.AddressFamily)
        {
            throw new ArgumentException(
                $"The address is {address.Family} and the socket {socket.AddressFamily}: make it with new SocketAddress(socket.AddressFamily) or from an endpoint's Serialize().",
                parameter);
        }

        int room = SocketAddress.GetMaximumAddressSize(address.Family);
        if (receiving && address.Buffer.Length < room)
        {
            throw new ArgumentException(
                $"The address has room for {address.Buffer.Length} bytes and a {address.Family} sender may need {room}: make it with new SocketAddress(socket.AddressFamily), which has the room.",
                parameter);
        }
    }

    /// <summary>The address checks of both connect forms: present, and resolved.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="address"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="address"/> is a <see cref="DnsEndPoint"/>.</exception>
    private protected static void CheckConnectAddress(EndPoint address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address is DnsEndPoint)
        {
            throw new ArgumentException("SockConnectAsync needs a resolved address (IPEndPoint, UnixDomainSocketEndPoint): resolve names with GetAddrInfoAsync.", nameof(address));
        }
    }

    /// <summary>The check every <c>Sock*ValueAsync</c> makes first: the operations are the loop thread's.</summary>
    /// <exception cref="InvalidOperationException">Called from another thread than the running loop's.</exception>
    private protected void CheckValueSockThread()
    {
        if (!IsOnLoopThread)
        {
            throw new InvalidOperationException(
                "Sock*ValueAsync runs on the loop thread, inside the running loop (a loop task or a callback); " +
                "from another thread use loop.RunCoroutineThreadSafe(...).");
        }
    }

    /// <summary>A completed <see cref="ValueTask{TResult}"/> for a caller's token that was cancelled before the call.</summary>
    private protected static ValueTask<int> CancelledBeforeStart() => ValueTask.FromException<int>(new CancelledError());
}
