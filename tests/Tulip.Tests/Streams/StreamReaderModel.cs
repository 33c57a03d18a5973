namespace Tulip.Tests.Streams;

using System.Text;

/// <summary>Which read a property test asks for.</summary>
internal enum ReadKind
{
    /// <summary><c>ReadAsync(n)</c>: asyncio's read(n), n = -1 meaning to EOF.</summary>
    Read,

    /// <summary><c>ReadLineAsync()</c>.</summary>
    ReadLine,

    /// <summary><c>ReadUntilAsync(separator or separators)</c>.</summary>
    ReadUntil,

    /// <summary><c>ReadExactlyAsync(n)</c>.</summary>
    ReadExactly,

    /// <summary><c>ReadAsync(Memory)</c> into a buffer of n bytes.</summary>
    ReadMemory,

    /// <summary><c>ReadExactlyAsync(Memory)</c> into a buffer of n bytes.</summary>
    ReadExactlyMemory,
}

/// <summary>One read: its kind, its count (or buffer length) and, for readuntil, its separators.</summary>
internal sealed record ReadOp(ReadKind Kind, int N, byte[][] Separators)
{
    public override string ToString() => Kind switch
    {
        ReadKind.ReadLine => "readline()",
        ReadKind.ReadUntil => "readuntil(" + string.Join(", ", Separators.Select(Outcome.Show)) + ")",
        _ => $"{Kind}({N})",
    };
}

/// <summary>
/// How a read ended, in a form both the model and the real reader give and that compares as a
/// string: "ok" with the bytes, "incomplete" with the partial bytes and the expected count, "limit"
/// with Consumed, "line-too-long" (asyncio readline's ValueError), "argument" (bad input).
/// </summary>
internal sealed record Outcome(string Kind, byte[] Bytes, int? Number = null)
{
    public static Outcome Ok(byte[] bytes) => new("ok", bytes);

    public static Outcome Incomplete(byte[] partial, int? expected) => new("incomplete", partial, expected);

    public static Outcome Limit(int consumed) => new("limit", [], consumed);

    public static Outcome LineTooLong() => new("line-too-long", []);

    public static Outcome Argument() => new("argument", []);

    public static string Show(byte[] bytes)
    {
        var text = new StringBuilder("\"");
        foreach (byte b in bytes)
        {
            text.Append(b switch
            {
                (byte)'\n' => "\\n",
                (byte)'\r' => "\\r",
                >= 32 and < 127 => ((char)b).ToString(),
                _ => $"\\x{b:x2}",
            });
        }

        return text.Append('"').ToString();
    }

    public override string ToString() => Kind switch
    {
        "ok" => "ok " + Show(Bytes),
        "incomplete" => $"incomplete partial={Show(Bytes)} expected={(Number is null ? "none" : Number)}",
        "limit" => $"limit consumed={Number}",
        _ => Kind,
    };
}

/// <summary>
/// asyncio 3.13's StreamReader reduced to its rules: a list of bytes, an EOF flag, the limit, and
/// each read as a step function that either ends (an <see cref="Outcome"/>) or must wait for data.
/// The real reader is woken by each FeedData of some bytes and by FeedEof; the test steps the
/// model's pending read at exactly those points, so the model sees the buffer as the reader does
/// (readuntil's LimitOverrunError depends on how much had arrived when it looked).
/// </summary>
internal sealed class ReaderModel(int limit)
{
    private readonly List<byte> _buffer = [];

    public bool Eof { get; private set; }

    public bool AtEof => Eof && _buffer.Count == 0;

    public void FeedData(byte[] data)
    {
        if (Eof)
        {
            throw new InvalidOperationException("the model was fed data after EOF: the test script is wrong");
        }

        _buffer.AddRange(data);
    }

    public void FeedEof() => Eof = true;

    /// <summary>All that is left (the model's answer to a read(-1) once EOF is fed).</summary>
    public byte[] Remaining() => [.. _buffer];

