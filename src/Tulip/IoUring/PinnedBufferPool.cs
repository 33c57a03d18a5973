using System;
using System.Numerics;

namespace Tulip.IoUring;

/// <summary>
/// Send buffers for the io_uring loop's transports: arrays on the pinned object heap, so the address a
/// submitted send holds stays valid until its completion however the GC runs, kept per power-of-two
/// size from 4 KiB to 1 MiB and reused, so steady sending allocates nothing. Loop thread only. The arrays
/// out count in <see cref="WriteBacklog.HeldArraysOnThisThread"/>, as every loop's write backlogs do.
/// </summary>
internal sealed class PinnedBufferPool
{
    private const int MinShift = 12;  // 4 KiB
    private const int MaxShift = 20;  // 1 MiB: bigger arrays are not kept
    private const int PerClass = 64;  // arrays kept per size

    private readonly byte[]?[][] _classes = new byte[]?[MaxShift - MinShift + 1][];
    private readonly int[] _counts = new int[MaxShift - MinShift + 1];

    /// <summary>An array of at least <paramref name="minimumLength"/> bytes (pinned, contents undefined).</summary>
    public byte[] Rent(int minimumLength)
    {
        WriteBacklog.CountTaken();
        int shift = Math.Max(MinShift, 32 - BitOperations.LeadingZeroCount((uint)Math.Max(minimumLength - 1, 1)));
        if (shift > MaxShift)
        {
            return GC.AllocateUninitializedArray<byte>(minimumLength, pinned: true);
        }

        int c = shift - MinShift;
        if (_counts[c] > 0)
        {
            var array = _classes[c][--_counts[c]]!;
            _classes[c][_counts[c]] = null;
            return array;
        }

        return GC.AllocateUninitializedArray<byte>(1 << shift, pinned: true);
    }

    /// <summary>Takes an array back (one of <see cref="Rent"/>'s; others are dropped).</summary>
    public void Return(byte[] array)
    {
        WriteBacklog.CountGiven();
        int length = array.Length;
        if (length < 1 << MinShift || length > 1 << MaxShift || (length & (length - 1)) != 0)
        {
            return;
        }

        int c = BitOperations.Log2((uint)length) - MinShift;
        var slots = _classes[c] ??= new byte[]?[PerClass];
        if (_counts[c] < PerClass)
        {
            slots[_counts[c]++] = array;
        }
    }
}
