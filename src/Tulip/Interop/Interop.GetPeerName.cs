using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>
    /// getpeername(2): 0, or -1 with errno set. <paramref name="addressLength"/> as for <see cref="Accept4"/>.
    /// The io_uring loop's multishot accept asks for each connection's peer with it: one completion of a
    /// multishot accept cannot carry an address (every completion would write into the same one).
    /// </summary>
    [LibraryImport(Libc, EntryPoint = "getpeername", SetLastError = true)]
    internal static unsafe partial int GetPeerName(int fd, byte* address, uint* addressLength);
}
