using System.Runtime.InteropServices;

namespace Tulip.Extras;

/// <summary>The native calls of Tulip.Extras: its own, as a third party's would be (Tulip's interop is internal).</summary>
internal static partial class Interop
{
    internal const int AF_UNIX = 1;
    internal const int SOCK_SEQPACKET = 5;
    internal const int SOCK_CLOEXEC = 0x80000;

    /// <summary>socketpair(2): two connected sockets in <paramref name="fds"/>; -1 with errno set.</summary>
    [LibraryImport("libc", EntryPoint = "socketpair", SetLastError = true)]
    internal static unsafe partial int SocketPair(int domain, int type, int protocol, int* fds);
}
