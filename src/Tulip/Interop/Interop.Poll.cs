using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    internal const short POLLIN = 0x001;
    internal const short POLLPRI = 0x002;
    internal const short POLLOUT = 0x004;
    internal const short POLLERR = 0x008;
    internal const short POLLHUP = 0x010;
    internal const short POLLNVAL = 0x020;

    /// <summary>struct pollfd: 8 bytes, naturally aligned on every ABI.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct PollFd
    {
        public int Fd;
        public short Events;
        public short REvents;
    }

    /// <summary>poll(2): the number of entries with non-zero revents, 0 on timeout, -1 with errno set.</summary>
    [LibraryImport(Libc, EntryPoint = "poll", SetLastError = true)]
    internal static unsafe partial int Poll(PollFd* fds, nuint count, int timeoutMs);
}
