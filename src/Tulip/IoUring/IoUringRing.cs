using System;
using System.IO;
using System.Runtime.CompilerServices;
using System.Runtime.Versioning;
using System.Threading;

namespace Tulip.IoUring;

/// <summary>
/// One io_uring instance: its fd, the submission and completion rings mapped into this process, and
/// the few operations an event loop needs on them (take a free submission entry, submit what was
/// queued, wait for completions until a deadline, read completions). Raw system calls only, no
/// native library (issue 14).
/// </summary>
/// <remarks>
/// <para>
/// Owned by one thread at a time (the loop's): nothing here is synchronised, as the kernel side of
/// each ring is lock-free only against the kernel. Head and tail words shared with the kernel are read
/// with acquire and written with release semantics, as liburing does.
/// </para>
/// <para>
/// Submission entries are queued locally and published to the kernel by <see cref="Submit"/> or
/// <see cref="SubmitAndWait"/>, so one loop iteration's operations cost one <c>io_uring_enter</c>.
/// When the ring is full, <see cref="GetSqe"/> submits what is queued first (the kernel consumes every
/// entry it is given before the call returns, as no submission thread is used), so more operations
/// than entries are queued, never refused.
/// </para>
/// <para>
/// Completions the kernel could not fit in the completion ring are kept by the kernel
/// (IORING_FEAT_NODROP, required here) and flagged in the ring's flags; <see cref="TryGetCompletion"/>
/// flushes them with an <c>io_uring_enter(GETEVENTS)</c> when the ring runs dry, so none is lost.
/// </para>
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed unsafe class IoUringRing : IDisposable
{
    /// <summary>The sysctl that says whether io_uring may be used (0: yes, 1: by a group only, 2: no).</summary>
    internal const string DisabledSysctl = "/proc/sys/kernel/io_uring_disabled";

    private static readonly Lazy<Exception?> s_unavailable = new(Probe);

    private int _fd;
    private readonly uint _features;
    private readonly uint _flags;

    private readonly byte* _sqRing;
    private readonly nuint _sqRingSize;
    private readonly byte* _cqRing;
    private readonly nuint _cqRingSize;
    private readonly IoUringSqe* _sqes;
    private readonly nuint _sqesSize;

    private readonly uint* _sqHead;
    private readonly uint* _sqTail;
    private readonly uint* _sqFlags;
    private readonly uint _sqMask;
    private readonly uint _sqEntries;
    private readonly uint* _cqHead;
    private readonly uint* _cqTail;
    private readonly uint _cqMask;
    private readonly uint _cqEntries;
    private readonly IoUringCqe* _cqes;
    private readonly uint* _cqOverflow;

    // The tail of entries queued here, published to the kernel (_sqTail) at the next submission. With
    // no submission thread the kernel consumes entries (advances _sqHead) only inside io_uring_enter.
    private uint _localTail;

    // Entries queued while the submission ring was full and the kernel took nothing from it (EAGAIN or
    // EBUSY): kept here, in order, and moved into the ring by the next submissions as it makes room.
    // While any is here every new entry queues behind it, so the kernel sees them in the order asked.
    private IoUringSqe[] _overflow = [];
    private int _overflowHead;
    private int _overflowCount;

    /// <summary>Makes a ring of at least <paramref name="entries"/> submission entries (rounded up to a power of two).</summary>
    /// <param name="entries">Submission entries; the completion ring gets twice as many.</param>
    /// <param name="flags">IORING_SETUP_* flags to ask for. Those the kernel refuses (EINVAL) are dropped, and
    /// the ring is made without them: <see cref="SetupFlags"/> says what was granted.</param>
    /// <exception cref="PlatformNotSupportedException">io_uring is not available here; the message says why
    /// (disabled by the sysctl, refused by a seccomp filter or missing from the kernel) and what to use instead.</exception>
    /// <exception cref="IOException">The kernel refused for another reason (EMFILE, ENOMEM...).</exception>
    public IoUringRing(uint entries = 256, uint flags = 0)
    {
        ArgumentOutOfRangeException.ThrowIfZero(entries);
        IoUringParams p = default;
        int fd = Setup(entries, flags, ref p);
        _fd = fd;
        try
        {
            if ((p.Features & Interop.IoUring.FEAT_NODROP) == 0 || (p.Features & Interop.IoUring.FEAT_EXT_ARG) == 0)
            {
                throw new PlatformNotSupportedException(
                    $"This kernel's io_uring lacks {((p.Features & Interop.IoUring.FEAT_NODROP) == 0 ? "IORING_FEAT_NODROP" : "IORING_FEAT_EXT_ARG")} " +
                    "(Linux 5.11 or later has what Tulip needs); use the epoll loop (TULIP_LOOP=epoll).");
            }

            _features = p.Features;
            _flags = p.Flags;
            _sqEntries = p.SqEntries;
            _cqEntries = p.CqEntries;

            _sqRingSize = p.SqOff.Array + p.SqEntries * sizeof(uint);
            _cqRingSize = p.CqOff.Cqes + p.CqEntries * (uint)sizeof(IoUringCqe);
            bool single = (p.Features & Interop.IoUring.FEAT_SINGLE_MMAP) != 0;
            if (single)
            {
                _sqRingSize = _cqRingSize = Math.Max(_sqRingSize, _cqRingSize);
            }

            _sqRing = Map(_sqRingSize, Interop.IoUring.OFF_SQ_RING, "the submission ring");
            _cqRing = single ? _sqRing : Map(_cqRingSize, Interop.IoUring.OFF_CQ_RING, "the completion ring");
            _sqesSize = p.SqEntries * (uint)sizeof(IoUringSqe);
            _sqes = (IoUringSqe*)Map(_sqesSize, Interop.IoUring.OFF_SQES, "the submission entries");

            _sqHead = (uint*)(_sqRing + p.SqOff.Head);
            _sqTail = (uint*)(_sqRing + p.SqOff.Tail);
            _sqFlags = (uint*)(_sqRing + p.SqOff.Flags);
            _sqMask = *(uint*)(_sqRing + p.SqOff.RingMask);
            _cqHead = (uint*)(_cqRing + p.CqOff.Head);
            _cqTail = (uint*)(_cqRing + p.CqOff.Tail);
            _cqMask = *(uint*)(_cqRing + p.CqOff.RingMask);
            _cqes = (IoUringCqe*)(_cqRing + p.CqOff.Cqes);
            _cqOverflow = (uint*)(_cqRing + p.CqOff.Overflow);

            // The indirection array maps ring slots to entries: the identity, set once.
            uint* array = (uint*)(_sqRing + p.SqOff.Array);
            for (uint i = 0; i < p.SqEntries; i++)
            {
                array[i] = i;
            }

            _localTail = Volatile.Read(ref *_sqTail);
        }
        catch
        {
            ReleaseMappings();
            Interop.Close(fd);
            _fd = -1;
            throw;
        }
    }

    /// <summary>Whether this process can make a ring (checked once, by making a small one).</summary>
    public static bool IsAvailable => s_unavailable.Value is null;

    /// <summary>Why a ring cannot be made here (what the first attempt threw), or null when it can.</summary>
    public static Exception? UnavailableReason => s_unavailable.Value;

    private static Exception? Probe()
    {
        if (!LinuxInterop.IsAvailable)
        {
            return new PlatformNotSupportedException("io_uring needs Linux and Tulip's Linux interop, which is forbidden or absent here.");
        }

        try
        {
            using var ring = new IoUringRing(2);
            return null;
        }
        catch (Exception ex)
        {
            // Whatever the kernel said (ENOMEM, EMFILE as well as a refusal), io_uring is not usable
            // here, and asking must not throw: the epoll and poll backends do not depend on it.
            return ex;
        }
    }

    /// <summary>The ring's fd; -1 once disposed.</summary>
    public int Fd => _fd;

    /// <summary>Submission entries (a power of two).</summary>
    public uint SubmissionEntries => _sqEntries;

    /// <summary>Completion entries (twice the submission entries unless asked otherwise).</summary>
    public uint CompletionEntries => _cqEntries;

    /// <summary>IORING_FEAT_* the kernel reported.</summary>
    public uint Features => _features;

    /// <summary>The IORING_SETUP_* flags the ring was made with (those asked for that the kernel accepted).</summary>
    public uint SetupFlags => _flags;

    /// <summary>
    /// Entries queued by <see cref="GetSqe"/> that the kernel has not consumed yet: those not published,
    /// and those published by a call the kernel refused (EAGAIN, EBUSY) or cut short, which the next
    /// submission hands over again.
    /// </summary>
    /// <remarks>Measured from the kernel's head, not from the published tail: counting only what was
    /// never published would leave refused entries in the ring with no later call asking the kernel to
    /// take them (<c>io_uring_enter</c> takes at most <c>to_submit</c> entries from its head).</remarks>
    public uint Queued => _localTail - Volatile.Read(ref *_sqHead) + (uint)_overflowCount;

    /// <summary>Entries waiting outside the ring because it was full and the kernel took nothing (part of <see cref="Queued"/>): for tests.</summary>
    internal int Overflowed => _overflowCount;

    /// <summary>
    /// For tests: this many of the next submissions act as if the kernel refused them (EAGAIN, taking
    /// nothing), which this kernel does only when it runs out of memory for requests.
    /// </summary>
    internal int RefuseSubmissionsForTest { get; set; }

    /// <summary>Completions the kernel has posted that were not read yet (the ring's part only).</summary>
    public uint ReadyCompletions => Volatile.Read(ref *_cqTail) - *_cqHead;

    /// <summary>Completions the kernel had to drop: always 0 with IORING_FEAT_NODROP, kept as a check.</summary>
    public uint OverflowCount => Volatile.Read(ref *_cqOverflow);

    /// <summary>Whether the kernel holds completions that did not fit in the ring (they are flushed on the next read).</summary>
    public bool CompletionsOverflowed => (Volatile.Read(ref *_sqFlags) & Interop.IoUring.SQ_CQ_OVERFLOW) != 0;

    /// <summary>
    /// A cleared submission entry to fill in; it goes to the kernel at the next <see cref="Submit"/> or
    /// <see cref="SubmitAndWait"/>. A full ring is first submitted; if the kernel takes nothing from it
    /// (EAGAIN, EBUSY) the entry is queued outside the ring and goes in, in order, as the next
    /// submissions make room, so this never fails for lack of room.
    /// </summary>
    /// <remarks>The reference is valid until the next call of <see cref="GetSqe"/>: fill it in first.</remarks>
    /// <exception cref="IOException">The ring was full and submitting it failed.</exception>
    public ref IoUringSqe GetSqe()
    {
        ThrowIfDisposed();
        if (_overflowCount == 0 && _localTail - Volatile.Read(ref *_sqHead) >= _sqEntries)
        {
            Submit();
        }

        if (_overflowCount != 0 || _localTail - Volatile.Read(ref *_sqHead) >= _sqEntries)
        {
            return ref QueueOutsideRing();
        }

        ref IoUringSqe sqe = ref _sqes[_localTail & _sqMask];
        sqe = default;
        _localTail++;
        return ref sqe;
    }

    private ref IoUringSqe QueueOutsideRing()
    {
        if (_overflowHead + _overflowCount == _overflow.Length)
        {
            if (_overflowHead != 0)
            {
                // Entries moved into the ring leave room at the front: slide the rest down.
                Array.Copy(_overflow, _overflowHead, _overflow, 0, _overflowCount);
                _overflowHead = 0;
            }

            if (_overflowCount == _overflow.Length)
            {
                Array.Resize(ref _overflow, Math.Max(16, _overflow.Length * 2));
            }
        }

        ref IoUringSqe sqe = ref _overflow[_overflowHead + _overflowCount];
        sqe = default;
        _overflowCount++;
        return ref sqe;
    }

    // Moves entries queued outside the ring into it, as many as it has room for, in order.
    private void MoveOverflowIntoRing()
    {
        uint room = _sqEntries - (_localTail - Volatile.Read(ref *_sqHead));
        while (_overflowCount != 0 && room != 0)
        {
            _sqes[_localTail & _sqMask] = _overflow[_overflowHead];
            _overflow[_overflowHead] = default;
            _localTail++;
            _overflowHead++;
            _overflowCount--;
            room--;
        }

        if (_overflowCount == 0)
        {
            _overflowHead = 0;
        }
    }

    /// <summary>Hands the queued entries to the kernel without waiting. Returns how many it consumed.</summary>
    /// <exception cref="IOException">io_uring_enter failed (not EINTR).</exception>
    public int Submit() => Enter(minComplete: 0, timeoutNanoseconds: 0, wait: false);

    /// <summary>
    /// Submits the queued entries and, in the same system call, waits until at least one completion is
    /// ready or <paramref name="timeoutNanoseconds"/> passed (negative: no deadline; 0: do not wait).
    /// Returns the number of entries submitted. A timeout or a signal is not an error.
    /// </summary>
    /// <exception cref="IOException">io_uring_enter failed.</exception>
    public int SubmitAndWait(long timeoutNanoseconds) => Enter(minComplete: 1, timeoutNanoseconds, wait: timeoutNanoseconds != 0);

    /// <summary>
    /// Submits the queued entries and collects what the kernel completed meanwhile, without waiting:
    /// no system call when nothing is queued and the kernel has no deferred work for this ring
    /// (IORING_SQ_TASKRUN, with IORING_SETUP_TASKRUN_FLAG).
    /// </summary>
    /// <exception cref="IOException">io_uring_enter failed.</exception>
    public int Poll()
    {
        ThrowIfDisposed();
        if (Queued == 0 && (Volatile.Read(ref *_sqFlags) & Interop.IoUring.SQ_TASKRUN) == 0 && (_flags & Interop.IoUring.SETUP_TASKRUN_FLAG) != 0)
        {
            return 0;
        }

        return Enter(minComplete: 0, timeoutNanoseconds: 0, wait: true);
    }

    /// <summary>Reads the next completion, if any, and frees its slot. Flushes the kernel's overflowed completions when the ring is empty.</summary>
    public bool TryGetCompletion(out IoUringCqe cqe)
    {
        ThrowIfDisposed();
        uint head = *_cqHead;
        if (head == Volatile.Read(ref *_cqTail))
        {
            if (!CompletionsOverflowed)
            {
                cqe = default;
                return false;
            }

            // The kernel moves what it holds into the ring when asked for events.
            FlushOverflow();
            head = *_cqHead;
            if (head == Volatile.Read(ref *_cqTail))
            {
                cqe = default;
                return false;
            }
        }

        cqe = _cqes[head & _cqMask];
        Volatile.Write(ref *_cqHead, head + 1);
        return true;
    }

    /// <summary>io_uring_register(2) on this ring; throws with the operation's name on failure.</summary>
    internal int Register(uint opcode, void* argument, uint count, string what)
    {
        ThrowIfDisposed();
        int result = Interop.IoUringRegister(_fd, opcode, argument, count);
        if (result < 0)
        {
            Interop.ThrowForLastErrno($"io_uring_register({what})");
        }

        return result;
    }

    /// <summary>Whether this kernel's io_uring supports <paramref name="opcode"/> (IORING_REGISTER_PROBE).</summary>
    public bool Supports(byte opcode)
    {
        const int Ops = 256;
        // struct io_uring_probe (16 bytes) followed by 256 io_uring_probe_op (8 bytes each).
        byte* probe = stackalloc byte[16 + Ops * 8];
        new Span<byte>(probe, 16 + Ops * 8).Clear();
        if (Interop.IoUringRegister(_fd, Interop.IoUring.REGISTER_PROBE, probe, Ops) < 0)
        {
            return false;
        }

        byte opsLength = probe[1];
        if (opcode >= opsLength)
        {
            return false;
        }

        ushort opFlags = *(ushort*)(probe + 16 + opcode * 8 + 2);
        return (opFlags & Interop.IoUring.IO_URING_OP_SUPPORTED) != 0;
    }

    /// <summary>Unmaps the rings and closes the ring's fd, which cancels what is in flight. Idempotent.</summary>
    public void Dispose()
    {
        if (_fd < 0)
        {
            return;
        }

        ReleaseMappings();
        Interop.Close(_fd);
        _fd = -1;
    }

    private int Enter(uint minComplete, long timeoutNanoseconds, bool wait)
    {
        ThrowIfDisposed();
        int submitted = 0;
        if (_overflowCount != 0)
        {
            // Entries wait outside the ring: fill it, hand it over, and again while the kernel takes
            // them, so a wait never starts with entries left that the ring had room for.
            while (true)
            {
                MoveOverflowIntoRing();
                if (_overflowCount == 0)
                {
                    break;
                }

                int taken = EnterRing(0, 0, wait: false);
                submitted += taken;
                if (taken == 0)
                {
                    // Refused: they stay queued for the next submission.
                    break;
                }
            }
        }

        return submitted + EnterRing(minComplete, timeoutNanoseconds, wait);
    }

    private int EnterRing(uint minComplete, long timeoutNanoseconds, bool wait)
    {
        uint toSubmit = _localTail - Volatile.Read(ref *_sqHead);
        if (toSubmit != 0 && RefuseSubmissionsForTest > 0)
        {
            RefuseSubmissionsForTest--;
            // As the kernel's EAGAIN: nothing taken. A wait still waits (nothing is submitted by it).
            if (!wait)
            {
                return 0;
            }

            toSubmit = 0;
        }
        if (toSubmit != 0 && *_sqTail != _localTail)
        {
            // Publish the queued entries: the kernel reads them after this release.
            Volatile.Write(ref *_sqTail, _localTail);
        }

        if (!wait && toSubmit == 0 && (Volatile.Read(ref *_sqFlags) & Interop.IoUring.SQ_TASKRUN) == 0)
        {
            return 0;
        }

        uint flags = wait ? Interop.IoUring.ENTER_GETEVENTS : 0;
        int result;
        if (wait && timeoutNanoseconds > 0)
        {
            KernelTimespec ts = new()
            {
                Seconds = timeoutNanoseconds / 1_000_000_000,
                Nanoseconds = timeoutNanoseconds % 1_000_000_000,
            };
            IoUringGeteventsArg arg = new() { Ts = (ulong)&ts };
            result = Interop.IoUringEnter(_fd, toSubmit, minComplete, flags | Interop.IoUring.ENTER_EXT_ARG, &arg, (nuint)sizeof(IoUringGeteventsArg));
        }
        else
        {
            result = Interop.IoUringEnter(_fd, toSubmit, wait ? minComplete : 0, flags, null, 0);
        }

        if (result >= 0)
        {
            return result;
        }

        int errno = Interop.GetLastErrno();
        switch (errno)
        {
            case Interop.ETIME: // the wait's deadline passed
            case Interop.Errno.EINTR: // a signal: the caller's loop comes back
                return 0;
            case Interop.EBUSY or Interop.Errno.EAGAIN:
                // The kernel holds overflowed completions and will not take more entries until they are
                // read: the caller reads completions (which flushes them), then submits again.
                return 0;
            default:
                throw Interop.GetExceptionForErrno(errno, $"io_uring_enter(fd {_fd}, {toSubmit} to submit)");
        }
    }

    private void FlushOverflow()
    {
        int result = Interop.IoUringEnter(_fd, 0, 0, Interop.IoUring.ENTER_GETEVENTS, null, 0);
        if (result < 0)
        {
            int errno = Interop.GetLastErrno();
            if (errno is not (Interop.Errno.EINTR or Interop.EBUSY or Interop.Errno.EAGAIN))
            {
                throw Interop.GetExceptionForErrno(errno, $"io_uring_enter(fd {_fd}, GETEVENTS) flushing overflowed completions");
            }
        }
    }

    private byte* Map(nuint size, long offset, string what)
    {
        void* p = Interop.Mmap(null, size, Interop.PROT_READ | Interop.PROT_WRITE, Interop.MAP_SHARED | Interop.MAP_POPULATE, _fd, offset);
        if (p == Interop.MAP_FAILED)
        {
            throw Interop.GetExceptionForErrno(Interop.GetLastErrno(), $"mmap of io_uring's {what} ({size} bytes)");
        }

        return (byte*)p;
    }

    private void ReleaseMappings()
    {
        if (_sqes != null)
        {
            Interop.Munmap(_sqes, _sqesSize);
        }

        if (_cqRing != null && _cqRing != _sqRing)
        {
            Interop.Munmap(_cqRing, _cqRingSize);
        }

        if (_sqRing != null)
        {
            Interop.Munmap(_sqRing, _sqRingSize);
        }
    }

    private static int Setup(uint entries, uint flags, ref IoUringParams p)
    {
        while (true)
        {
            p = default;
            p.Flags = flags | Interop.IoUring.SETUP_CLAMP;
            int fd;
            fixed (IoUringParams* pp = &p)
            {
                fd = Interop.IoUringSetup(entries, pp);
            }

            if (fd >= 0)
            {
                return fd;
            }

            int errno = Interop.GetLastErrno();
            if (errno == Interop.Errno.EINVAL && flags != 0)
            {
                // An older kernel that does not know a flag asked for: drop the optional ones, newest first.
                flags = DropNewestFlag(flags);
                continue;
            }

            throw Unavailable(errno);
        }
    }

    private static uint DropNewestFlag(uint flags)
    {
        // DEFER_TASKRUN needs SINGLE_ISSUER: they go together.
        if ((flags & Interop.IoUring.SETUP_DEFER_TASKRUN) != 0)
        {
            return flags & ~(Interop.IoUring.SETUP_DEFER_TASKRUN | Interop.IoUring.SETUP_SINGLE_ISSUER);
        }

        int highest = 31 - System.Numerics.BitOperations.LeadingZeroCount(flags);
        return flags & ~(1u << highest);
    }

    /// <summary>Why io_uring_setup failed, as an exception that says what to do.</summary>
    internal static Exception Unavailable(int errno) => Unavailable(errno, ReadDisabledSysctl());

    /// <summary>
    /// <see cref="Unavailable(int)"/> with the value of <see cref="DisabledSysctl"/> given (null: not
    /// readable), so that each message can be tested on a machine where io_uring works.
    /// </summary>
    internal static Exception Unavailable(int errno, string? sysctl)
    {
        const string Instead = "Use the epoll loop (TULIP_LOOP=epoll), which the automatic choice falls back to.";
        return errno switch
        {
            Interop.Errno.ENOSYS => new PlatformNotSupportedException(
                "io_uring_setup is not implemented here (ENOSYS): the kernel is older than 5.1 or built without io_uring, " +
                "or a seccomp filter (a container runtime's default profile) hides it. " + Instead),
            Interop.Errno.EPERM when sysctl is "2" => new PlatformNotSupportedException(
                $"io_uring is disabled on this machine ({DisabledSysctl} is 2). " + Instead),
            Interop.Errno.EPERM when sysctl is "1" => new PlatformNotSupportedException(
                $"io_uring is limited to the group kernel.io_uring_group ({DisabledSysctl} is 1), and this process is not in it. " + Instead),
            Interop.Errno.EPERM => new PlatformNotSupportedException(
                "io_uring_setup was refused (EPERM): a seccomp filter or a security module forbids it. " + Instead),
            _ => Interop.GetExceptionForErrno(errno, "io_uring_setup"),
        };
    }

    private static string? ReadDisabledSysctl()
    {
        try
        {
            return File.ReadAllText(DisabledSysctl).Trim();
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_fd < 0, this);
}
