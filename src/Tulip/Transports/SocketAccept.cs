using System;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Tulip;

/// <summary>
/// The fd of a connection accepted with accept4(2): a socket with no <see cref="Socket"/> around it,
/// closed (close(2)) when the handle is released. Owned by the transport made for the connection.
/// </summary>
/// <remarks>
/// 32 bytes, where the <see cref="Socket"/> that <c>Socket.Accept</c> makes comes with a
/// SafeSocketHandle and, once non-blocking, a SocketAsyncContext (about 500 B together, per
/// connection; docs/PERFORMANCE.md, "Memory per idle connection"). A <see cref="Socket"/> over the fd
/// is made only when someone asks for one (<c>GetExtraInfo("socket")</c>), and that one does not own
/// the fd.
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed class SocketFdHandle : SafeHandle
{
    /// <summary>Takes ownership of <paramref name="fd"/>.</summary>
    internal SocketFdHandle(int fd) : base(-1, ownsHandle: true) => SetHandle(fd);

    /// <inheritdoc/>
    public override bool IsInvalid => handle < 0;

    /// <inheritdoc/>
    protected override bool ReleaseHandle()
    {
        // close(2) releases the number even when it fails (EINTR, EIO): nothing to retry or report.
        Interop.Close((int)handle);
        return true;
    }
}

/// <summary>Accepting on a listening socket's fd with accept4(2), and the addresses of what it accepted.</summary>
[SupportedOSPlatform("linux")]
internal static class SocketAccept
{
    /// <summary>
    /// Accepts one connection on <paramref name="listenFd"/> into a non-blocking, close-on-exec fd: its
    /// handle, or null with <paramref name="errno"/> set (EAGAIN when none is waiting).
    /// <paramref name="peer"/> is the peer's address, made by <paramref name="template"/> (the listener's
    /// local end point) as <c>Socket.Accept</c> makes <c>RemoteEndPoint</c>, or null if it has none; for
    /// IPv4 it is left null and <paramref name="packedIPv4Peer"/> holds it instead (see <see cref="PackIPv4"/>).
    /// </summary>
    internal static unsafe SocketFdHandle? Accept(int listenFd, EndPoint template, out EndPoint? peer, out ulong packedIPv4Peer, out int errno)
    {
        byte* address = stackalloc byte[Interop.SockAddrStorageSize];
        uint length = Interop.SockAddrStorageSize;
        int fd = Interop.Accept4(listenFd, address, &length, Interop.SOCK_NONBLOCK | Interop.SOCK_CLOEXEC);
        if (fd < 0)
        {
            errno = Interop.GetLastErrno();
            peer = null;
            packedIPv4Peer = 0;
            return null;
        }

        errno = 0;
        var handle = new SocketFdHandle(fd);
        if (template.AddressFamily == AddressFamily.InterNetwork && length >= 8)
        {
            // Kept as 8 bytes in the transport, made into an IPEndPoint only if someone asks (72 B less per connection).
            peer = null;
            packedIPv4Peer = PackIPv4(*(uint*)(address + 4), (address[2] << 8) | address[3]);
        }
        else
        {
            peer = ToEndPoint(template, address, length);
            packedIPv4Peer = 0;
        }

        return handle;
    }

    /// <summary>
    /// The peer of a connection accepted some other way (the io_uring loop's multishot accept, which gives
    /// no address), as <see cref="Accept"/> gives it: getpeername(2), an IPv4 peer packed into
    /// <paramref name="packedIPv4Peer"/>, anything else made by <paramref name="template"/>. Both null/0 if
    /// the connection has no peer any more (reset meanwhile: ENOTCONN).
    /// </summary>
    internal static unsafe void Peer(int fd, EndPoint template, out EndPoint? peer, out ulong packedIPv4Peer)
    {
        byte* address = stackalloc byte[Interop.SockAddrStorageSize];
        uint length = Interop.SockAddrStorageSize;
        peer = null;
        packedIPv4Peer = 0;
        if (Interop.GetPeerName(fd, address, &length) != 0)
        {
            return;
        }

        if (template.AddressFamily == AddressFamily.InterNetwork && length >= 8)
        {
            packedIPv4Peer = PackIPv4(*(uint*)(address + 4), (address[2] << 8) | address[3]);
        }
        else
        {
            peer = ToEndPoint(template, address, length);
        }
    }

    /// <summary>An IPv4 address (as <see cref="IPAddress(long)"/> takes it) and port in one word, with a
    /// presence bit (bit 63), so 0 means none.</summary>
    internal static ulong PackIPv4(uint address, int port) => (1UL << 63) | ((ulong)(uint)port << 32) | address;

    /// <summary>The end point <see cref="PackIPv4"/> packed, or null for 0: what <c>Socket.Accept</c>'s
    /// <c>RemoteEndPoint</c> is for the same sockaddr_in.</summary>
    internal static IPEndPoint? UnpackIPv4(ulong packed) =>
        packed == 0 ? null : new IPEndPoint(new IPAddress((uint)packed), (int)((packed >> 32) & 0xFFFF));

    /// <summary>
    /// The local address of an accepted connection, as <c>Socket.LocalEndPoint</c> gives it: the
    /// listener's own end point when it is bound to one address (shared, nothing allocated), else
    /// (a wildcard listener) getsockname(2) on <paramref name="fd"/>; null if that fails.
    /// </summary>
    internal static unsafe EndPoint? LocalEndPoint(int fd, EndPoint listenerEndPoint)
    {
        if (listenerEndPoint is not IPEndPoint ip || !(ip.Address.Equals(IPAddress.Any) || ip.Address.Equals(IPAddress.IPv6Any)))
        {
            return listenerEndPoint;
        }

        byte* address = stackalloc byte[Interop.SockAddrStorageSize];
        uint length = Interop.SockAddrStorageSize;
        return Interop.GetSockName(fd, address, &length) == 0 ? ToEndPoint(listenerEndPoint, address, length) : null;
    }

    /// <summary>
    /// What the sockaddr in <paramref name="address"/> is as an end point of <paramref name="template"/>'s
    /// kind (<see cref="EndPoint.Create"/>, as <see cref="Socket"/> does), or null if it is too short
    /// to name one or the template cannot read it.
    /// </summary>
    private static unsafe EndPoint? ToEndPoint(EndPoint template, byte* address, uint length)
    {
        if (length < sizeof(ushort) || length > Interop.SockAddrStorageSize)
        {
            return null;
        }

        var family = template.AddressFamily;
        if (family == AddressFamily.InterNetwork && length >= 8)
        {
            // sockaddr_in: family, port (network order), address: what IPEndPoint.Create reads, without the SocketAddress.
            int port = (address[2] << 8) | address[3];
            return new IPEndPoint(new IPAddress(*(uint*)(address + 4)), port);
        }

        var socketAddress = new SocketAddress(family, (int)length);
        new ReadOnlySpan<byte>(address, (int)length).CopyTo(socketAddress.Buffer.Span);
        try
        {
            return template.Create(socketAddress);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}
