using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>close(2). Never retry on EINTR: on Linux the fd is released even then, and a retry
    /// could close a number another thread has just been given.</summary>
    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);
}
