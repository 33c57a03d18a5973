using System;
using System.Runtime.CompilerServices;
using System.Runtime.Versioning;
using System.Threading;

namespace Tulip.Selectors;

/// <summary>
/// The self-pipe that wakes a loop blocked in <see cref="ISelector.Select"/>: the loop registers
/// <see cref="ReadFd"/> for Read, any thread calls <see cref="Signal"/>, the loop calls <see cref="Drain"/>.
/// An eventfd on Linux (one fd, one 8-byte counter); a non-blocking pipe elsewhere.
/// </summary>
/// <remarks>
/// <see cref="Signal"/> may be called from any thread, concurrently with anything but <see cref="Dispose"/>
/// (the loop guarantees no Signal once Dispose starts). <see cref="Drain"/> and <see cref="Dispose"/> belong
/// to the loop thread.
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed unsafe class Wakeup : IDisposable
{
    // Both fds are O_NONBLOCK and O_CLOEXEC. For an eventfd they are the same fd.
    // Written only by the constructor and Dispose; read by Signal from any thread.
    private int _readFd;
    private int _writeFd;

    /// <summary>Creates an eventfd on Linux, a pipe elsewhere.</summary>
    /// <exception cref="System.IO.IOException">The kernel refused (EMFILE...).</exception>
    public Wakeup()
        : this(useEventFd: OperatingSystem.IsLinux())
    {
    }

    /// <summary>Creates the given kind; tests use <c>useEventFd: false</c> to exercise the pipe on Linux.</summary>
    internal Wakeup(bool useEventFd)
    {
        if (useEventFd)
        {
            if (!OperatingSystem.IsLinux())
            {
                throw new PlatformNotSupportedException("eventfd needs Linux.");
            }

            _readFd = _writeFd = CreateEventFd();
            IsEventFd = true;
        }
        else
        {
            int* fds = stackalloc int[2];
            if (Interop.Pipe2(fds, Interop.O_NONBLOCK | Interop.O_CLOEXEC) != 0)
            {
                Interop.ThrowForLastErrno("pipe2(O_NONBLOCK | O_CLOEXEC)");
            }

            _readFd = fds[0];
            _writeFd = fds[1];
        }
    }

    /// <summary>The fd to register for Read; -1 once disposed.</summary>
    public int ReadFd => _readFd;

    /// <summary>Whether this is an eventfd (else a pipe).</summary>
    public bool IsEventFd { get; }

    /// <summary>Makes <see cref="ReadFd"/> readable. Any thread; idempotent until the next <see cref="Drain"/>.</summary>
    public void Signal()
    {
        // eventfd adds the 8-byte value to its counter; a pipe takes any byte.
        ulong one = 1;
        nuint size = IsEventFd ? sizeof(ulong) : 1u;
        while (Interop.Write(_writeFd, (byte*)&one, size) < 0)
        {
            int errno = Interop.GetLastErrno();
            if (errno == Interop.Errno.EINTR)
            {
                continue;
            }

            // EAGAIN: the pipe is full or the counter saturated, so it is already readable.
            if (errno != Interop.Errno.EAGAIN)
            {
                Interop.ThrowForErrno(errno, IsEventFd ? "write(eventfd)" : "write(wakeup pipe)");
            }

            return;
        }
    }

    /// <summary>Consumes every pending signal, so <see cref="ReadFd"/> is no longer readable. Loop thread.</summary>
    public void Drain()
    {
        // 8 bytes is what an eventfd read needs (it returns and resets the whole counter); for the pipe,
        // a larger buffer drains a burst of signals in fewer calls.
        byte* buffer = stackalloc byte[64];
        nuint size = IsEventFd ? sizeof(ulong) : 64u;
        while (true)
        {
            nint n = Interop.Read(_readFd, buffer, size);
            if (n > 0)
            {
                continue;
            }

            if (n == 0)
            {
                return; // pipe at EOF: cannot happen while we hold the write end, but never spin on it
            }

            int errno = Interop.GetLastErrno();
            if (errno == Interop.Errno.EAGAIN)
            {
                return;
            }

            if (errno != Interop.Errno.EINTR)
            {
                Interop.ThrowForErrno(errno, IsEventFd ? "read(eventfd)" : "read(wakeup pipe)");
            }
        }
    }

    /// <summary>Closes the fd(s). Idempotent.</summary>
    public void Dispose()
    {
        int readFd = Interlocked.Exchange(ref _readFd, -1);
        int writeFd = Interlocked.Exchange(ref _writeFd, -1);
        if (readFd >= 0)
        {
            Interop.Close(readFd);
        }

        if (writeFd >= 0 && writeFd != readFd)
        {
            Interop.Close(writeFd);
        }
    }

    [SupportedOSPlatform("linux")]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int CreateEventFd()
    {
        int fd = Interop.EventFd(0, Interop.EFD_NONBLOCK | Interop.EFD_CLOEXEC);
        if (fd < 0)
        {
            Interop.ThrowForLastErrno("eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)");
        }

        return fd;
    }
}
