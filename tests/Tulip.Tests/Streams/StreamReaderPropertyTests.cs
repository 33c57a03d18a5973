namespace Tulip.Tests.Streams;

using CsCheck;
using Tulip.Streams;
using Tulip.Testing;
using static Tulip.Tests.Streams.ReaderTestSupport;

/// <summary>One piece of data fed to the reader; <see cref="WithNext"/>: the next piece is fed in the same loop step.</summary>
internal sealed record Chunk(byte[] Data, bool WithNext)
{
    public override string ToString() => Outcome.Show(Data) + (WithNext ? "+" : "");
}

/// <summary>A read, after <see cref="FeedsBefore"/> feeds that no read waits for.</summary>
internal sealed record Step(int FeedsBefore, ReadOp Op)
{
    public override string ToString() => (FeedsBefore > 0 ? $"[{FeedsBefore} feeds] " : "") + Op;
}

/// <summary>
/// What one property sample does: a limit, the data in its chunks, and the reads;
/// <see cref="ViaProtocol"/>: the data and EOF come through a <see cref="StreamReaderProtocol"/>
/// (GetBuffer/BufferUpdated, EofReceived), as a transport delivers them, instead of FeedData/FeedEof.
/// </summary>
internal sealed record Script(int Limit, Chunk[] Chunks, Step[] Steps, bool ViaProtocol = false)
{
    public override string ToString() =>
        $"limit={Limit}{(ViaProtocol ? " via protocol" : "")} chunks=[{string.Join(" ", Chunks.Select(c => c.ToString()))}] steps=[{string.Join("; ", Steps.Select(s => s.ToString()))}]";
}

/// <summary>
/// Property tests: <see cref="LoopStreamReader"/> against <see cref="ReaderModel"/> (asyncio's rules on
/// a list of bytes), fed the same bytes in random chunkings (empty chunks included, several chunks
/// in one loop step, reads between them) with random limits and separators; every read must end as
/// the model's does (the same bytes, or the same failure with the same Consumed, Partial and
/// Expected), at the same point of the feeding, and leave the same data behind.
/// </summary>
/// <remarks>
/// Each sample runs on a fresh Tulip.Testing <see cref="TestEventLoop"/> (virtual clock, no fd)
/// rather than on every loop kind: a sample is a few hundred loop iterations and nothing else, the
/// loop-kind bindings of <see cref="StreamReaderTests"/> already prove the waits on each real loop,
/// and <c>LoopKindsTests</c> binds only <see cref="LoopSuite"/> subclasses, which this is not. The
/// iteration counts are fixed; CsCheck prints the seed and the shrunk script of a failure, and
/// <c>CsCheck_Seed=...</c> replays it.
/// </remarks>
public sealed class StreamReaderPropertyTests
{
    private const int Iterations = 200;

    private static readonly byte[] s_alphabet = [(byte)'a', (byte)'b', (byte)'\n', (byte)'\r'];

    private static readonly Gen<byte> s_byte = Gen.OneOf(s_alphabet);

    private static readonly Gen<Chunk> s_chunk =
        Gen.Select(s_byte.Array[0, 6], Gen.Int[0, 3], static (data, join) => new Chunk(data, join == 0));

    /// <summary>One to three separators of one to three bytes; now and then none, or an empty one (bad input).</summary>
    private static readonly Gen<byte[][]> s_separators =
        Gen.Select(s_byte.Array[1, 3].Array[1, 3], Gen.Int[0, 39], static (separators, bad) => bad switch
        {
            0 => [],
            1 => [.. separators, []],
            _ => separators,
        });

    private static readonly Gen<ReadOp>[] s_opsButTheMemoryRead =
    [
        Gen.Int[-1, 8].Select(static n => new ReadOp(ReadKind.Read, n, [])),
        Gen.Const(new ReadOp(ReadKind.ReadLine, 0, [])),
        s_separators.Select(static s => new ReadOp(ReadKind.ReadUntil, 0, s)),
        Gen.Int[-1, 10].Select(static n => new ReadOp(ReadKind.ReadExactly, n, [])),
        Gen.Int[0, 10].Select(static n => new ReadOp(ReadKind.ReadExactlyMemory, n, [])),
    ];

    private static readonly Gen<ReadOp> s_memoryRead = Gen.Int[0, 8].Select(static n => new ReadOp(ReadKind.ReadMemory, n, []));

