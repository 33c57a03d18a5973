using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>
    /// Linux caps one sendfile(2) at 0x7ffff000 bytes (MAX_RW_COUNT, fs/read_write.c), whatever is asked;
    /// asking for no more keeps the count meaningful on every kernel.
    /// </summary>
    internal const long SendFileMaxChunk = 0x7ffff000;

    /// <summary>
    /// sendfile(2): copies up to <paramref name="count"/> bytes of <paramref name="inFile"/>, from
    /// <c>*offset</c>, to <paramref name="outFd"/> inside the kernel, and advances <c>*offset</c> by what
    /// it sent; the file's own position is left alone. Returns the bytes sent (0 at end of file), or -1
    /// with errno set (EAGAIN when a non-blocking socket is full; EINVAL or ENOSYS when the file cannot
    /// be sent this way). 64-bit <c>off_t</c>: glibc's sendfile is sendfile64 on 64-bit Linux.
    /// </summary>
    [SupportedOSPlatform("linux")]
    [LibraryImport(Libc, EntryPoint = "sendfile", SetLastError = true)]
    internal static unsafe partial nint SendFile(int outFd, SafeFileHandle inFile, long* offset, nuint count);
}
