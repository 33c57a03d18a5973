using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>IOV_MAX on Linux: the most buffers one writev(2) takes.</summary>
    internal const int IOV_MAX = 1024;

    /// <summary>struct iovec: a buffer's address and length (the same layout on every 64-bit ABI).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    /// <summary>write(2): bytes written, -1 with errno set.</summary>
    [LibraryImport(Libc, EntryPoint = "write", SetLastError = true)]
    internal static unsafe partial nint Write(int fd, byte* buffer, nuint count);

    /// <summary>writev(2): writes the buffers in order as one call; bytes written (possibly fewer than all), -1 with errno set.</summary>
    [LibraryImport(Libc, EntryPoint = "writev", SetLastError = true)]
    internal static unsafe partial nint Writev(int fd, IoVec* iov, int iovcnt);
}
