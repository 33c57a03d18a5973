using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    internal const int SOL_SOCKET = 1;
    internal const int SO_LINGER = 13;
    internal const int IPPROTO_TCP = 6;
    internal const int TCP_NODELAY = 1;

    /// <summary>struct linger: SO_LINGER's value.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Linger
    {
        public int OnOff;
        public int Seconds;
    }

    /// <summary>setsockopt(2): 0, or -1 with errno set.</summary>
    [LibraryImport(Libc, EntryPoint = "setsockopt", SetLastError = true)]
    internal static unsafe partial int SetSockOpt(int fd, int level, int name, void* value, uint valueLength);

    /// <summary>setsockopt(2) for an int option: 0, or -1 with errno set.</summary>
    internal static unsafe int SetSockOptInt(int fd, int level, int name, int value) =>
        SetSockOpt(fd, level, name, &value, sizeof(int));
}
