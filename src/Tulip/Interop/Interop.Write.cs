using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>write(2): bytes written, -1 with errno set.</summary>
    [LibraryImport(Libc, EntryPoint = "write", SetLastError = true)]
    internal static unsafe partial nint Write(int fd, byte* buffer, nuint count);
}
