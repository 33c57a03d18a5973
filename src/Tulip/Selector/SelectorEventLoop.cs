using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Tulip.Selectors;
using System.Runtime.Versioning;
using Tulip.Diagnostics;

namespace Tulip;

/// <summary>
/// An event loop on a notify-when-ready multiplexer (asyncio's <c>SelectorEventLoop</c>): epoll on
/// Linux, poll(2) on any POSIX system. It implements the base loop's hooks by waiting in the
/// selector, and keeps one registration per fd with the reader and writer callbacks.
/// </summary>
/// <remarks>
/// Registrations are level-triggered and stay in the kernel while a reader or writer is set, so a
/// connection that keeps reading costs no epoll_ctl per read. Each registration carries a
/// generation in its selector token: an event for an fd that was closed and whose number was
/// reused is recognised as stale and dropped, never delivered to the new owner's callback.
/// <para>An fd closed without RemoveReader/RemoveWriter leaves a stale registration. When the number
/// is next registered, the selector reports that the file it had is gone (epoll's ENOENT; poll compares
/// the inode), and only what that call asks for is registered: a stale reader never fires for the
/// new file. poll reports a closed fd as POLLNVAL; the loop then drops the registration and reports it
/// to the exception handler instead of calling back on every iteration.</para>
/// <para>An fd a transport watches belongs to the transport (the transport is the state of its I/O
/// handle, see <see cref="IReadinessEventLoop.CreateIoHandle{TState}"/>): AddReader, AddWriter,
/// RemoveReader, RemoveWriter and the Sock* methods refuse it until the transport is closing, as
/// asyncio's <c>_ensure_fd_no_transport</c> does. The ownership is kept while the transport has
/// paused reading and has nothing to write.</para>
/// </remarks>
[SupportedOSPlatform("linux")]
public partial class SelectorEventLoop : BaseEventLoop, IReadinessEventLoop
{
    /// <summary>Events taken from the selector per wait. 1024 matches libuv's epoll batch.</summary>
    private const int EventBatchSize = 1024;

    private readonly ISelector _selector;
    private readonly Wakeup _wakeup;
    private readonly SelectorEvent[] _events = new SelectorEvent[EventBatchSize];
    // fd -> its registration. Owned by the loop thread.
    private readonly RegistrationTable _registrations = new();
    private uint _generation;

    /// <summary>Creates a loop on the named selector: "epoll", "poll", "io_uring", or null for the platform's best.</summary>
    /// <param name="selector">The selector backend; null picks epoll on Linux, poll elsewhere. "io_uring" is
    /// readiness through poll requests on an io_uring ring (issue 14's first step, not its completion backend).</param>
    /// <param name="loggerFactory">Where the loop logs; stderr if null.</param>
    /// <exception cref="ArgumentException">The selector name is unknown.</exception>
    /// <exception cref="PlatformNotSupportedException">"io_uring" was asked for where io_uring is disabled or
    /// missing; the message says which and what to use instead.</exception>
    public SelectorEventLoop(string? selector = null, ILoggerFactory? loggerFactory = null)
        : this(SelectorFactory.Create(string.IsNullOrEmpty(selector) ? null : selector), loggerFactory)
    {
    }

    /// <summary>A loop on <paramref name="selector"/>, which it owns from here on (disposed if this throws).</summary>
    private protected SelectorEventLoop(ISelector selector, ILoggerFactory? loggerFactory) : base(loggerFactory)
    {
        _selector = selector;
        try
        {
            _wakeup = new Wakeup();
            _selector.Add(_wakeup.ReadFd, SelectorEvents.Read, WakeupToken);
        }
        catch
        {
            _wakeup?.Dispose();
            _selector.Dispose();
            throw;
        }
    }

    /// <summary>The selector backend in use: "epoll", "poll" or "io_uring".</summary>
    public string SelectorName => _selector.Name;

    /// <inheritdoc/>
    internal override string MetricKind => SelectorName;

    /// <summary>Registered fds, those an open transport owns while it watches nothing included (for tests and diagnostics).</summary>
    internal int RegistrationCount => _registrations.Count;

