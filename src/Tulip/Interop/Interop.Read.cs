using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>read(2): bytes read, 0 at end of file, -1 with errno set.</summary>
    [LibraryImport(Libc, EntryPoint = "read", SetLastError = true)]
    internal static unsafe partial nint Read(int fd, byte* buffer, nuint count);
}
