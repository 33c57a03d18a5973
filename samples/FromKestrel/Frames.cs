// Length-prefixed frames on System.IO.Pipelines: a 4-byte big-endian length, then that many bytes.
// Nothing here knows Tulip: this is the parser a Kestrel connection handler would have, and it runs
// on any PipeReader/PipeWriter (a Tulip DuplexPipeProtocol, Kestrel's ConnectionContext.Transport,
// an in-memory Pipe in a unit test). docs/COMING_FROM_KESTREL.md walks through it.
using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;

namespace FromKestrel;

public static class Frames
{
    /// <summary>The largest payload accepted: a peer cannot make the parser buffer more than this.</summary>
    public const int MaxPayload = 1 << 20;

    private const int HeaderSize = 4;

    /// <summary>
    /// Takes one whole frame off the front of <paramref name="buffer"/>: true with its payload (a slice
    /// of the pipe's memory, valid until the next AdvanceTo) and the buffer moved past it; false, and
    /// the buffer untouched, while the frame is still incomplete.
    /// </summary>
    /// <exception cref="InvalidDataException">The header announces more than <see cref="MaxPayload"/> bytes.</exception>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> payload)
    {
        payload = default;
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryReadBigEndian(out int length))
        {
            return false;                                // the header itself may straddle two segments
        }

        if (length is < 0 or > MaxPayload)
        {
            throw new InvalidDataException($"A frame announced {(uint)length} bytes; the limit is {MaxPayload}. The peer is not speaking this protocol, or is hostile.");
        }

        if (reader.Remaining < length)
        {
            return false;
        }

        payload = buffer.Slice(HeaderSize, length);
        buffer = buffer.Slice(payload.End);
        return true;
    }

    /// <summary>Writes one frame into <paramref name="output"/>'s memory (no copy of its own); flush to send it.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The payload is larger than <see cref="MaxPayload"/>.</exception>
    public static void Write(PipeWriter output, ReadOnlySpan<byte> payload)
    {
        WriteHeader(output, payload.Length);
        output.Write(payload);
    }

    /// <summary>Writes the header of a frame of <paramref name="length"/> bytes; the caller writes the payload after it.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative or larger than <see cref="MaxPayload"/>.</exception>
    public static void WriteHeader(PipeWriter output, int length)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, MaxPayload);
        BinaryPrimitives.WriteInt32BigEndian(output.GetSpan(HeaderSize), length);
        output.Advance(HeaderSize);
    }
}
