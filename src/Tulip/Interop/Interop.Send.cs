using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>send(2): bytes sent, -1 with errno set: read it with <see cref="GetErrnoAfterFailure"/> at once.</summary>
    /// <remarks>Called by the stream transports on their non-blocking socket's fd, without
    /// <c>SetLastError</c> and with <c>[SuppressGCTransition]</c> for the reasons, and on the
    /// condition (a non-blocking fd only), that <see cref="Recv"/> gives; they pass <see cref="MSG_NOSIGNAL"/>.</remarks>
    [LibraryImport(Libc, EntryPoint = "send")]
    [SuppressGCTransition]
    internal static unsafe partial nint Send(int fd, byte* buffer, nuint length, int flags);
}
