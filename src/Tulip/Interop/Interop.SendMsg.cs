using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>
    /// How many buffers one vectored send takes (each an <see cref="IoVec"/>, declared with writev). IOV_MAX is 1024 on Linux; 64 keeps the iovec array
    /// and the pins on the caller's stack, and more buffers than that simply take another call.
    /// </summary>
    internal const int SendVectorMax = 64;

    /// <summary>
    /// struct msghdr on 64-bit Linux (glibc): name, namelen (padded to 8), iov, iovlen (size_t),
    /// control, controllen (size_t), flags. Sequential layout gives the C padding.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>sendmsg(2): bytes sent (possibly fewer than asked on a non-blocking socket), or -1 with errno set.</summary>
    [LibraryImport(Libc, EntryPoint = "sendmsg", SetLastError = true)]
    internal static unsafe partial nint SendMsg(int fd, MsgHdr* message, int flags);
}
