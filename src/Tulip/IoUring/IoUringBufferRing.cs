using System;
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
/// A buffer id goes to the transport with the completion, and back to the ring with
/// <see cref="Return"/> once the bytes were delivered; the kernel sees it again after the tail is
/// published (release store).
/// </para>
/// <para>When the ring is empty a multishot receive ends with ENOBUFS, and its transport re-arms it on the
/// next loop iteration, by which time the buffers delivered in this one are back.</para>
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
            for (int i = 0; i < count; i++)
            {
                Put((ushort)i);
            }

            Publish();
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

    /// <summary>A completion took a buffer from the ring.</summary>
    public void Taken() => Outstanding++;

    /// <summary>Gives buffer <paramref name="id"/> back to the kernel.</summary>
    public void Return(ushort id)
    {
        Outstanding--;
        Put(id);
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