    /// <summary>The fds the loop itself owns (the wake-up fd, and epoll's own fd), for tests that check Close releases them.</summary>
    internal int[] OwnFds => !OperatingSystem.IsLinux() ? [_wakeup.ReadFd] : _selector switch
    {
        EpollSelector epoll => [_wakeup.ReadFd, epoll.EpollFd],
        IoUringSelector ring => [_wakeup.ReadFd, ring.Ring.Fd],
        _ => [_wakeup.ReadFd],
    };

    /// <summary>Registered fds the selector watches (with an interest), for tests and diagnostics.</summary>
    internal int WatchingRegistrationCount => _registrations.CountWatching();

    /// <summary>Whether a reader or writer is set for <paramref name="fd"/>, or an open transport owns it.</summary>
    internal bool IsRegistered(int fd) => _registrations.TryGetValue(fd, out _);

    // Generation 0 is never used for a registration, so the wake-up fd's token is unique.
    private ulong WakeupToken => (uint)_wakeup.ReadFd;

    /// <inheritdoc/>
    protected override void ProcessEvents(double timeout)
    {
        if (timeout == 0 && _registrations.Count == 0 && !HasCompletionWork)
        {
            // Nothing but the wake-up fd is registered, and the base loop sees thread-safe calls by
            // their flag, not through the wake-up: a zero-timeout poll could only drain the wake-up,
            // which the next waiting poll does anyway (Signal tolerates a full pipe/counter). Skipping
            // the epoll_wait took the future round trip (two iterations each) from 671 ns to 74 ns
            // (bench/Tulip.Benchmarks, docs/PERFORMANCE.md).
            return;
        }

        int timeoutMs = timeout < 0 ? -1 : (int)Math.Min(Math.Ceiling(timeout * 1000), int.MaxValue);
        int n = _selector.Select(_events, timeoutMs);
        for (int i = 0; i < n; i++)
        {
            var ev = _events[i];
            if (ev.Token == WakeupToken)
            {
                _wakeup.Drain();
                continue;
            }

            int fd = (int)(uint)ev.Token;
            uint generation = (uint)(ev.Token >> 32);
            if (!_registrations.TryGetValue(fd, out var reg) || reg.Generation != generation)
            {
                continue; // stale: the fd was unregistered, or re-registered since
            }

            if ((ev.Events & SelectorEvents.Invalid) != 0)
            {
                DropClosedFd(fd, reg);
                continue;
            }

            if ((ev.Events & SelectorEvents.Read) != 0 && reg.Reader is { } reader)
            {
                if (reader.Cancelled)
                {
                    SetReader(fd, null);
                }
                else
                {
                    AddReadyHandle(reader);
                }
            }

            if ((ev.Events & SelectorEvents.Write) != 0 && reg.Writer is { } writer)
            {
                if (writer.Cancelled)
                {
                    SetWriter(fd, null);
                }
                else
                {
                    AddReadyHandle(writer);
                }
            }
        }
    }

    /// <summary>Whether the selector has work of its own that a zero-timeout iteration must not skip (the io_uring loop's queued entries and operations in flight).</summary>
    private protected virtual bool HasCompletionWork => false;

    /// <summary>The selector, for a loop that drives more than readiness through it.</summary>
    private protected ISelector Selector => _selector;

    /// <inheritdoc/>
    protected override void WriteToSelf() => _wakeup.Signal();

    /// <inheritdoc/>
    protected override void CloseCore()
    {
        _registrations.Clear();
        _selector.Dispose();
        _wakeup.Dispose();
    }

    /// <inheritdoc/>
    public override Handle AddReader(int fd, Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        CheckIoCall(fd);
        CheckNoTransport(fd);
        var handle = new ActionHandle(this, callback);
        SetReader(fd, handle);
        return handle;
    }

    /// <inheritdoc/>
    public override bool RemoveReader(int fd)
    {
        CheckIoCall(fd);
        CheckNoTransport(fd);
        return SetReader(fd, null);
    }

    /// <inheritdoc/>
    public override Handle AddWriter(int fd, Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        CheckIoCall(fd);
        CheckNoTransport(fd);
        var handle = new ActionHandle(this, callback);
        SetWriter(fd, handle);
        return handle;
    }

