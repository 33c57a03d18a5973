using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Tulip;

internal static partial class Interop
{
    internal const int EFD_NONBLOCK = O_NONBLOCK;
    internal const int EFD_CLOEXEC = O_CLOEXEC;

    /// <summary>eventfd(2): a 64-bit counter; write adds, read returns and resets it. Reads and writes are 8 bytes.</summary>
    [SupportedOSPlatform("linux")]
    [LibraryImport(Libc, EntryPoint = "eventfd", SetLastError = true)]
    internal static partial int EventFd(uint initialValue, int flags);
}