    /// <summary>
    /// Starts <paramref name="op"/>: the function returned runs the read on the buffer as it is now,
    /// giving the outcome, or null while it would wait. Call it now and after each wake-up.
    /// </summary>
    public Func<Outcome?> Start(ReadOp op) => op.Kind switch
    {
        ReadKind.Read => Read(op.N),
        ReadKind.ReadMemory => Read(op.N),
        ReadKind.ReadExactly => ReadExactly(op.N),
        ReadKind.ReadExactlyMemory => ReadExactly(op.N),
        ReadKind.ReadLine => ReadLine(),
        ReadKind.ReadUntil => ReadUntil(op.Separators),
        _ => throw new ArgumentOutOfRangeException(nameof(op), op.Kind, "unknown read kind"),
    };

    private Func<Outcome?> Read(int n) => () =>
    {
        if (n == 0)
        {
            return Outcome.Ok([]);
        }

        if (n < 0)
        {
            // read(-1) reads blocks of the limit until one is empty, that is until EOF.
            return Eof ? Outcome.Ok(Take(_buffer.Count)) : null;
        }

        if (_buffer.Count == 0 && !Eof)
        {
            return null;
        }

        return Outcome.Ok(Take(Math.Min(n, _buffer.Count)));
    };

    private Func<Outcome?> ReadExactly(int n) => () =>
    {
        if (n < 0)
        {
            return Outcome.Argument();
        }

        if (_buffer.Count >= n)
        {
            return Outcome.Ok(Take(n));
        }

        return Eof ? Outcome.Incomplete(Take(_buffer.Count), n) : null;
    };

    private Func<Outcome?> ReadLine()
    {
        var until = ReadUntil([[(byte)'\n']]);
        return () =>
        {
            var outcome = until();
            switch (outcome?.Kind)
            {
                case "incomplete":
                    return Outcome.Ok(outcome.Bytes);
                case "limit":
                    int consumed = outcome.Number!.Value;
                    if (_buffer.Count > consumed && _buffer[consumed] == (byte)'\n')
                    {
                        Take(consumed + 1);
                    }
                    else
                    {
                        _buffer.Clear();
                    }

                    return Outcome.LineTooLong();
                default:
                    return outcome;
            }
        };
    }

    private Func<Outcome?> ReadUntil(byte[][] separators)
    {
        if (separators.Length == 0 || separators.Any(s => s.Length == 0))
        {
            return static () => Outcome.Argument();
        }

        // Shortest first (a stable sort, as Python's sorted): on equal ends the shorter one is the match.
        var sorted = separators.OrderBy(s => s.Length).ToArray();
        int minLength = sorted[0].Length, maxLength = sorted[^1].Length;
        int offset = 0; // kept across wake-ups, as readuntil's local is
        return () =>
        {
            int length = _buffer.Count;
            if (length - offset >= minLength)
            {
                int? matchStart = null, matchEnd = null;
                foreach (var separator in sorted)
                {
                    int at = IndexOf(separator, offset);
                    if (at >= 0 && (matchEnd is null || at + separator.Length < matchEnd))
                    {
                        matchStart = at;
                        matchEnd = at + separator.Length;
                    }
                }

                if (matchEnd is not null)
                {
                    return matchStart > limit ? Outcome.Limit(matchStart.Value) : Outcome.Ok(Take(matchEnd.Value));
                }

                offset = Math.Max(0, length + 1 - maxLength);
                if (offset > limit)
                {
                    return Outcome.Limit(offset);
                }
            }

            return Eof ? Outcome.Incomplete(Take(_buffer.Count), null) : null;
        };
    }

    private int IndexOf(byte[] separator, int from)
    {
        for (int i = from; i + separator.Length <= _buffer.Count; i++)
        {
            int j = 0;
            while (j < separator.Length && _buffer[i + j] == separator[j])
            {
                j++;
            }

            if (j == separator.Length)
            {
                return i;
            }
        }

        return -1;
    }

    private byte[] Take(int count)
    {
        var taken = _buffer.GetRange(0, count).ToArray();
        _buffer.RemoveRange(0, count);
        return taken;
    }
}
