using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>MSG_TRUNC: recvfrom on a datagram socket returns the datagram's real length, even when it was cut to fit the buffer.</summary>
    internal const int MSG_TRUNC = 0x20;

    /// <summary>MSG_DONTWAIT: this call does not block, whatever the socket's mode.</summary>
    internal const int MSG_DONTWAIT = 0x40;

    /// <summary>MSG_NOSIGNAL: a send on a broken connection fails with EPIPE instead of raising SIGPIPE.</summary>
    internal const int MSG_NOSIGNAL = 0x4000;

    /// <summary>
    /// recvfrom(2): the byte count (with <see cref="MSG_TRUNC"/>, the datagram's full length), -1 with
    /// errno set. <paramref name="addressLength"/> is the capacity of <paramref name="address"/> on
    /// entry and the length of the sender's address on return. The datagram transport calls it
    /// directly, not through <c>Socket.ReceiveFrom</c>, so EAGAIN and ICMP errors come back as an
    /// errno instead of a thrown exception, and the sender's address lands in a reused buffer.
    /// </summary>
    [LibraryImport(Libc, EntryPoint = "recvfrom", SetLastError = true)]
    internal static unsafe partial nint RecvFrom(int fd, byte* buffer, nuint length, int flags, byte* address, uint* addressLength);

    /// <summary>sendto(2): bytes sent (the whole datagram), -1 with errno set. A null address sends to the connected peer.</summary>
    [LibraryImport(Libc, EntryPoint = "sendto", SetLastError = true)]
    internal static unsafe partial nint SendTo(int fd, byte* buffer, nuint length, int flags, byte* address, uint addressLength);
}
