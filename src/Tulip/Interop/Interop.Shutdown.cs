using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>shutdown(2)'s <c>how</c>: no more sends (the peer reads end of stream).</summary>
    internal const int SHUT_WR = 1;

    /// <summary>shutdown(2): 0, or -1 with errno set.</summary>
    [LibraryImport(Libc, EntryPoint = "shutdown", SetLastError = true)]
    internal static partial int Shutdown(int fd, int how);
}