    /// <inheritdoc/>
    public override bool RemoveWriter(int fd)
    {
        CheckIoCall(fd);
        CheckNoTransport(fd);
        return SetWriter(fd, null);
    }

    /// <inheritdoc/>
    public Handle CreateIoHandle<TState>(Action<TState> callback, TState state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        return new StateHandle<TState>(this, callback, state);
    }

    /// <inheritdoc/>
    void IReadinessEventLoop.SetReader(int fd, Handle? handle)
    {
        CheckIoCall(fd);
        CheckIoHandle(handle);
        SetReader(fd, handle, cancelReplaced: false);
    }

    /// <inheritdoc/>
    void IReadinessEventLoop.SetWriter(int fd, Handle? handle)
    {
        CheckIoCall(fd);
        CheckIoHandle(handle);
        SetWriter(fd, handle, cancelReplaced: false);
    }

    private static void CheckIoHandle(Handle? handle)
    {
        if (handle is { Cancelled: true })
        {
            throw new ArgumentException("The handle is cancelled and can never run again: make a new one with CreateIoHandle.", nameof(handle));
        }
    }

    /// <summary>
    /// Sets (or with null, clears) the reader of <paramref name="fd"/>; a replaced reader's handle is
    /// cancelled unless <paramref name="cancelReplaced"/> is false. Returns whether a reader was set
    /// before. The transports use this with a handle they keep, so re-arming allocates nothing; they
    /// pass <c>cancelReplaced: false</c> because a cancelled handle can never run again.
    /// </summary>
    internal bool SetReader(int fd, Handle? reader, bool cancelReplaced = true)
    {
        if (!_registrations.TryGetValue(fd, out var reg))
        {
            if (reader is not null)
            {
                AddNew(fd, reader, null);
            }

            return false;
        }

        var old = reg.Reader;
        if (cancelReplaced && old is not null && !ReferenceEquals(old, reader))
        {
            old.Cancel();
        }

        Update(fd, reg, reader, reg.Writer, settingReader: true);
        return old is not null;
    }

    /// <summary>As <see cref="SetReader"/> for the writer.</summary>
    internal bool SetWriter(int fd, Handle? writer, bool cancelReplaced = true)
    {
        if (!_registrations.TryGetValue(fd, out var reg))
        {
            if (writer is not null)
            {
                AddNew(fd, null, writer);
            }

            return false;
        }

        var old = reg.Writer;
        if (cancelReplaced && old is not null && !ReferenceEquals(old, writer))
        {
            old.Cancel();
        }

        Update(fd, reg, reg.Reader, writer, settingReader: false);
        return old is not null;
    }

    private void AddNew(int fd, Handle? reader, Handle? writer)
    {
        var reg = new FdRegistration();
        var interest = InterestOf(reader, writer);
        uint generation = NextGeneration();
        _selector.Add(fd, interest, Token(fd, generation));
        _registrations[fd] = reg;
        reg.Generation = generation;
        reg.Interest = interest;
        reg.Reader = reader;
        reg.Writer = writer;
        reg.Owner = (reader ?? writer)!.OwningTransport;
    }

    /// <summary>
    /// Applies a new reader/writer pair to a registration; <paramref name="settingReader"/> says which
    /// side the caller set (the other is kept from before).
    /// </summary>
    private void Update(int fd, FdRegistration reg, Handle? reader, Handle? writer, bool settingReader)
    {
        var interest = InterestOf(reader, writer);
        if (interest == SelectorEvents.None)
        {
            Unwatch(fd, reg);
            return;
        }

        bool replaced = (reader is not null && !ReferenceEquals(reader, reg.Reader)) ||
                        (writer is not null && !ReferenceEquals(writer, reg.Writer));
        if (interest == reg.Interest && !replaced)
        {
            // Nothing the kernel needs to know: no syscall (seed 003: no re-registration churn).
            reg.Reader = reader;
            reg.Writer = writer;
            return;
        }

        // A new callback or new interest gets a new generation, so events still carrying the
        // old token (from a closed fd whose number was reused) are dropped.
        uint generation = NextGeneration();
        ulong token = Token(fd, generation);
        if (reg.Interest == SelectorEvents.None)
        {
            // Kept for its transport while nothing was watched: not in the kernel.
            _selector.Add(fd, interest, token);
        }
        else if (!_selector.Modify(fd, interest, token))
        {
            // The file registered under this number was closed (and the number perhaps reused) without
            // RemoveReader/RemoveWriter: the side kept from before belongs to that file and must never
            // fire for what the number names now. Keep only the side this call sets.
            var stale = settingReader ? reg.Writer : reg.Reader;
            if (settingReader)
            {
                writer = null;
            }
            else
            {
                reader = null;
            }

            ForgetStale(fd, reg, stale);
            interest = InterestOf(reader, writer);
            if (interest == SelectorEvents.None)
            {
                return;
            }

            AddNew(fd, reader, writer);
            return;
        }

        reg.Generation = generation;
        reg.Interest = interest;
        reg.Reader = reader;
        reg.Writer = writer;
        if ((settingReader ? reader : writer)?.OwningTransport is { } owner)
        {
            reg.Owner = owner;
        }
    }

