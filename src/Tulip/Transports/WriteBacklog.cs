using System;
using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Tulip;

/// <summary>
/// The byte write buffer of the stream and pipe transports: bytes <c>[start, end)</c> of one array,
/// null while nothing is pending.
/// </summary>
/// <remarks>
/// <para>
/// The transports keep the three fields themselves and pass them by reference, rather than holding
/// a buffer object: their send paths read the fields directly (one null check decides "send now or
/// append"), with no indirection or copy of a struct on the per-write path.
/// </para>
/// <para>
/// Memory: arrays up to <see cref="MaxPooledSize"/> come from <see cref="ArrayPool{T}.Shared"/> and go
/// back to it; larger ones (a peer that does not keep up with a writer that ignores PauseWriting) are
/// allocated for the backlog alone and dropped when it ends, so the process does not keep them in the
/// shared pool after the connection is gone. The buffer is released as soon as the transport is
/// aborted, fails or loses its connection (<see cref="Release"/> from the lifecycle's force-close).
/// </para>
/// <para>
/// Limit: a buffer holds at most <see cref="MaxSize"/> bytes, the largest byte array .NET allows (and
/// what <see cref="IWriteTransport.GetWriteBufferSize"/>, an <c>int</c>, can report). A write that would
/// go past it throws <see cref="InvalidOperationException"/> and buffers nothing of that write.
/// </para>
/// </remarks>
internal static class WriteBacklog
{
    /// <summary>The smallest array taken, so a stream of small writes does not regrow it at once.</summary>
    private const int MinimumSize = 4096;

    /// <summary>
    /// The largest array taken from (and given back to) the shared pool: 1 MiB, sixteen times the default
    /// high-water mark, so a backlog under flow control is always pooled; beyond it the writer is
    /// ignoring flow control, and an array the pool kept would stay resident for the process's life.
    /// </summary>
    internal const int MaxPooledSize = 1024 * 1024;

    /// <summary>The most bytes a write buffer holds: <see cref="Array.MaxLength"/> for bytes (0x7FFFFFC7).</summary>
    internal const int MaxSize = 0x7FFFFFC7;

    // Arrays the backlogs on this thread hold (taken minus released): what tests check to see memory
    // given back. Touched only when a backlog grows or ends, never on a write that the socket takes.
    [ThreadStatic]
    private static int t_heldArrays;

    /// <summary>How many arrays the write buffers of transports on the calling thread (a loop thread) hold now.</summary>
    internal static int HeldArraysOnThisThread => t_heldArrays;

    /// <summary>
    /// Appends <paramref name="data"/>: takes an array if there is none, slides the pending bytes down or
    /// takes a bigger one when it is full.
    /// </summary>
    /// <param name="buffer">The array, or null when nothing is pending.</param>
    /// <param name="start">Where the pending bytes begin.</param>
    /// <param name="end">Where they end.</param>
    /// <param name="data">What to append.</param>
    /// <param name="maxSize">The most bytes the buffer may hold (<see cref="MaxSize"/>; smaller in tests).</param>
    /// <exception cref="InvalidOperationException">The buffer would hold more than <paramref name="maxSize"/> bytes; nothing was appended.</exception>
    internal static void Append(ref byte[]? buffer, ref int start, ref int end, ReadOnlySpan<byte> data, int maxSize = MaxSize)
    {
        int pending = end - start;
        if (data.Length > maxSize - pending)
        {
            ThrowTooLarge((long)pending + data.Length, maxSize);
        }

        if (buffer is null)
        {
            buffer = Take(Math.Max(data.Length, MinimumSize));
            start = end = 0;
        }
        else if (buffer.Length - end < data.Length)
        {
            long needed = (long)pending + data.Length;
            if (needed <= buffer.Length && (pending <= buffer.Length / 2 || 2L * buffer.Length > maxSize))
            {
                // Enough room once the sent prefix is dropped (and growing would not help): slide the pending bytes down.
                Buffer.BlockCopy(buffer, start, buffer, 0, pending);
            }
            else
            {
                // Double, capped at the limit: long arithmetic, so a buffer past 1 GiB grows instead of overflowing.
                var bigger = Take((int)Math.Min(Math.Max(needed, 2L * buffer.Length), maxSize));
                Buffer.BlockCopy(buffer, start, bigger, 0, pending);
                Give(buffer);
                buffer = bigger;
            }

            start = 0;
            end = pending;
        }

        data.CopyTo(buffer.AsSpan(end));
        end += data.Length;
    }

    /// <summary>Gives the array back (to the pool, or to the GC) and empties the buffer. Idempotent.</summary>
    internal static void Release(ref byte[]? buffer, ref int start, ref int end)
    {
        if (buffer is not null)
        {
            Give(buffer);
            buffer = null;
        }

        start = end = 0;
    }

    /// <summary>An array a backlog took from elsewhere (the io_uring loop's pinned send buffers), counted as this class's own.</summary>
    internal static void CountTaken() => t_heldArrays++;

    /// <summary>An array counted by <see cref="CountTaken"/> was given back.</summary>
    internal static void CountGiven() => t_heldArrays--;

    /// <summary>Throws as <see cref="Append"/> does when <paramref name="pending"/> plus <paramref name="adding"/> bytes would pass <see cref="MaxSize"/>.</summary>
    internal static void CheckRoom(int pending, int adding)
    {
        if (adding > MaxSize - pending)
        {
            ThrowTooLarge((long)pending + adding, MaxSize);
        }
    }

    private static byte[] Take(int size)
    {
        var array = size <= MaxPooledSize ? ArrayPool<byte>.Shared.Rent(size) : GC.AllocateUninitializedArray<byte>(size);
        t_heldArrays++;
        return array;
    }

    private static void Give(byte[] array)
    {
        t_heldArrays--;
        // A pooled array is at most MaxPooledSize long (the pool rounds up to a power of two that is);
        // a longer one was allocated for this backlog alone and is left to the GC.
        if (array.Length <= MaxPooledSize)
        {
            ArrayPool<byte>.Shared.Return(array);
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowTooLarge(long needed, int maxSize) =>
        throw new InvalidOperationException(
            $"The write buffer would hold {needed} bytes, more than its limit of {maxSize}: the peer is not reading what is written. " +
            "Stop writing when the protocol's PauseWriting() is called and go on at ResumeWriting() (or watch GetWriteBufferSize()). " +
            "Nothing of this write was buffered.");
}
