using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>O_NONBLOCK for pipe2, eventfd (EFD_NONBLOCK) and F_SETFL (04000 on x86_64 and aarch64).</summary>
    internal const int O_NONBLOCK = 0x800;

    /// <summary>O_CLOEXEC for pipe2, eventfd (EFD_CLOEXEC) and epoll_create1 (EPOLL_CLOEXEC) (02000000).</summary>
    internal const int O_CLOEXEC = 0x80000;

    /// <summary>pipe2(2): <paramref name="fds"/>[0] is the read end, [1] the write end.</summary>
    [LibraryImport(Libc, EntryPoint = "pipe2", SetLastError = true)]
    internal static unsafe partial int Pipe2(int* fds, int flags);
}
