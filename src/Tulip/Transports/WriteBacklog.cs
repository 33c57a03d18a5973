using System;
using System.Buffers;

namespace Tulip;

/// <summary>
/// The byte write buffer of the stream and pipe transports: bytes <c>[start, end)</c> of an array
/// rented from <see cref="ArrayPool{T}.Shared"/>, null while nothing is pending.
/// </summary>
/// <remarks>
/// The transports keep the three fields themselves and pass them by reference, rather than holding
/// a buffer object: their send paths read the fields directly (one null check decides "send now or
/// append"), with no indirection or copy of a struct on the per-write path.
/// </remarks>
internal static class WriteBacklog
{
    /// <summary>The smallest array rented, so a stream of small writes does not regrow it at once.</summary>
    private const int MinimumSize = 4096;

    /// <summary>Appends <paramref name="data"/>: rents the array if there is none, slides the pending bytes down or rents a bigger one when it is full.</summary>
    internal static void Append(ref byte[]? buffer, ref int start, ref int end, ReadOnlySpan<byte> data)
    {
        int pending = end - start;
        if (buffer is null)
        {
            buffer = ArrayPool<byte>.Shared.Rent(Math.Max(data.Length, MinimumSize));
            start = end = 0;
        }
        else if (buffer.Length - end < data.Length)
        {
            if (buffer.Length - pending >= data.Length && pending <= buffer.Length / 2)
            {
                // Enough room once the sent prefix is dropped: slide the pending bytes down.
                Buffer.BlockCopy(buffer, start, buffer, 0, pending);
            }
            else
            {
                var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(checked(pending + data.Length), checked(buffer.Length * 2)));
                Buffer.BlockCopy(buffer, start, bigger, 0, pending);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = bigger;
            }

            start = 0;
            end = pending;
        }

        data.CopyTo(buffer.AsSpan(end));
        end += data.Length;
    }

    /// <summary>Returns the array to the pool and empties the buffer.</summary>
    internal static void Release(ref byte[]? buffer, ref int start, ref int end)
    {
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = null;
        }

        start = end = 0;
    }
}