    [Fact]
    public void EveryRead_EndsAsTheModelSays() =>
        Scripts(Gen.OneOf<ReadOp>([.. s_opsButTheMemoryRead, s_memoryRead])).Sample(static script => RunOnLoop(() => Play(script)), iter: Iterations);

    /// <summary>
    /// Kilobytes at a time, so the reader's own buffer grows, compacts and hands the protocol
    /// memory of every size (it offers 4 KiB first, then more while reads fill it); lines are
    /// hundreds of bytes long and the limits thousands.
    /// </summary>
    [Fact]
    public void LargeChunks_EndAsTheModelSays()
    {
        var chunk = Gen.Select(Gen.Int[0, 9000], Gen.Int, Gen.Int[0, 3], static (length, seed, join) =>
        {
            var random = new Random(seed);
            var data = new byte[length];
            for (int i = 0; i < length; i++)
            {
                data[i] = random.Next(300) switch { 0 => (byte)'\n', 1 => (byte)'\r', < 150 => (byte)'a', _ => (byte)'b' };
            }

            return new Chunk(data, join == 0);
        });
        var op = Gen.OneOf<ReadOp>(
            Gen.Int[-1, 20000].Select(static n => new ReadOp(ReadKind.Read, n, [])),
            Gen.Const(new ReadOp(ReadKind.ReadLine, 0, [])),
            Gen.Const(new ReadOp(ReadKind.ReadUntil, 0, [[(byte)'\r', (byte)'\n'], [(byte)'\n']])),
            Gen.Int[0, 20000].Select(static n => new ReadOp(ReadKind.ReadExactly, n, [])),
            Gen.Int[0, 20000].Select(static n => new ReadOp(ReadKind.ReadExactlyMemory, n, [])));
        Gen.Select(Gen.Int[1, 3000], chunk.Array[0, 12], Gen.Select(Gen.Int[0, 2], op, static (feeds, o) => new Step(feeds, o)).Array[1, 10], Gen.Bool,
                static (limit, chunks, steps, viaProtocol) => new Script(limit, chunks, steps, viaProtocol))
            .Sample(static script => RunOnLoop(() => Play(script)), iter: 100);
    }

    private static Gen<Script> Scripts(Gen<ReadOp> op) => Gen.Select(
        Gen.Int[1, 10],
        s_chunk.Array[0, 30],
        Gen.Select(Gen.Int[0, 2], op, static (feeds, op) => new Step(feeds, op)).Array[1, 12],
        Gen.Bool,
        static (limit, chunks, steps, viaProtocol) => new Script(limit, chunks, steps, viaProtocol));

    /// <summary>Only readline, with one separator each time: the common case, sampled on its own.</summary>
    [Fact]
    public void ReadLines_EndAsTheModelSays() =>
        Gen.Select(Gen.Int[1, 6], s_chunk.Array[0, 30], Gen.Int[0, 2].Array[1, 12],
                static (limit, chunks, feeds) => new Script(limit, chunks, [.. feeds.Select(f => new Step(f, new ReadOp(ReadKind.ReadLine, 0, [])))], ViaProtocol: feeds.Length % 2 == 0))
            .Sample(static script => RunOnLoop(() => Play(script)), iter: Iterations);

    /// <summary>
    /// Cut anywhere (empty pieces included, several in one step), the same bytes give the same lines,
    /// by <c>await foreach</c> and by ReadLineAsync, as long as no line is over the limit (an over-long
    /// line fails where the cut falls, so that is left to the model test).
    /// </summary>
    [Fact]
    public void AnyChunking_GivesTheSameLines() =>
        Gen.Select(Gen.OneOf((byte)'a', (byte)'\n').Array[0, 60], Gen.Int[0, 60].Array[0, 10], Gen.Bool, Gen.Int[0, 3])
            .Sample(static (data, cuts, enumerate, extra) =>
            {
                var expected = Lines(data);
                int limit = Math.Max(1, expected.Max(static l => (int?)l.Length) ?? 1) + extra;
                var pieces = Cut(data, cuts);
                var lines = RunOnLoop(() => ReadLinesWhileFeeding(limit, pieces, enumerate));
                Assert.Equal(expected.Select(Outcome.Show), lines.Select(Outcome.Show));
            }, iter: Iterations);

    private static T RunOnLoop<T>(Func<LoopTask<T>> body)
    {
        using var loop = new TestEventLoop();
        var reported = new List<ExceptionContext>();
        loop.SetExceptionHandler((_, context) => reported.Add(context));
        var result = loop.RunUntilComplete(body);
        Assert.True(reported.Count == 0, "exception handler called: " + string.Join("\n", reported));
        return result;
    }

