using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Threading;

namespace Tulip.IoUring;

/// <summary>
/// A provided-buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19): receive buffers the kernel picks
/// from when a multishot receive gets data, so a connection holds a buffer only from the moment data
/// arrives until its protocol has taken it. An idle connection holds none.
/// </summary>
/// <remarks>
/// <para>
/// The ring and the buffers are native memory, page-aligned, owned by the loop and freed only after
/// the ring's fd is closed and every receive has ended (<see cref="Dispose"/> is the loop's last step).
/// A buffer id goes to the transport with the completion, and back with <see cref="Return"/> once the
/// bytes were delivered; the kernel sees it again after the tail is published (release store).
/// </para>
/// <para>
/// The kernel takes buffers from its ring oldest-first, so a ring holding every buffer cycles through
/// all of them (8 MiB and more, far beyond the caches) and every receive writes into cold memory. Free
/// buffers are kept on a stack instead, and the ring is topped up only to the receives armed (each
/// single-shot receive takes at most one buffer) plus <see cref="Slack"/>, from the top of the stack:
/// the buffers just delivered and given back are the next ones the kernel fills, and the ones deep in
/// the stack are never touched (nor resident). With more receives armed than buffers, all of them are
/// in the ring and a receive the kernel finds none for ends with ENOBUFS: its transport re-arms it once
/// a buffer is back.
/// </para>
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed unsafe class IoUringBufferRing : IDisposable
{
    private readonly IoUringRing _ring;
    private IoUringBuf* _entries;
    private byte* _buffers;
    private readonly nuint _entriesBytes;
    private readonly nuint _buffersBytes;
    private readonly ushort _mask;
    private ushort _tail;
    private bool _registered;
    // Free buffers (neither in the kernel's ring nor held by a transport), most recently freed on top.
    private readonly ushort[] _free;
    private int _freeCount;
    private int _freeLowWater;      // the fewest free buffers there ever were: those below were never used
    private int _inRing;            // published to the kernel and not taken by a completion yet
    private int _wanted;            // buffers the armed receives may take (one per single-shot receive)

    // Receivers whose receive ended with ENOBUFS, re-armed when a buffer of this group comes back.
    private readonly List<IIoUringBufferWaiter> _waiters = [];

    /// <summary>Buffers kept in the ring beyond what the armed receives may take.</summary>
    internal const int Slack = 2;

    /// <summary>Registers <paramref name="count"/> buffers of <paramref name="bufferSize"/> bytes as group <paramref name="groupId"/>.</summary>
    /// <exception cref="PlatformNotSupportedException">The kernel has no provided-buffer rings (older than 5.19).</exception>
    public IoUringBufferRing(IoUringRing ring, ushort groupId, int count, int bufferSize)
    {
        if (count <= 0 || count > 32768 || (count & (count - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "The buffer count must be a power of two from 1 to 32768.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(bufferSize, 1);
        _ring = ring;
        GroupId = groupId;
        Count = count;
        BufferSize = bufferSize;
        _mask = (ushort)(count - 1);
        _entriesBytes = (nuint)(count * sizeof(IoUringBuf));
        _buffersBytes = (nuint)count * (nuint)bufferSize;
        _free = new ushort[count];
        _entries = (IoUringBuf*)NativeMemory.AlignedAlloc(_entriesBytes, 4096);
        try
        {
            new Span<byte>(_entries, (int)_entriesBytes).Clear();
            _buffers = (byte*)NativeMemory.AlignedAlloc(_buffersBytes, 4096);
            var reg = new IoUringBufReg { RingAddr = (ulong)_entries, RingEntries = (uint)count, Bgid = groupId };
            int result = Interop.IoUringRegister(ring.Fd, Interop.IoUring.REGISTER_PBUF_RING, &reg, 1);
            if (result < 0)
            {
                int errno = Interop.GetLastErrno();
                throw errno is Interop.Errno.EINVAL or Interop.Errno.ENOSYS or Interop.Errno.EOPNOTSUPP
                    ? new PlatformNotSupportedException($"This kernel's io_uring has no provided-buffer rings (IORING_REGISTER_PBUF_RING: errno {errno}; Linux 5.19 or later has them).")
                    : Interop.GetExceptionForErrno(errno, "io_uring_register(IORING_REGISTER_PBUF_RING)");
            }

            _registered = true;
            // Buffer 0 on top: the first receives use the lowest addresses.
            for (int i = count - 1; i >= 0; i--)
            {
                _free[_freeCount++] = (ushort)i;
            }

            _freeLowWater = _freeCount;
            TopUp();
        }
        catch
        {
            Free();
            throw;
        }
    }

    /// <summary>The buffer group id receives name (sqe.buf_group).</summary>
    public ushort GroupId { get; }

    /// <summary>Buffers in the ring.</summary>
    public int Count { get; }

    /// <summary>Bytes per buffer.</summary>
    public int BufferSize { get; }

    /// <summary>Buffers handed out by completions and not returned yet (for tests: 0 when nothing is held).</summary>
    public int Outstanding { get; private set; }

    /// <summary>The first <paramref name="length"/> bytes of buffer <paramref name="id"/>.</summary>
    public ReadOnlySpan<byte> Span(ushort id, int length)
    {
        if (id >= Count || (uint)length > (uint)BufferSize)
        {
            throw new ArgumentOutOfRangeException(nameof(id), $"Buffer {id} of {Count}, {length} of {BufferSize} bytes.");
        }

        return new ReadOnlySpan<byte>(_buffers + (nuint)id * (nuint)BufferSize, length);
    }

    /// <summary>The start of buffer <paramref name="id"/> (<see cref="BufferSize"/> bytes), for a receive the loop thread makes into it while it holds the buffer.</summary>
    public byte* Address(ushort id)
    {
        if (id >= Count)
        {
            throw new ArgumentOutOfRangeException(nameof(id), $"Buffer {id} of {Count}.");
        }

        return _buffers + (nuint)id * (nuint)BufferSize;
    }

    /// <summary>Gives buffer <paramref name="id"/> back (<see cref="Return"/>), and re-arms the receives that ran out of buffers of this group.</summary>
    public void GiveBack(ushort id)
    {
        Return(id);
        if (_waiters.Count != 0)
        {
            var waiting = _waiters.ToArray();
            _waiters.Clear();
            foreach (var waiter in waiting)
            {
                waiter.BuffersAvailable();
            }
        }
    }

    /// <summary><paramref name="waiter"/>'s receive ended with ENOBUFS: it is told when a buffer comes back (<see cref="GiveBack"/>).</summary>
    public void WaitForBuffers(IIoUringBufferWaiter waiter) => _waiters.Add(waiter);

    /// <summary><paramref name="waiter"/> no longer waits (it closed or paused).</summary>
    public void StopWaiting(IIoUringBufferWaiter waiter) => _waiters.Remove(waiter);

    /// <summary>Buffers published to the kernel and not taken yet (for tests).</summary>
    public int InRing => _inRing;

    /// <summary>Buffers ever handed to the kernel (for tests: the LIFO reuse keeps this near the receives armed at once).</summary>
    public int BuffersTouched => Count - _freeLowWater;

    /// <summary>Buffers completions ever took from the ring (for tests: receives went through this group).</summary>
    public long TakenTotal { get; private set; }

    /// <summary>A completion took a buffer from the ring.</summary>
    public void Taken()
    {
        TakenTotal++;
        Outstanding++;
        _inRing--;
    }

    /// <summary>A receive was armed that may take up to <paramref name="buffers"/> buffers: the ring is topped up for it.</summary>
    public void ReceiveArmed(int buffers)
    {
        _wanted += buffers;
        TopUp();
    }

    /// <summary>A receive armed with <see cref="ReceiveArmed"/> ended (its last completion came).</summary>
    public void ReceiveEnded(int buffers) => _wanted -= buffers;

    /// <summary>Gives buffer <paramref name="id"/> back: on top of the free stack, and into the ring if the armed receives want it.</summary>
    public void Return(ushort id)
    {
        Outstanding--;
        _free[_freeCount++] = id;
        TopUp();
    }

    // Publishes free buffers, most recently freed first, until the ring holds what the armed receives
    // may take plus the slack, or nothing is free.
    private void TopUp()
    {
        int want = _wanted + Slack;
        if (_inRing >= want || _freeCount == 0)
        {
            return;
        }

        do
        {
            Put(_free[--_freeCount]);
            _inRing++;
        }
        while (_inRing < want && _freeCount != 0);

        if (_freeCount < _freeLowWater)
        {
            _freeLowWater = _freeCount;
        }

        Publish();
    }

    private void Put(ushort id)
    {
        ref IoUringBuf entry = ref _entries[_tail & _mask];
        entry.Addr = (ulong)(_buffers + (nuint)id * (nuint)BufferSize);
        entry.Len = (uint)BufferSize;
        entry.Bid = id;
        _tail++;
    }

    // The tail is entry 0's resv field (offset 14): a release store, so the kernel reads the entries first.
    private void Publish() => Volatile.Write(ref *(ushort*)((byte*)_entries + 14), _tail);

    /// <summary>
    /// Unregisters the group and frees the memory. Only once no receive can write into a buffer any
    /// more: the loop calls it after the ring's fd is closed and the kernel let go of it.
    /// </summary>
    public void Dispose() => Free();

    private void Free()
    {
        if (_registered && _ring.Fd >= 0)
        {
            var reg = new IoUringBufReg { Bgid = GroupId };
            Interop.IoUringRegister(_ring.Fd, Interop.IoUring.UNREGISTER_PBUF_RING, &reg, 1);
        }

        _registered = false;
        if (_buffers != null)
        {
            NativeMemory.AlignedFree(_buffers);
            _buffers = null;
        }

        if (_entries != null)
        {
            NativeMemory.AlignedFree(_entries);
            _entries = null;
        }
    }
}
