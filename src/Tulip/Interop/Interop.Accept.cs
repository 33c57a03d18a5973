using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>SOCK_NONBLOCK for accept4 and socket: the new fd is O_NONBLOCK (0x800 on Linux x86_64 and aarch64).</summary>
    internal const int SOCK_NONBLOCK = 0x800;

    /// <summary>SOCK_CLOEXEC for accept4 and socket: the new fd is closed on exec (O_CLOEXEC).</summary>
    internal const int SOCK_CLOEXEC = 0x80000;

    /// <summary>sizeof(struct sockaddr_storage): room for any address accept4 can return.</summary>
    internal const int SockAddrStorageSize = 128;

    /// <summary>
    /// accept4(2): the new connection's fd, or -1 with errno set. <paramref name="addressLength"/> is the
    /// capacity of <paramref name="address"/> on entry and the length of the peer's address on return.
    /// </summary>
    /// <remarks>
    /// The selector loop's servers accept with it straight into a non-blocking, close-on-exec fd, instead
    /// of <c>Socket.Accept</c>: no <see cref="System.Net.Sockets.Socket"/>, SafeSocketHandle and
    /// SocketAsyncContext per connection (about 500 B of managed heap; docs/PERFORMANCE.md, "Memory per
    /// idle connection"), and no fcntl to make the fd non-blocking afterwards.
    /// </remarks>
    [LibraryImport(Libc, EntryPoint = "accept4", SetLastError = true)]
    internal static unsafe partial int Accept4(int fd, byte* address, uint* addressLength, int flags);

    /// <summary>getsockname(2): 0, or -1 with errno set. <paramref name="addressLength"/> as for <see cref="Accept4"/>.</summary>
    [LibraryImport(Libc, EntryPoint = "getsockname", SetLastError = true)]
    internal static unsafe partial int GetSockName(int fd, byte* address, uint* addressLength);
}
