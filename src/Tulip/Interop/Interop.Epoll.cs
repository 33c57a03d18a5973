using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Tulip;

internal static partial class Interop
{
    internal const int EPOLL_CLOEXEC = O_CLOEXEC;
    internal const int EPOLL_CTL_ADD = 1;
    internal const int EPOLL_CTL_DEL = 2;
    internal const int EPOLL_CTL_MOD = 3;
    internal const uint EPOLLIN = 0x001;
    internal const uint EPOLLPRI = 0x002;
    internal const uint EPOLLOUT = 0x004;
    internal const uint EPOLLERR = 0x008;
    internal const uint EPOLLHUP = 0x010;
    internal const uint EPOLLRDHUP = 0x2000;

    /// <summary>struct epoll_event on x86_64 (and i386), where glibc declares it
    /// <c>__attribute__((packed))</c>: 4 + 8 = 12 bytes, data at offset 4.</summary>
    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    internal struct EpollEventPacked
    {
        public uint Events;
        public ulong Data;
    }

    /// <summary>struct epoll_event on every other ABI (aarch64 included): naturally aligned,
    /// 16 bytes, data at offset 8.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct EpollEventAligned
    {
        public uint Events;
        public ulong Data;
    }

    /// <summary>Whether this process uses the packed <c>epoll_event</c> layout. A static readonly bool,
    /// so the JIT folds the branches on it away in tier-1 code.</summary>
    internal static readonly bool EpollEventIsPacked =
        RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86;

    /// <summary>sizeof(struct epoll_event) for this process.</summary>
    internal static unsafe int EpollEventSize => EpollEventIsPacked ? sizeof(EpollEventPacked) : sizeof(EpollEventAligned);

    [SupportedOSPlatform("linux")]
    [LibraryImport(Libc, EntryPoint = "epoll_create1", SetLastError = true)]
    internal static partial int EpollCreate1(int flags);

    /// <summary>epoll_ctl(2) with a pointer to an <c>epoll_event</c> of this process's layout (or null for DEL).</summary>
    [SupportedOSPlatform("linux")]
    [LibraryImport(Libc, EntryPoint = "epoll_ctl", SetLastError = true)]
    internal static unsafe partial int EpollCtl(int epfd, int op, int fd, void* epollEvent);

    /// <summary>epoll_wait(2) into <paramref name="events"/>, an array of <paramref name="maxEvents"/>
    /// <c>epoll_event</c>s of this process's layout (see <see cref="ReadEpollEvent"/>). Returns -1 with
    /// errno set: read it with <see cref="GetErrnoAfterFailure"/> at once.</summary>
    /// <remarks>No <c>SetLastError</c>: it would add two P/Invokes (clear and fetch errno) to every wait
    /// of the loop, for the rare failure (see <see cref="Recv"/>).</remarks>
    [SupportedOSPlatform("linux")]
    [LibraryImport(Libc, EntryPoint = "epoll_wait")]
    internal static unsafe partial int EpollWait(int epfd, void* events, int maxEvents, int timeoutMs);

    /// <summary>epoll_ctl with the event built in the right layout; returns the raw result (-1 with errno set).</summary>
    [SupportedOSPlatform("linux")]
    internal static unsafe int EpollCtl(int epfd, int op, int fd, uint events, ulong data)
    {
        if (EpollEventIsPacked)
        {
            EpollEventPacked packed = new() { Events = events, Data = data };
            return EpollCtl(epfd, op, fd, &packed);
        }

        EpollEventAligned aligned = new() { Events = events, Data = data };
        return EpollCtl(epfd, op, fd, &aligned);
    }

    /// <summary>Reads entry <paramref name="index"/> of an <c>epoll_event</c> array filled by <see cref="EpollWait"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void ReadEpollEvent(void* events, int index, out uint flags, out ulong data)
    {
        if (EpollEventIsPacked)
        {
            EpollEventPacked* e = (EpollEventPacked*)events + index;
            flags = e->Events;
            data = e->Data;
        }
        else
        {
            EpollEventAligned* e = (EpollEventAligned*)events + index;
            flags = e->Events;
            data = e->Data;
        }
    }
}