    private static void RunOnLoop(Func<LoopTask> body) => RunOnLoop(async () =>
    {
        await body();
        return 0;
    });

    private static async LoopTask Play(Script script)
    {
        var reader = new LoopStreamReader(script.Limit);
        var model = new ReaderModel(script.Limit);
        var trace = new List<string>();
        int next = 0;
        StreamReaderProtocol? protocol = null;
        if (script.ViaProtocol)
        {
            protocol = new StreamReaderProtocol(reader);
            protocol.ConnectionMade(new RecordingReadTransport());
        }

        // Feeds the next chunk, and those joined to it, in this loop step; at the end of the data, EOF.
        // True if the reader was woken (some bytes, or EOF).
        bool Feed()
        {
            if (next == script.Chunks.Length)
            {
                if (model.Eof)
                {
                    return false;
                }

                if (protocol is null)
                {
                    reader.FeedEof();
                }
                else
                {
                    Assert.True(protocol.EofReceived(), "EofReceived must keep the write side open (return true) on a plain transport");
                }

                model.FeedEof();
                trace.Add("eof");
                return true;
            }

            bool woken = false;
            do
            {
                var chunk = script.Chunks[next++];
                if (protocol is null)
                {
                    reader.FeedData(chunk.Data);
                }
                else
                {
                    Deliver(protocol, chunk.Data);
                }

                model.FeedData(chunk.Data);
                trace.Add("feed " + Outcome.Show(chunk.Data));
                woken |= chunk.Data.Length > 0;
            }
            while (script.Chunks[next - 1].WithNext && next < script.Chunks.Length);

            return woken;
        }

        string Context() => script + "\n  trace: " + string.Join(", ", trace);

        foreach (var step in script.Steps)
        {
            for (int i = 0; i < step.FeedsBefore && next < script.Chunks.Length; i++)
            {
                Feed();
            }

            var modelRead = model.Start(step.Op);
            var expected = modelRead();
            var (real, buffer) = StartReal(reader, step.Op);
            await Settle();
            while (true)
            {
                Assert.True(real.Done == (expected is not null),
                    $"{step.Op}: the model says {(expected is null ? "it waits" : "it ends: " + expected)}, the reader {(real.Done ? "ended" : "waits")}\n  {Context()}");
                if (expected is not null)
                {
                    break;
                }

                bool woken = Feed();
                await Settle();
                if (woken)
                {
                    expected = modelRead();
                }
            }

            var actual = OutcomeOf(real, step.Op, buffer);
            trace.Add($"{step.Op} -> {actual}");
            Assert.True(expected.ToString() == actual.ToString(), $"{step.Op}: model {expected}, reader {actual}\n  {Context()}");
            Assert.True(model.AtEof == reader.AtEof, $"after {step.Op}: model AtEof={model.AtEof}, reader AtEof={reader.AtEof}\n  {Context()}");
        }

        while (next < script.Chunks.Length || !model.Eof)
        {
            Feed();
        }

        var rest = await reader.ReadAsync();
        Assert.True(Outcome.Show(model.Remaining()) == Outcome.Show(rest), $"left over: model {Outcome.Show(model.Remaining())}, reader {Outcome.Show(rest)}\n  {Context()}");
        Assert.True(reader.AtEof);
        protocol?.ConnectionLost(null);
    }

    /// <summary>
    /// Hands <paramref name="data"/> to the protocol as a transport does: into the memory GetBuffer
    /// gives (as much as fits, again for the rest), then BufferUpdated. A transport never delivers
    /// nothing, so an empty chunk is not delivered.
    /// </summary>
    private static void Deliver(StreamReaderProtocol protocol, byte[] data)
    {
        int offset = 0;
        while (offset < data.Length)
        {
            // Some transports give no hint (-1), others the size they have.
            var memory = protocol.GetBuffer(offset % 2 == 0 ? -1 : data.Length - offset);
            Assert.False(memory.IsEmpty, "GetBuffer gave empty memory");
            int n = Math.Min(memory.Length, data.Length - offset);
            data.AsSpan(offset, n).CopyTo(memory.Span);
            protocol.BufferUpdated(n);
            offset += n;
        }
    }

