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
    /// <para><c>[SuppressGCTransition]</c>: the call stays in cooperative mode, skipping the P/Invoke
    /// frame and the two GC-mode switches (loop-thread instructions per 1 KiB echo 1,160 -> 957 with
    /// <see cref="Send"/>'s; docs/PERFORMANCE.md). That is sound only because the call cannot wait:
    /// every socket a transport owns is non-blocking (the loop sets O_NONBLOCK, or refuses a blocking
    /// socket), recv never calls back into the runtime, and a GC that another thread starts meanwhile
    /// waits for it as it would for managed code. Never call it on a blocking fd: a socket made blocking
    /// again through <c>GetExtraInfo("socket")</c> would stall the loop, and with this attribute any GC
    /// as well.</para>
    /// </remarks>
    [LibraryImport(Libc, EntryPoint = "recv")]
    [SuppressGCTransition]
    internal static unsafe partial nint Recv(int fd, byte* buffer, nuint length, int flags);
}