    /// <summary>Nothing is watched any more: out of the kernel, and out of the table unless an open transport still owns the fd.</summary>
    private void Unwatch(int fd, FdRegistration reg)
    {
        bool inKernel = reg.Interest != SelectorEvents.None;
        reg.Reader = null;
        reg.Writer = null;
        reg.Interest = SelectorEvents.None;
        if (reg.Owner is not { IsClosing: false })
        {
            // Kept otherwise: a transport that paused reading with nothing to write still owns its fd.
            reg.Owner = null;
            _registrations.Remove(fd);
        }

        if (inKernel)
        {
            _selector.Remove(fd);
        }
    }

    /// <summary>Drops a registration whose file is gone (the selector forgot it already); says so in debug mode.</summary>
    private void ForgetStale(int fd, FdRegistration reg, Handle? stale)
    {
        _registrations.Remove(fd);
        reg.Reader = null;
        reg.Writer = null;
        reg.Interest = SelectorEvents.None;
        reg.Owner = null;
        if (stale is not null && Debug && Logger.IsEnabled(LogLevel.Warning))
        {
            Log.StaleFdRegistrationDropped(Logger, fd, stale);
        }
    }

    /// <summary>
    /// poll reported the fd as not open (POLLNVAL): it was closed while registered. Calling back could only
    /// spin (poll reports it on every wait), so the registration is dropped and the exception handler told.
    /// </summary>
    private void DropClosedFd(int fd, FdRegistration reg)
    {
        var owner = reg.Owner;
        var handle = reg.Reader ?? reg.Writer;
        _registrations.Remove(fd);
        _selector.Remove(fd);
        reg.Reader = null;
        reg.Writer = null;
        reg.Interest = SelectorEvents.None;
        reg.Owner = null;
        CallExceptionHandler(new ExceptionContext(
            $"fd {fd} was closed while the event loop still watched it; its reader and writer were removed. " +
            "Call RemoveReader/RemoveWriter (or close the transport) before closing an fd.")
        {
            Exception = Interop.GetExceptionForErrno(Interop.Errno.EBADF, $"poll(fd {fd})", source: Interop.ErrnoSource.File),
            Handle = handle,
            Transport = owner,
        });
    }

    /// <summary>
    /// Records that <paramref name="owner"/> owns <paramref name="fd"/> without watching it (the io_uring
    /// loop's completion transports, which read and write through the ring): the public reader/writer
    /// calls then refuse the fd as they refuse a readiness transport's. A registration left by a file
    /// this number named before (closed without RemoveReader/RemoveWriter) is dropped. The claim ends
    /// when the transport clears its reader and writer at close (<c>SetReader(fd, null)</c>).
    /// </summary>
    internal void ClaimFd(int fd, IBaseTransport owner)
    {
        if (_registrations.TryGetValue(fd, out var stale))
        {
            bool inKernel = stale.Interest != SelectorEvents.None;
            ForgetStale(fd, stale, stale.Reader ?? stale.Writer);
            if (inKernel)
            {
                _selector.Remove(fd);
            }
        }

        _registrations[fd] = new FdRegistration { Generation = NextGeneration(), Owner = owner };
    }

