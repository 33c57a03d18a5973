using System;
using System.IO;

namespace Tulip.Streams;

/// <summary>
/// The stream ended before a read could be satisfied: asyncio's <c>IncompleteReadError</c>.
/// <see cref="Partial"/> holds the bytes that were read (and are no longer in the reader).
/// </summary>
public class IncompleteReadError : EndOfStreamException
{
    /// <summary>Makes the error for <paramref name="partial"/> bytes read of <paramref name="expected"/> wanted.</summary>
    /// <param name="partial">The bytes read before the end of the stream.</param>
    /// <param name="expected">How many bytes were wanted; null when the read waited for a separator.</param>
    /// <exception cref="ArgumentNullException"><paramref name="partial"/> is null.</exception>
    public IncompleteReadError(byte[] partial, int? expected)
        : base($"{(partial ?? throw new ArgumentNullException(nameof(partial))).Length} bytes read on a total of {(expected is { } e ? e.ToString(System.Globalization.CultureInfo.InvariantCulture) : "undefined")} expected bytes")
    {
        Partial = partial;
        Expected = expected;
    }

    /// <summary>The bytes read before the end of the stream.</summary>
    public byte[] Partial { get; }

    /// <summary>How many bytes the read wanted; null for a read up to a separator.</summary>
    public int? Expected { get; }
}

/// <summary>
/// The limit of a <see cref="LoopStreamReader"/> was reached while looking for a separator:
/// asyncio's <c>LimitOverrunError</c>. The data stays in the reader.
/// </summary>
public class LimitOverrunError : Exception
{
    /// <summary>Makes the error.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="consumed">How many bytes may be consumed before reading on (see <see cref="Consumed"/>).</param>
    public LimitOverrunError(string message, int consumed) : base(message) => Consumed = consumed;

    /// <summary>
    /// The number of bytes at the start of the reader's buffer that hold no separator (when it was not
    /// found) or that come before it (when it was found past the limit).
    /// </summary>
    public int Consumed { get; }
}
