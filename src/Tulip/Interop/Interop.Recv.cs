using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>recv(2): bytes received, 0 at end of stream, -1 with errno set: read it with
    /// <see cref="GetErrnoAfterFailure"/> at once.</summary>
    /// <remarks>
    /// <para>The stream transports call it on their non-blocking socket's fd directly rather than
    /// through <c>Socket.Receive</c>: one P/Invoke instead of the SafeHandle reference count, the
    /// SocketPal layers and System.Native's shim on every read (docs/PERFORMANCE.md).</para>
    /// <para>No <c>SetLastError = true</c>: the generated stub would clear errno before the call and
    /// fetch it after, two more P/Invokes into System.Native on every successful read of the hot path.
    /// recv sets errno whenever it returns -1, so the caller fetches it then, and only then.</para>
    /// </remarks>
    [LibraryImport(Libc, EntryPoint = "recv")]
    internal static unsafe partial nint Recv(int fd, byte* buffer, nuint length, int flags);
}
