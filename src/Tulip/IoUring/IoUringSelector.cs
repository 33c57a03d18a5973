using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Versioning;
using Tulip.IoUring;

namespace Tulip.Selectors;

/// <summary>
/// Readiness through io_uring (issue 14): each registered fd with an interest has one one-shot
/// <c>IORING_OP_POLL_ADD</c> in flight, re-armed by the next <see cref="Select"/> after it fired, so the
/// selector is level-triggered like epoll's and poll's (a poll armed on an fd that is still ready
/// completes at once). Re-arms, interest changes and the wait of one loop iteration go to the kernel in
/// one <c>io_uring_enter</c>.
/// </summary>
/// <remarks>
/// <para>
/// This is the readiness half of the io_uring loop: it makes <c>AddReader</c>/<c>AddWriter</c> and
/// every readiness transport run on a ring. Completion operations (receives into provided buffers,
/// sends) are for transports of their own.
/// </para>
/// <para>
/// A one-shot poll rather than a multishot one: a multishot poll reports edges (a new wake-up), and
/// the loop's contract is level-triggered; re-arming costs a submission entry, not a system call.
/// </para>
/// <para>
/// What differs from epoll: an armed poll holds a reference to its file, so an fd closed behind the
/// selector's back (without <see cref="Remove"/>) keeps its file open until the poll fires or is
/// removed; an fd whose poll fired and that was closed meanwhile is reported as
/// <see cref="SelectorEvents.Invalid"/> at the re-arm, as poll(2) reports POLLNVAL. Like the poll
/// selector, <see cref="Modify"/> recognises a number that names another file by its device and
/// inode (one statx), and <see cref="Add"/> of a number already registered fails with EEXIST.
/// </para>
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed class IoUringSelector : ISelector
{
    // user_data of a POLL_REMOVE's own completion, which says nothing the loop needs.
    private const ulong RemoveTag = ulong.MaxValue;

    // user_data of a completion operation (IIoUringOperation): this bit, and the operation's index in
    // _operations. A poll's user_data is its fd and generation, which never sets the bit (an fd is
    // below 2^31 and a generation below 2^31 in practice; the bit is checked first).
    internal const ulong OperationTag = 1UL << 63;

    // user_data of an ASYNC_CANCEL's own completion: ignored as the removal's is.
    internal const ulong CancelTag = ulong.MaxValue - 1;

    private const uint POLLIN = 0x001;
    private const uint POLLOUT = 0x004;
    private const uint POLLERR = 0x008;
    private const uint POLLHUP = 0x010;
    private const uint POLLNVAL = 0x020;

    private readonly IoUringRing _ring;

    // fd -> registration, indexed by the fd (the kernel hands out the lowest free number).
    private Slot[] _slots = new Slot[64];

    // fds whose poll is to be armed at the next Select: added, modified, or fired since.
    private int[] _toArm = new int[64];
    private int _toArmCount;

    // Completion operations (the io_uring loop's transports): index -> operation, with a free list.
    // An index stays taken while the operation may still get a completion from the kernel.
    private IIoUringOperation?[] _operations = new IIoUringOperation?[64];
    private int[] _freeOperations = new int[64];
    private int _freeOperationCount;
    private int _operationHighWater;

    // Transports whose gathered writes are to be sent with the next submission (ring writes).
    private readonly List<IIoUringFlush> _flushes = [];

    /// <summary>Creates the ring.</summary>
    /// <exception cref="PlatformNotSupportedException">io_uring is not available here (the message says why and what to use).</exception>
    public IoUringSelector(uint entries = 256)
    {
        // COOP_TASKRUN: completions are posted when this thread next enters the kernel rather than by
        // interrupting it, and TASKRUN_FLAG says when that is due, so a Select with nothing to submit
        // and nothing due costs no system call. SUBMIT_ALL: an entry the kernel refuses at submission
        // does not stop the rest of the batch. Those this kernel lacks are dropped by the ring.
        // TULIP_URING_SETUP=defer (a switch for the benchmarks only: docs/PERFORMANCE.md) asks for
        // SINGLE_ISSUER | DEFER_TASKRUN instead, which binds the ring to the thread that made it.
        uint taskRun = Environment.GetEnvironmentVariable("TULIP_URING_SETUP") == "defer"
            ? Interop.IoUring.SETUP_SINGLE_ISSUER | Interop.IoUring.SETUP_DEFER_TASKRUN
            : Interop.IoUring.SETUP_COOP_TASKRUN;
        _ring = new IoUringRing(entries, taskRun | Interop.IoUring.SETUP_TASKRUN_FLAG | Interop.IoUring.SETUP_SUBMIT_ALL);
    }

    public string Name => SelectorFactory.IoUring;

    /// <summary>The ring, for tests.</summary>
    internal IoUringRing Ring => _ring;

    public void Add(int fd, SelectorEvents events, ulong token)
    {
        ThrowIfDisposed();
        if (fd < 0)
        {
            Interop.ThrowForErrno(Interop.Errno.EBADF, $"io_uring: add fd {fd}");
        }

        if ((uint)fd < (uint)_slots.Length && _slots[fd].Registered)
        {
            // What EPOLL_CTL_ADD says for an fd already registered.
            Interop.ThrowForErrno(Interop.Errno.EEXIST, $"io_uring: add fd {fd}");
        }

        // A poll of a bad fd would fail only in its completion; fail now instead, as epoll does.
        if (!Interop.TryGetFdIdentity(fd, out var identity, out int errno))
        {
            Interop.ThrowForErrno(errno, $"io_uring: add fd {fd}");
        }

        if ((uint)fd >= (uint)_slots.Length)
        {
            Array.Resize(ref _slots, Math.Max(fd + 1, _slots.Length * 2));
        }

        ref Slot slot = ref _slots[fd];
        // The generation is kept across registrations, so a completion of an earlier one is stale.
        slot.Generation++;
        slot.Registered = true;
        slot.Armed = false;
        slot.Dead = false;
        slot.Token = token;
        slot.Interest = events;
        slot.Identity = identity;
        QueueArm(fd, ref slot);
    }

    public bool Modify(int fd, SelectorEvents events, ulong token)
    {
        ThrowIfDisposed();
        if ((uint)fd >= (uint)_slots.Length || !_slots[fd].Registered)
        {
            return false;
        }

        ref Slot slot = ref _slots[fd];
        // One statx, which EPOLL_CTL_MOD costs anyway: is the number still the file that was added?
        if (!Interop.TryGetFdIdentity(fd, out var identity, out _) || identity != slot.Identity)
        {
            Remove(fd);
            return false;
        }

        slot.Token = token;
        if (events == slot.Interest)
        {
            // The token is read from the slot when the poll fires: nothing to re-arm.
            return true;
        }

        Disarm(fd, ref slot);
        slot.Generation++;
        slot.Interest = events;
        slot.Dead = false;
        QueueArm(fd, ref slot);
        return true;
    }

    public void Remove(int fd)
    {
        ThrowIfDisposed();
        if ((uint)fd >= (uint)_slots.Length || !_slots[fd].Registered)
        {
            return;
        }

        ref Slot slot = ref _slots[fd];
        Disarm(fd, ref slot);
        slot.Generation++;
        slot.Registered = false;
        slot.Token = 0;
        slot.Identity = default;
        if (_ring.Queued != 0)
        {
            // An armed poll holds its file: the caller closes the fd next, and the file must really
            // close then (a peer sees the FIN or the pipe's EOF at once), so the POLL_REMOVE goes to the
            // kernel now, not at the next Select. Outside Select the only entries queued are such
            // removals, and one may be this fd's even when its poll is not armed any more: a Modify
            // (interest Read|Write to Write, as a write pipe's close does before removing the writer)
            // queued the removal of the old poll, and the new one was not armed yet. Submitting only
            // when this call disarmed left that removal queued; the loop then skipped Select (no
            // registrations left), the file stayed open, and a reader of the pipe waited for an EOF
            // that never came (the hang of PipeTransportContractTests.WritePipe_Abort_DropsTheBuffer).
            // The cancelled poll lets go of the file in task work of the thread that armed it (the loop
            // thread, which runs it before this io_uring_enter returns to it).
            _ring.Submit();
        }
    }

    public int Select(Span<SelectorEvent> events, int timeoutMs)
    {
        ThrowIfDisposed();
        if (events.IsEmpty)
        {
            ThrowEmptySpan();
        }

        RunFlushes();
        ArmQueued();
        if (timeoutMs == 0 || _ring.ReadyCompletions != 0)
        {
            _ring.Poll();
        }
        else
        {
            _ring.SubmitAndWait(timeoutMs < 0 ? -1 : timeoutMs * 1_000_000L);
        }

        int filled = 0;
        while (filled < events.Length && _ring.TryGetCompletion(out IoUringCqe cqe))
        {
            if ((cqe.UserData & OperationTag) != 0)
            {
                if (cqe.UserData is not (RemoveTag or CancelTag))
                {
                    DispatchOperation(in cqe);
                }

                continue;
            }

            int fd = (int)(uint)cqe.UserData;
            uint generation = (uint)(cqe.UserData >> 32);
            if ((uint)fd >= (uint)_slots.Length)
            {
                continue;
            }

            ref Slot slot = ref _slots[fd];
            if (!slot.Registered || !slot.Armed || slot.Generation != generation)
            {
                // A poll removed or replaced since it was armed (its -ECANCELED, or a completion that
                // raced the removal).
                continue;
            }

            slot.Armed = false;
            SelectorEvents ready = Ready(cqe.Res, slot.Interest);
            if (ready == SelectorEvents.Invalid)
            {
                // The number is closed: re-arming would only fail again. The loop drops it.
                slot.Dead = true;
            }
            else
            {
                QueueArm(fd, ref slot);
            }

            if (ready != SelectorEvents.None)
            {
                events[filled++] = new SelectorEvent(slot.Token, ready);
            }
        }

        return filled;
    }

    public void Dispose() => _ring.Dispose();

    /// <summary>Gives <paramref name="operation"/> an index: its completions carry <see cref="OperationUserData"/> of it.</summary>
    internal int RegisterOperation(IIoUringOperation operation)
    {
        int index;
        if (_freeOperationCount > 0)
        {
            index = _freeOperations[--_freeOperationCount];
        }
        else
        {
            index = _operationHighWater++;
            if (index == _operations.Length)
            {
                Array.Resize(ref _operations, _operations.Length * 2);
            }
        }

        _operations[index] = operation;
        return index;
    }

    /// <summary>Frees an index once its operation can get no more completions (none is in the kernel).</summary>
    internal void UnregisterOperation(int index)
    {
        if ((uint)index >= (uint)_operationHighWater || _operations[index] is null)
        {
            return;
        }

        _operations[index] = null;
        if (_freeOperationCount == _freeOperations.Length)
        {
            Array.Resize(ref _freeOperations, _freeOperations.Length * 2);
        }

        _freeOperations[_freeOperationCount++] = index;
    }

    /// <summary>Operations registered (for tests: 0 once every transport's operations ended).</summary>
    internal int OperationCount => _operationHighWater - _freeOperationCount;

    /// <summary>The user_data of the operation at <paramref name="index"/>.</summary>
    internal static ulong OperationUserData(int index) => OperationTag | (uint)index;

    /// <summary>
    /// Hands every queued entry to the kernel now, reading completions when it refuses more (EBUSY with
    /// completions held back): an fd is closed only after this, so an entry queued for it never reaches a
    /// file that reuses its number.
    /// </summary>
    internal void SubmitAll()
    {
        RunFlushes();
        for (int attempt = 0; _ring.Queued != 0; attempt++)
        {
            _ring.Submit();
            if (_ring.Queued == 0)
            {
                return;
            }

            if (attempt == 16)
            {
                throw new System.IO.IOException($"io_uring: {_ring.Queued} submission entries stayed queued after 16 submissions; the kernel takes no more.");
            }

            // The kernel holds completions back and takes nothing until they are read: read them here
            // (operations only queue their handlers; readiness results are kept for the next Select).
            DrainForSubmit();
        }
    }

    private void DrainForSubmit()
    {
        while (_ring.TryGetCompletion(out IoUringCqe cqe))
        {
            if ((cqe.UserData & OperationTag) != 0)
            {
                if (cqe.UserData is not (RemoveTag or CancelTag))
                {
                    DispatchOperation(in cqe);
                }

                continue;
            }

            // A poll fired: re-arm it at the next Select (level-triggered, so it fires again at once).
            int fd = (int)(uint)cqe.UserData;
            uint generation = (uint)(cqe.UserData >> 32);
            if ((uint)fd < (uint)_slots.Length)
            {
                ref Slot slot = ref _slots[fd];
                if (slot.Registered && slot.Armed && slot.Generation == generation)
                {
                    slot.Armed = false;
                    QueueArm(fd, ref slot);
                }
            }
        }
    }

    /// <summary>Whether entries are queued or completions ready: a Select is due even with no fd registered.</summary>
    internal bool HasWork => _ring.Queued != 0 || _ring.ReadyCompletions != 0 || _flushes.Count != 0;

    /// <summary>Has <paramref name="transport"/> flushed just before the next submission (once per call: the caller keeps a flag).</summary>
    internal void QueueFlush(IIoUringFlush transport) => _flushes.Add(transport);

    private void RunFlushes()
    {
        // A flush only queues a send (it never runs a protocol), so none is added while this runs.
        for (int i = 0; i < _flushes.Count; i++)
        {
            _flushes[i].Flush();
        }

        _flushes.Clear();
    }

    /// <summary>A cleared submission entry for a completion operation (submitted with the next Select).</summary>
    internal ref IoUringSqe GetSqe() => ref _ring.GetSqe();

    private void DispatchOperation(in IoUringCqe cqe)
    {
        int index = (int)(uint)cqe.UserData;
        if ((uint)index < (uint)_operationHighWater && _operations[index] is { } operation)
        {
            operation.OnCompletion(cqe.Res, cqe.Flags);
        }
    }

    private static SelectorEvents Ready(int result, SelectorEvents interest)
    {
        if (result < 0)
        {
            // EBADF: the fd was closed between the poll's firing and its re-arm, as poll(2)'s POLLNVAL.
            return -result == Interop.Errno.EBADF ? SelectorEvents.Invalid : interest;
        }

        uint revents = (uint)result;
        if ((revents & POLLNVAL) != 0)
        {
            return SelectorEvents.Invalid;
        }

        SelectorEvents ready = SelectorEvents.None;
        if ((revents & POLLIN) != 0)
        {
            ready |= SelectorEvents.Read;
        }

        if ((revents & POLLOUT) != 0)
        {
            ready |= SelectorEvents.Write;
        }

        if ((revents & (POLLERR | POLLHUP)) != 0)
        {
            // As epoll: an error or hang-up goes to whatever is registered, so the callback that reads
            // or writes is the one that sees it.
            ready |= interest;
        }

        return ready & interest;
    }

    private void QueueArm(int fd, ref Slot slot)
    {
        if (slot.Interest == SelectorEvents.None || slot.QueuedForArm)
        {
            return;
        }

        slot.QueuedForArm = true;
        if (_toArmCount == _toArm.Length)
        {
            Array.Resize(ref _toArm, _toArm.Length * 2);
        }

        _toArm[_toArmCount++] = fd;
    }

    private void ArmQueued()
    {
        int count = _toArmCount;
        _toArmCount = 0;
        var slots = _slots;
        for (int i = 0; i < count; i++)
        {
            int fd = _toArm[i];
            ref Slot slot = ref slots[fd];
            slot.QueuedForArm = false;
            if (!slot.Registered || slot.Armed || slot.Dead || slot.Interest == SelectorEvents.None)
            {
                continue;
            }

            uint mask = 0;
            if ((slot.Interest & SelectorEvents.Read) != 0)
            {
                mask |= POLLIN;
            }

            if ((slot.Interest & SelectorEvents.Write) != 0)
            {
                mask |= POLLOUT;
            }

            ref IoUringSqe sqe = ref _ring.GetSqe();
            sqe.Opcode = Interop.IoUring.OP_POLL_ADD;
            sqe.Fd = fd;
            sqe.OpFlags = mask;
            sqe.UserData = UserData(fd, slot.Generation);
            slot.Armed = true;
        }
    }

    // Cancels the poll in flight, if any: queued, submitted by the next Select or Remove.
    private void Disarm(int fd, ref Slot slot)
    {
        if (!slot.Armed)
        {
            return;
        }

        ref IoUringSqe sqe = ref _ring.GetSqe();
        sqe.Opcode = Interop.IoUring.OP_POLL_REMOVE;
        sqe.Fd = -1;
        sqe.Addr = UserData(fd, slot.Generation);
        sqe.UserData = RemoveTag;
        slot.Armed = false;
    }

    private static ulong UserData(int fd, uint generation) => ((ulong)generation << 32) | (uint)fd;

    /// <summary>One fd's registration.</summary>
    private struct Slot
    {
        public ulong Token;
        public Interop.FdIdentity Identity;
        public uint Generation;
        public SelectorEvents Interest;
        public bool Registered;
        public bool Armed;
        public bool QueuedForArm;
        public bool Dead;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_ring.Fd < 0, this);

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowEmptySpan() =>
        throw new ArgumentException("Select needs room for at least one event.", "events");
}