    /// <summary>Ends a <see cref="ClaimFd"/> of a transport that never started (its constructor failed).</summary>
    internal void ReleaseFd(int fd, IBaseTransport owner)
    {
        if (_registrations.TryGetValue(fd, out var reg) && ReferenceEquals(reg.Owner, owner) && reg.Interest == SelectorEvents.None)
        {
            _registrations.Remove(fd);
        }
    }

    /// <summary>
    /// asyncio's <c>_ensure_fd_no_transport</c>: refuses the public reader/writer calls on an fd an open
    /// transport watches, which would take its events or stop them behind its back.
    /// </summary>
    private void CheckNoTransport(int fd)
    {
        if (_registrations.TryGetValue(fd, out var reg) && reg.Owner is { IsClosing: false } owner)
        {
            ThrowUsedByTransport(fd, owner);
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowUsedByTransport(int fd, IBaseTransport owner) =>
        throw new InvalidOperationException(
            $"File descriptor {fd} is used by transport {owner}: AddReader/AddWriter/RemoveReader/RemoveWriter and the Sock* " +
            "methods would take its events or stop them behind its back. Use the transport's own methods " +
            "(PauseReading, ResumeReading, Write), or close the transport before using its fd directly.");

    private static ulong Token(int fd, uint generation) => ((ulong)generation << 32) | (uint)fd;

    private uint NextGeneration()
    {
        _generation++;
        if (_generation == 0)
        {
            _generation = 1;
        }

        return _generation;
    }

    private static SelectorEvents InterestOf(Handle? reader, Handle? writer) =>
        (reader is null ? SelectorEvents.None : SelectorEvents.Read) | (writer is null ? SelectorEvents.None : SelectorEvents.Write);

    private void CheckIoCall(int fd)
    {
        if (IsClosed)
        {
            throw new InvalidOperationException("The event loop is closed: create a new one with EventLoop.NewEventLoop().");
        }

        if (Debug)
        {
            CheckThread();
        }

        if (fd < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(fd), fd, "A file descriptor is a non-negative integer.");
        }

        if (fd == _wakeup.ReadFd)
        {
            throw new ArgumentException("That fd is the loop's own wake-up fd.", nameof(fd));
        }
    }

    /// <summary>
    /// fd -> registration, in an array indexed by the fd: the kernel hands out the lowest free fd, so
    /// the numbers are dense and bounded by RLIMIT_NOFILE (8 bytes a slot: 128 KiB at fd 16,383). It
    /// replaced a Dictionary whose hash lookup ran for every event in ProcessEvents (before -> after in
    /// docs/PERFORMANCE.md). Owned by the loop thread.
    /// </summary>
    private sealed class RegistrationTable
    {
        private FdRegistration?[] _items = new FdRegistration?[64];

        public int Count { get; private set; }

        public bool TryGetValue(int fd, [NotNullWhen(true)] out FdRegistration? registration)
        {
            var items = _items;
            registration = (uint)fd < (uint)items.Length ? items[fd] : null;
            return registration is not null;
        }

        public FdRegistration this[int fd]
        {
            set
            {
                if ((uint)fd >= (uint)_items.Length)
                {
                    Array.Resize(ref _items, Math.Max(fd + 1, _items.Length * 2));
                }

                if (_items[fd] is null)
                {
                    Count++;
                }

                _items[fd] = value;
            }
        }

        public void Remove(int fd)
        {
            if ((uint)fd < (uint)_items.Length && _items[fd] is not null)
            {
                _items[fd] = null;
                Count--;
            }
        }

        public void Clear()
        {
            Array.Clear(_items);
            Count = 0;
        }

        /// <summary>Registrations with an interest in the selector (not those kept only for an owning transport). O(n), for tests.</summary>
        public int CountWatching()
        {
            int n = 0;
            foreach (var item in _items)
            {
                if (item is { Interest: not SelectorEvents.None })
                {
                    n++;
                }
            }

            return n;
        }
    }

    /// <summary>What the loop knows of one fd: its callbacks, interest, current generation and owning transport.</summary>
    private sealed class FdRegistration
    {
        public Handle? Reader;
        public Handle? Writer;
        public SelectorEvents Interest;
        public uint Generation;
        // The transport whose I/O handle watches the fd, kept while it is open (even with no interest).
        public IBaseTransport? Owner;
    }
}