    /// <summary>Starts <paramref name="op"/> on the real reader; a failure thrown by the call itself becomes a failed future.</summary>
    private static (Future Read, byte[]? Buffer) StartReal(LoopStreamReader reader, ReadOp op)
    {
        byte[]? buffer = op.Kind is ReadKind.ReadMemory or ReadKind.ReadExactlyMemory ? new byte[op.N] : null;
        try
        {
            Future read = op.Kind switch
            {
                ReadKind.Read => reader.ReadAsync(op.N),
                ReadKind.ReadLine => reader.ReadLineAsync(),
                ReadKind.ReadUntil when op.Separators.Length == 1 => reader.ReadUntilAsync(op.Separators[0]),
                ReadKind.ReadUntil => reader.ReadUntilAsync(op.Separators.Select(static s => (ReadOnlyMemory<byte>)s).ToArray()),
                ReadKind.ReadExactly => reader.ReadExactlyAsync(op.N),
                ReadKind.ReadMemory => AsTask(reader.ReadAsync(buffer)),
                ReadKind.ReadExactlyMemory => AsTask(reader.ReadExactlyAsync(buffer)),
                _ => throw new ArgumentOutOfRangeException(nameof(op), op.Kind, "unknown read kind"),
            };
            return (read, buffer);
        }
        catch (ArgumentException ex)
        {
            var failed = new Future<int>(BaseEventLoop.RunningLoopOrNull!);
            failed.SetException(ex);
            return (failed, buffer);
        }
    }

    private static Outcome OutcomeOf(Future read, ReadOp op, byte[]? buffer)
    {
        try
        {
            object? result = read.ResultObject();
            return buffer is null ? Outcome.Ok((byte[])result!) : Outcome.Ok(buffer[..(int)result!]);
        }
        catch (IncompleteReadError ex)
        {
            return Outcome.Incomplete(ex.Partial, ex.Expected);
        }
        catch (Exception ex) when (op.Kind == ReadKind.ReadLine && IsLineTooLong(ex))
        {
            return Outcome.LineTooLong();
        }
        catch (LimitOverrunError ex)
        {
            return Outcome.Limit(ex.Consumed);
        }
        catch (ArgumentException)
        {
            return Outcome.Argument();
        }
        catch (Exception ex)
        {
            return new Outcome("unexpected " + ex.GetType().Name + ": " + ex.Message, []);
        }
    }

    private static async LoopTask<List<byte[]>> ReadLinesWhileFeeding(int limit, List<byte[]> pieces, bool enumerate)
    {
        var reader = new LoopStreamReader(limit);
        var lines = new List<byte[]>();
        var reading = enumerate ? Enumerate(reader, lines) : ReadLines(reader, lines);
        foreach (var piece in pieces)
        {
            reader.FeedData(piece);
            if (piece.Length % 2 == 0)
            {
                // Odd pieces join the next in one loop step; even ones let the reader run first.
                await Settle();
            }
        }

        reader.FeedEof();
        await reading;
        return lines;
    }

    private static async LoopTask Enumerate(LoopStreamReader reader, List<byte[]> lines)
    {
        await foreach (var line in reader)
        {
            lines.Add(line);
        }
    }

    private static async LoopTask ReadLines(LoopStreamReader reader, List<byte[]> lines)
    {
        while (true)
        {
            var line = await reader.ReadLineAsync();
            if (line.Length == 0)
            {
                return;
            }

            lines.Add(line);
        }
    }

    /// <summary>The lines of <paramref name="data"/>, each with its "\n", the last without if it has none.</summary>
    private static List<byte[]> Lines(byte[] data)
    {
        var lines = new List<byte[]>();
        int start = 0;
        for (int i = 0; i < data.Length; i++)
        {
            if (data[i] == (byte)'\n')
            {
                lines.Add(data[start..(i + 1)]);
                start = i + 1;
            }
        }

        if (start < data.Length)
        {
            lines.Add(data[start..]);
        }

        return lines;
    }

    /// <summary><paramref name="data"/> cut at <paramref name="cuts"/> (clamped, sorted; repeated cuts give empty pieces).</summary>
    private static List<byte[]> Cut(byte[] data, int[] cuts)
    {
        var points = cuts.Select(c => Math.Min(c, data.Length)).Order().Append(data.Length).ToList();
        var pieces = new List<byte[]>();
        int start = 0;
        foreach (int point in points)
        {
            pieces.Add(data[start..point]);
            start = point;
        }

        return pieces;
    }
}
