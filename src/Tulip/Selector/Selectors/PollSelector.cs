using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Versioning;

namespace Tulip.Selectors;

/// <summary>
/// The portable notify-when-ready multiplexer: poll(2) over a dense <c>pollfd</c> array that the
/// selector keeps between calls, so a Select over an unchanged set allocates nothing and copies nothing.
/// </summary>
/// <remarks>
/// <para>Owned by the loop thread (see <see cref="ISelector"/>); nothing here is synchronised.</para>
/// <para>Costs O(registered fds) per Select, against epoll's O(ready fds): it is the fallback and the
/// cross-check for the epoll backend, not the one to choose on Linux.</para>
/// <para>POLLERR/POLLHUP are reported as Read|Write filtered to the registered interest, like the epoll
/// backend. Unlike epoll, the kernel does not forget a closed fd: it reports POLLNVAL, which is reported
/// as <see cref="SelectorEvents.Invalid"/> so the loop drops the registration rather than spinning on it.
/// <see cref="Add"/> refuses an fd that is not open (EBADF, as EPOLL_CTL_ADD does), and each entry keeps
/// the identity (device, inode) of the file it was added for, so <see cref="Modify"/> sees a number that
/// was closed and reused, as EPOLL_CTL_MOD's ENOENT does. What poll cannot see is a number closed and
/// reused between two waits with no call here: the new file's readiness is then reported under the old
/// token, so a reader must be removed before its fd is closed (as asyncio requires too).</para>
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed unsafe class PollSelector : ISelector
{
    // Starting capacity of the arrays; they double as needed and never shrink.
    private const int InitialCapacity = 64;

    // _fds[0.._count) is what poll(2) sees; _tokens[i] and _identities[i] belong to _fds[i]; _indexByFd maps an fd to i.
    // Remove swaps the last entry into the hole, so all three stay dense.
    private Interop.PollFd[] _fds = new Interop.PollFd[InitialCapacity];
    private ulong[] _tokens = new ulong[InitialCapacity];
    private Interop.FdIdentity[] _identities = new Interop.FdIdentity[InitialCapacity];
    private readonly Dictionary<int, int> _indexByFd = new();
    private int _count;

    // Where the next Select starts scanning, so that when more fds are ready than the caller's span
    // holds, the ones left over are reported first next time instead of starving behind low indices.
    private int _scanStart;

    private bool _disposed;

    public string Name => "poll";

    /// <summary>How many fds are registered.</summary>
    internal int Count => _count;

    public void Add(int fd, SelectorEvents events, ulong token)
    {
        ThrowIfDisposed();
        if (fd < 0)
        {
            Interop.ThrowForErrno(Interop.Errno.EBADF, $"poll: add fd {fd}");
        }

        if (_indexByFd.ContainsKey(fd))
        {
            // What EPOLL_CTL_ADD says for an fd already registered.
            Interop.ThrowForErrno(Interop.Errno.EEXIST, $"poll: add fd {fd}");
        }

        // poll(2) takes any number and reports POLLNVAL later; fail now instead, as epoll does.
        if (!Interop.TryGetFdIdentity(fd, out var identity, out int errno))
        {
            Interop.ThrowForErrno(errno, $"poll: add fd {fd}");
        }

        Append(fd, events, token, identity);
    }

    public bool Modify(int fd, SelectorEvents events, ulong token)
    {
        ThrowIfDisposed();
        if (!_indexByFd.TryGetValue(fd, out int index))
        {
            return false;
        }

        // One statx, which EPOLL_CTL_MOD costs anyway: is the number still the file that was added?
        if (!Interop.TryGetFdIdentity(fd, out var identity, out _) || identity != _identities[index])
        {
            Remove(fd);
            return false;
        }

        _fds[index].Events = ToPoll(events);
        _fds[index].REvents = 0;
        _tokens[index] = token;
        return true;
    }

    public void Remove(int fd)
    {
        ThrowIfDisposed();
        if (!_indexByFd.Remove(fd, out int index))
        {
            return;
        }

        int last = --_count;
        if (index != last)
        {
            _fds[index] = _fds[last];
            _tokens[index] = _tokens[last];
            _identities[index] = _identities[last];
            _indexByFd[_fds[index].Fd] = index;
        }

        _fds[last] = default;
        _tokens[last] = 0;
        _identities[last] = default;
    }

    public int Select(Span<SelectorEvent> events, int timeoutMs)
    {
        ThrowIfDisposed();
        if (events.IsEmpty)
        {
            ThrowEmptySpan();
        }

        int count = _count;
        int n;
        fixed (Interop.PollFd* fds = _fds)
        {
            n = Interop.Poll(fds, (nuint)count, timeoutMs);
        }

        if (n <= 0)
        {
            if (n < 0)
            {
                int errno = Interop.GetLastErrno();
                if (errno != Interop.Errno.EINTR)
                {
                    Interop.ThrowForErrno(errno, "poll");
                }
            }

            return 0;
        }

        int filled = 0;
        int start = _scanStart < count ? _scanStart : 0;
        int i = start;
        // n counts the entries with non-zero revents: stop once they are all seen or the span is full.
        int seen = 0;
        do
        {
            short revents = _fds[i].REvents;
            if (revents != 0)
            {
                seen++;
                SelectorEvents ready = ToSelectorEvents(revents, _fds[i].Events);
                if (ready != SelectorEvents.None)
                {
                    events[filled++] = new SelectorEvent(_tokens[i], ready);
                }
            }

            if (++i == count)
            {
                i = 0;
            }
        }
        while (i != start && seen < n && filled < events.Length);

        _scanStart = i;
        return filled;
    }

    public void Dispose()
    {
        // poll(2) keeps no kernel state; this only drops the arrays so a disposed selector holds nothing.
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _fds = [];
        _tokens = [];
        _identities = [];
        _indexByFd.Clear();
        _count = 0;
    }

    private void Append(int fd, SelectorEvents events, ulong token, Interop.FdIdentity identity)
    {
        if (_count == _fds.Length)
        {
            Array.Resize(ref _fds, _fds.Length * 2);
            Array.Resize(ref _tokens, _tokens.Length * 2);
            Array.Resize(ref _identities, _identities.Length * 2);
        }

        int index = _count++;
        _fds[index] = new Interop.PollFd { Fd = fd, Events = ToPoll(events), REvents = 0 };
        _tokens[index] = token;
        _identities[index] = identity;
        _indexByFd.Add(fd, index);
    }

    private static short ToPoll(SelectorEvents events)
    {
        short mask = 0;
        if ((events & SelectorEvents.Read) != 0)
        {
            mask |= Interop.POLLIN;
        }

        if ((events & SelectorEvents.Write) != 0)
        {
            mask |= Interop.POLLOUT;
        }

        return mask;
    }

    // POLLIN/POLLOUT come back only if asked for; POLLERR/POLLHUP always can, and are reported as
    // whatever the fd is registered for (the callback that reads or writes sees the error). POLLNVAL
    // (the number is not open) is not readiness at all: calling back would only spin, since poll
    // reports it again on every call; it is reported as Invalid, for the loop to drop the registration.
    private static SelectorEvents ToSelectorEvents(short revents, short interest)
    {
        if ((revents & Interop.POLLNVAL) != 0)
        {
            return SelectorEvents.Invalid;
        }

        SelectorEvents ready = SelectorEvents.None;
        if ((revents & (Interop.POLLIN | Interop.POLLERR | Interop.POLLHUP)) != 0
            && (interest & Interop.POLLIN) != 0)
        {
            ready |= SelectorEvents.Read;
        }

        if ((revents & (Interop.POLLOUT | Interop.POLLERR | Interop.POLLHUP)) != 0
            && (interest & Interop.POLLOUT) != 0)
        {
            ready |= SelectorEvents.Write;
        }

        return ready;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowEmptySpan() =>
        throw new ArgumentException("Select needs room for at least one event.", "events");
}
