using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Tulip.Selectors;

/// <summary>
/// The Linux notify-when-ready multiplexer: one epoll instance (EPOLL_CLOEXEC), level-triggered,
/// with the caller's token stored in <c>epoll_event.data</c> so the kernel hands it back.
/// </summary>
/// <remarks>
/// <para>Owned by the loop thread (see <see cref="ISelector"/>); nothing here is synchronised.</para>
/// <para>The kernel reports EPOLLIN/EPOLLOUT only if they were asked for, but always reports
/// EPOLLERR/EPOLLHUP. Those are turned into Read|Write and filtered to the interest registered for the
/// token, which is why the interest is remembered per token. An fd registered with
/// <see cref="SelectorEvents.None"/> therefore never produces an event, but a hung-up one still makes
/// epoll_wait return at once: remove an fd rather than leaving it registered with no interest.</para>
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed unsafe class EpollSelector : ISelector
{
    // The epoll fd; -1 once disposed.
    private int _epfd;

    // Native epoll_event array handed to epoll_wait: reused by every Select, reallocated only when
    // a caller passes a larger span than before. Freed by Dispose.
    private void* _buffer;
    private int _capacity;

    // fd -> the token and interest it is registered with, in an array indexed by the fd (the kernel
    // hands out the lowest free number, so they are dense): Remove forgets the token, and Select
    // filters EPOLLERR/EPOLLHUP by the interest of the token an event carries. A token whose low 32
    // bits are its fd (the loop's tokens: fd and generation) is found in the fd's slot; any other
    // token's interest is also kept in _otherTokens. Tokens are expected to be unique among registered
    // fds; if two fds share one, the most recent registration's interest is used for both. Two
    // dictionaries (fd -> token, token -> interest) cost about 80 B per registered fd and left their
    // outgrown arrays on the large object heap (docs/PERFORMANCE.md, "Memory per idle connection").
    private Slot[] _slots = new Slot[64];
    private readonly Dictionary<ulong, SelectorEvents> _otherTokens = new();

    /// <summary>Creates the epoll instance.</summary>
    /// <exception cref="System.IO.IOException">epoll_create1 failed (EMFILE, ENOMEM...).</exception>
    public EpollSelector()
    {
        _epfd = Interop.EpollCreate1(Interop.EPOLL_CLOEXEC);
        if (_epfd < 0)
        {
            Interop.ThrowForLastErrno("epoll_create1(EPOLL_CLOEXEC)");
        }
    }

    public string Name => "epoll";

    /// <summary>The epoll fd, for diagnostics and tests; -1 once disposed.</summary>
    internal int EpollFd => _epfd;

    public void Add(int fd, SelectorEvents events, ulong token)
    {
        ThrowIfDisposed();
        if (Interop.EpollCtl(_epfd, Interop.EPOLL_CTL_ADD, fd, ToEpoll(events), token) != 0)
        {
            ThrowCtlFailed(Interop.GetLastErrno(), "EPOLL_CTL_ADD", fd);
        }

        Remember(fd, events, token);
    }

    public bool Modify(int fd, SelectorEvents events, ulong token)
    {
        ThrowIfDisposed();
        if (Interop.EpollCtl(_epfd, Interop.EPOLL_CTL_MOD, fd, ToEpoll(events), token) != 0)
        {
            int errno = Interop.GetLastErrno();
            // ENOENT: the registered file was closed, so the kernel dropped its registration (the number
            // may name a new file now); EBADF: closed and the number not reused. Either way what was
            // registered is gone, and re-adding it here would hand the old interest to a new file.
            if (errno != Interop.Errno.ENOENT && errno != Interop.Errno.EBADF)
            {
                ThrowCtlFailed(errno, "EPOLL_CTL_MOD", fd);
            }

            Forget(fd);
            return false;
        }

        Remember(fd, events, token);
        return true;
    }

    public void Remove(int fd)
    {
        ThrowIfDisposed();
        Forget(fd);
        // A null event pointer is fine for DEL since Linux 2.6.9.
        if (Interop.EpollCtl(_epfd, Interop.EPOLL_CTL_DEL, fd, null) != 0)
        {
            int errno = Interop.GetLastErrno();
            // ENOENT: closed and auto-removed (or never added); EBADF: closed and not reused.
            if (errno != Interop.Errno.ENOENT && errno != Interop.Errno.EBADF)
            {
                ThrowCtlFailed(errno, "EPOLL_CTL_DEL", fd);
            }
        }
    }

    public int Select(Span<SelectorEvent> events, int timeoutMs)
    {
        ThrowIfDisposed();
        if (events.IsEmpty)
        {
            ThrowEmptySpan();
        }

        if (events.Length > _capacity)
        {
            GrowBuffer(events.Length);
        }

        int n = Interop.EpollWait(_epfd, _buffer, events.Length, timeoutMs);
        if (n < 0)
        {
            int errno = Interop.GetErrnoAfterFailure();
            if (errno == Interop.Errno.EINTR)
            {
                return 0;
            }

            Interop.ThrowForErrno(errno, "epoll_wait");
        }

        int filled = 0;
        for (int i = 0; i < n; i++)
        {
            Interop.ReadEpollEvent(_buffer, i, out uint flags, out ulong token);
            SelectorEvents ready = SelectorEvents.None;
            if ((flags & Interop.EPOLLIN) != 0)
            {
                ready |= SelectorEvents.Read;
            }

            if ((flags & Interop.EPOLLOUT) != 0)
            {
                ready |= SelectorEvents.Write;
            }

            if ((flags & (Interop.EPOLLERR | Interop.EPOLLHUP)) != 0)
            {
                ready |= ErrorEvents(token);
            }

            if (ready != SelectorEvents.None)
            {
                events[filled++] = new SelectorEvent(token, ready);
            }
        }

        return filled;
    }

    public void Dispose()
    {
        int epfd = _epfd;
        if (epfd < 0)
        {
            return;
        }

        _epfd = -1;
        Interop.Close(epfd);
        NativeMemory.Free(_buffer);
        _buffer = null;
        _capacity = 0;
        _slots = [];
        _otherTokens.Clear();
    }

    private static uint ToEpoll(SelectorEvents events)
    {
        uint mask = 0;
        if ((events & SelectorEvents.Read) != 0)
        {
            mask |= Interop.EPOLLIN;
        }

        if ((events & SelectorEvents.Write) != 0)
        {
            mask |= Interop.EPOLLOUT;
        }

        return mask;
    }

    // An error or hang-up is reported as whatever the fd is registered for, so the callback that
    // reads or writes is the one that sees it. A token no longer known (its fd was closed and a
    // duplicate keeps the old registration alive) gets both; the loop discards it as stale.
    private SelectorEvents ErrorEvents(ulong token)
    {
        if (_otherTokens.Count != 0 && _otherTokens.TryGetValue(token, out SelectorEvents other))
        {
            return other;
        }

        uint fd = (uint)token;
        var slots = _slots;
        return fd < (uint)slots.Length && slots[fd].Registered && slots[fd].Token == token
            ? slots[fd].Interest
            : SelectorEvents.Read | SelectorEvents.Write;
    }

    private void Remember(int fd, SelectorEvents events, ulong token)
    {
        Forget(fd);
        if ((uint)fd >= (uint)_slots.Length)
        {
            Array.Resize(ref _slots, Math.Max(fd + 1, _slots.Length * 2));
        }

        _slots[fd] = new Slot { Token = token, Interest = events, Registered = true };
        if ((uint)token == (uint)fd)
        {
            // The most recent registration wins: another fd's registration of the same token is shadowed.
            _otherTokens.Remove(token);
        }
        else
        {
            _otherTokens[token] = events;
        }
    }

    private void Forget(int fd)
    {
        if ((uint)fd < (uint)_slots.Length && _slots[fd].Registered)
        {
            ulong oldToken = _slots[fd].Token;
            _slots[fd] = default;
            _otherTokens.Remove(oldToken);
        }
    }

    /// <summary>One fd's registration: 16 bytes in <see cref="_slots"/>.</summary>
    private struct Slot
    {
        public ulong Token;
        public SelectorEvents Interest;
        public bool Registered;
    }

    private void GrowBuffer(int capacity)
    {
        void* buffer = NativeMemory.Alloc((nuint)capacity, (nuint)Interop.EpollEventSize);
        NativeMemory.Free(_buffer);
        _buffer = buffer;
        _capacity = capacity;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_epfd < 0, this);

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowCtlFailed(int errno, string op, int fd) =>
        Interop.ThrowForErrno(errno, $"epoll_ctl({op}, fd {fd})");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowEmptySpan() =>
        throw new ArgumentException("Select needs room for at least one event.", "events");
}
