namespace Tulip.Tests.Streams;

using Tulip.Streams;
using static Tulip.Tests.Streams.ReaderTestSupport;
using static Tulip.Tests.Transports.TestUtil;

/// <summary>
/// <see cref="LoopStreamReader"/> as asyncio 3.13's StreamReader behaves (the socket-free reader tests
/// of CPython's Lib/test/test_asyncio/test_streams.py, in substance, plus what Tulip adds: memory
/// reads, tokens, line enumeration). The reader is fed by hand, so no test needs a socket.
/// </summary>
/// <remarks>
/// The reader only uses futures and the running loop, so a virtual-clock loop would do; the suite
/// is bound to every loop kind all the same (the in-memory one too), because its waits and wake-ups
/// go through each loop's ready queue and a loop that scheduled them differently should fail here.
/// </remarks>
public abstract class StreamReaderTests : LoopSuite
{
    private static readonly byte[] s_data = B("line1\nline2\nline3\n");

    protected StreamReaderTests(LoopKind kind) : base(kind)
    {
    }

    private void On(Func<LoopTask> body) => Run(Kind, _ => body());

    [Fact]
    public void Construct_WithoutARunningLoop_Fails() =>
        Assert.Throws<InvalidOperationException>(() => new LoopStreamReader());

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Construct_WithLimitZeroOrLess_Fails(int limit) => On(async () =>
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new LoopStreamReader(limit));
        Assert.Contains("imit", ex.Message, StringComparison.Ordinal);
        await Tasks.Yield();
    });

    [Fact]
    public void Construct_Defaults() => On(async () =>
    {
        var reader = new LoopStreamReader();
        Assert.Equal(65536, LoopStreamReader.DefaultLimit);
        Assert.Equal(LoopStreamReader.DefaultLimit, reader.Limit);
        Assert.Equal(7, new LoopStreamReader(7).Limit);
        Assert.False(reader.AtEof);
        Assert.Null(reader.Exception);
        await Tasks.Yield();
    });

    [Fact]
    public void FeedEmptyData_LeavesTheReaderEmpty() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData([]);
        reader.FeedEof();
        Assert.True(reader.AtEof);
        Assert.Empty(await reader.ReadAsync());
    });

    [Fact]
    public void FeedNonEmptyData_IsBufferedForTheNextRead() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(s_data);
        Assert.False(reader.AtEof);
        reader.FeedEof();
        Assert.False(reader.AtEof);
        Assert.Equal(s_data, await reader.ReadAsync());
        Assert.True(reader.AtEof);
    });

    [Fact]
    public void FeedData_AfterFeedEof_Fails() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("ab"));
        reader.FeedEof();
        Assert.Throws<InvalidOperationException>(() => reader.FeedData(B("cd")));
        Assert.Equal(B("ab"), await reader.ReadAsync());
    });

    [Fact]
    public void ReadZero_ReturnsEmptyAndLeavesTheBuffer() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(s_data);
        Assert.Empty(await reader.ReadAsync(0));
        reader.FeedEof();
        Assert.Equal(s_data, await reader.ReadAsync());
    });

    [Fact]
    public void ReadZero_DoesNotWaitForData() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var read = reader.ReadAsync(0);
        await Settle();
        Assert.True(read.Done);
        Assert.Empty(await read);
    });

    [Fact]
    public void Read_WaitsForData_ThenReturnsWhatCame() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var read = reader.ReadAsync(30);
        await Settle();
        Assert.False(read.Done);
        reader.FeedData(s_data);
        Assert.Equal(s_data, await read);
        reader.FeedEof();
        Assert.True(reader.AtEof);
    });

    [Fact]
    public void Read_LineBreaks_AreNotSpecial() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("line1\n"));
        reader.FeedData(B("line2\n"));
        Assert.Equal(B("line1"), await reader.ReadAsync(5));
        Assert.Equal(B("\nline2\n"), await reader.ReadAsync(30));
    });

    [Fact]
    public void Read_AtEof_ReturnsEmpty() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var read = reader.ReadAsync(1024);
        await Settle();
        Assert.False(read.Done);
        reader.FeedEof();
        Assert.Empty(await read);
        Assert.True(reader.AtEof);
        Assert.Empty(await reader.ReadAsync(1024));
    });

    [Fact]
    public void Read_UntilEof_JoinsEveryChunk() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var read = reader.ReadAsync(-1);
        await Settle();
        reader.FeedData(B("chunk1\n"));
        reader.FeedData(B("chunk2"));
        await Settle();
        Assert.False(read.Done);
        reader.FeedEof();
        Assert.Equal(B("chunk1\nchunk2"), await read);
        Assert.True(reader.AtEof);
    });

    /// <summary>read(-1) reads in pieces of the limit, so more than the limit comes back whole.</summary>
    [Fact]
    public void Read_UntilEof_ReturnsMoreThanTheLimit() => On(async () =>
    {
        var reader = new LoopStreamReader(4);
        var data = Pattern(100);
        reader.FeedData(data);
        reader.FeedEof();
        Assert.Equal(data, await reader.ReadAsync());
    });

    [Fact]
    public void Read_IsNotBoundByTheLimit() => On(async () =>
    {
        var reader = new LoopStreamReader(3);
        reader.FeedData(B("chunk"));
        Assert.Equal(B("chunk"), await reader.ReadAsync(5));
    });

    [Fact]
    public void Read_AfterSetException_Throws_EvenWithDataBuffered() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("line\n"));
        Assert.Equal(B("li"), await reader.ReadAsync(2));
        var error = new InvalidDataException("broken");
        reader.SetException(error);
        Assert.Same(error, reader.Exception);
        Assert.Same(error, await Throws<InvalidDataException>(() => reader.ReadAsync(2)));
        Assert.Same(error, await Throws<InvalidDataException>(() => reader.ReadAsync(new byte[2])));
        Assert.Same(error, await Throws<InvalidDataException>(() => reader.ReadLineAsync()));
        Assert.Same(error, await Throws<InvalidDataException>(() => reader.ReadExactlyAsync(2)));
        Assert.Same(error, await Throws<InvalidDataException>(() => reader.ReadExactlyAsync(new byte[2])));
        Assert.Same(error, await Throws<InvalidDataException>(() => reader.ReadUntilAsync(B("\n"))));
    });

    [Fact]
    public void ReadLine_WaitsForTheSeparator_AndLeavesTheRest() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("chunk1 "));
        var line = reader.ReadLineAsync();
        await Settle();
        Assert.False(line.Done);
        reader.FeedData(B("chunk2 "));
        reader.FeedData(B("chunk3 "));
        await Settle();
        Assert.False(line.Done);
        reader.FeedData(B("\n chunk4"));
        Assert.Equal(B("chunk1 chunk2 chunk3 \n"), await line);
        reader.FeedEof();
        Assert.Equal(B(" chunk4"), await reader.ReadAsync());
    });

    [Fact]
    public void ReadLine_OverTheLimit_WithTheSeparatorBuffered_DropsTheLine() => On(async () =>
    {
        var reader = new LoopStreamReader(3);
        reader.FeedData(B("li"));
        reader.FeedData(B("ne1\nline2\n"));
        AssertLineTooLong(await Throws<Exception>(() => reader.ReadLineAsync()));
        reader.FeedEof();
        Assert.Equal(B("line2\n"), await reader.ReadAsync());
    });

    [Fact]
    public void ReadLine_OverTheLimit_WithoutTheSeparator_ClearsTheBuffer() => On(async () =>
    {
        var reader = new LoopStreamReader(3);
        reader.FeedData(B("li"));
        reader.FeedData(B("ne1"));
        reader.FeedData(B("li"));
        AssertLineTooLong(await Throws<Exception>(() => reader.ReadLineAsync()));
        reader.FeedEof();
        Assert.Empty(await reader.ReadAsync());
    });

    [Fact]
    public void ReadLine_Limit_FedWhileWaiting() => On(async () =>
    {
        var reader = new LoopStreamReader(7);
        var line = reader.ReadLineAsync();
        await Settle();
        reader.FeedData(B("chunk1"));
        reader.FeedData(B("chunk2"));
        reader.FeedData(B("chunk3\n"));
        reader.FeedEof();
        AssertLineTooLong(await Throws<Exception>(() => line));
        Assert.Empty(await reader.ReadAsync());

        reader = new LoopStreamReader(7);
        line = reader.ReadLineAsync();
        await Settle();
        reader.FeedData(B("chunk1"));
        reader.FeedData(B("chunk2\n"));
        reader.FeedData(B("chunk3\n"));
        reader.FeedEof();
        AssertLineTooLong(await Throws<Exception>(() => line));
        Assert.Equal(B("chunk3\n"), await reader.ReadAsync());
    });

    /// <summary>The limit counts the line without its separator, and is inclusive.</summary>
    [Fact]
    public void ReadLine_Limit_IsStrict() => On(async () =>
    {
        var reader = new LoopStreamReader(7);
        reader.FeedData(B("1234567\n"));
        Assert.Equal(B("1234567\n"), await reader.ReadLineAsync());

        reader.FeedData(B("12345678\n"));
        AssertLineTooLong(await Throws<Exception>(() => reader.ReadLineAsync()));
        Assert.False(reader.AtEof);

        reader.FeedData(B("12345678"));
        AssertLineTooLong(await Throws<Exception>(() => reader.ReadLineAsync()));
        reader.FeedEof();
        Assert.True(reader.AtEof);
    });

    [Fact]
    public void ReadLine_NoLimit_NoWait() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(s_data.AsSpan(0, 6));
        reader.FeedData(s_data.AsSpan(6));
        Assert.Equal(B("line1\n"), await reader.ReadLineAsync());
        reader.FeedEof();
        Assert.Equal(B("line2\nline3\n"), await reader.ReadAsync());
    });

    [Fact]
    public void ReadLine_AtEof_ReturnsTheLastPartialLine() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("some data"));
        reader.FeedEof();
        Assert.Equal(B("some data"), await reader.ReadLineAsync());
        Assert.True(reader.AtEof);
    });

    [Fact]
    public void ReadLine_EmptyEof_ReturnsEmpty() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedEof();
        Assert.Empty(await reader.ReadLineAsync());
        Assert.Empty(await reader.ReadLineAsync());
    });

    [Fact]
    public void ReadLine_ThenRead_CountsBytesFromTheLineEnd() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(s_data);
        await reader.ReadLineAsync();
        Assert.Equal(B("line2\nl"), await reader.ReadAsync(7));
        reader.FeedEof();
        Assert.Equal(B("ine3\n"), await reader.ReadAsync());
    });

    [Fact]
    public void ReadLine_AfterSetException_Throws() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("line\n"));
        Assert.Equal(B("line\n"), await reader.ReadLineAsync());
        var error = new InvalidDataException();
        reader.SetException(error);
        Assert.Same(error, await Throws<InvalidDataException>(() => reader.ReadLineAsync()));
    });

    [Fact]
    public void AtEof_OnlyOnceEofIsFedAndTheBufferIsEmpty() => On(async () =>
    {
        var reader = new LoopStreamReader();
        Assert.False(reader.AtEof);
        reader.FeedData(B("some data\n"));
        Assert.False(reader.AtEof);
        await reader.ReadLineAsync();
        Assert.False(reader.AtEof);
        reader.FeedData(B("some data\n"));
        reader.FeedEof();
        Assert.False(reader.AtEof);
        await reader.ReadLineAsync();
        Assert.True(reader.AtEof);
    });

    [Fact]
    public void ReadUntil_EmptySeparator_Fails() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("data\n"));
        await Throws<ArgumentException>(() => reader.ReadUntilAsync(ReadOnlyMemory<byte>.Empty));
        await Throws<ArgumentException>(() => reader.ReadUntilAsync(Seps("\n", "")));
        await Throws<ArgumentException>(() => reader.ReadUntilAsync(Seps()));
        Assert.Equal(B("data\n"), await reader.ReadLineAsync());
    });

    [Fact]
    public void ReadUntil_MultiChunks() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("lineAAA"));
        Assert.Equal(B("lineAAA"), await reader.ReadUntilAsync(B("AAA")));
        reader.FeedData(B("lineAAAxxx"));
        Assert.Equal(B("lineAAA"), await reader.ReadUntilAsync(B("AAA")));
        Assert.Equal(B("xxx"), await reader.ReadAsync(10));
    });

    [Fact]
    public void ReadUntil_SeparatorSplitAcrossChunks() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("QWEaa"));
        reader.FeedData(B("XYaa"));
        reader.FeedData(B("a"));
        Assert.Equal(B("QWEaaXYaaa"), await reader.ReadUntilAsync(B("aaa")));

        reader.FeedData(B("QWEaa"));
        reader.FeedData(B("XYa"));
        reader.FeedData(B("aa"));
        Assert.Equal(B("QWEaaXYaaa"), await reader.ReadUntilAsync(B("aaa")));

        reader.FeedData(B("aaa"));
        Assert.Equal(B("aaa"), await reader.ReadUntilAsync(B("aaa")));

        var until = reader.ReadUntilAsync(B("aaa"));
        foreach (var piece in new[] { "XXX", "a", "a" })
        {
            reader.FeedData(B(piece));
            await Settle();
            Assert.False(until.Done);
        }

        reader.FeedData(B("a"));
        Assert.Equal(B("XXXaaa"), await until);
        reader.FeedEof();
        Assert.True(reader.AtEof);
    });

    [Fact]
    public void ReadUntil_AtEof_FailsWithThePartialDataAndEmptiesTheBuffer() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("some dataAA"));
        reader.FeedEof();
        var ex = await Throws<IncompleteReadError>(() => reader.ReadUntilAsync(B("AAA")));
        Assert.Equal(B("some dataAA"), ex.Partial);
        Assert.Null(ex.Expected);
        Assert.IsAssignableFrom<EndOfStreamException>(ex);
        Assert.True(reader.AtEof);
    });

    [Fact]
    public void ReadUntil_OverTheLimit_FailsAndKeepsTheData() => On(async () =>
    {
        var reader = new LoopStreamReader(3);
        reader.FeedData(B("some dataAA"));
        var notFound = await Throws<LimitOverrunError>(() => reader.ReadUntilAsync(B("AAA")));
        // Nothing of "some dataAA" can hold the separator but its last two bytes: 9 are past.
        Assert.Equal(9, notFound.Consumed);

        reader.FeedData(B("A"));
        var found = await Throws<LimitOverrunError>(() => reader.ReadUntilAsync(B("AAA")));
        Assert.Equal(9, found.Consumed);
        Assert.NotEqual(notFound.Message, found.Message);

        reader.FeedEof();
        Assert.Equal(B("some dataAAA"), await reader.ReadAsync());
    });

    [Fact]
    public void ReadUntil_SeparatorRightAtTheLimit_IsFound() => On(async () =>
    {
        var reader = new LoopStreamReader(3);
        reader.FeedData(B("abc\nabcd\n"));
        Assert.Equal(B("abc\n"), await reader.ReadUntilAsync(B("\n")));
        Assert.Equal(4, (await Throws<LimitOverrunError>(() => reader.ReadUntilAsync(B("\n")))).Consumed);
    });

    /// <summary>3.13: the earliest end wins, whatever the order the separators are given in.</summary>
    [Fact]
    public void ReadUntil_MultipleSeparators_TheShortestResultWins() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("line 1\nline 2\r"));
        Assert.Equal(B("line 1\n"), await reader.ReadUntilAsync(Seps("\r", "\n")));
        Assert.Equal(B("line 2\r"), await reader.ReadUntilAsync(Seps("\n", "\r")));

        reader.FeedData(B("line 3\r\nline 4\n"));
        Assert.Equal(B("line 3\r"), await reader.ReadUntilAsync(Seps("\r\n", "\r")));
        Assert.Equal(B("\n"), await reader.ReadUntilAsync(Seps("\r\n", "\n")));
        Assert.Equal(B("line 4\n"), await reader.ReadUntilAsync(Seps("\r\n", "\n")));

        // A longer separator that ends first beats a shorter one that ends later.
        reader.FeedData(B("xxABCDyyB"));
        Assert.Equal(B("xxABC"), await reader.ReadUntilAsync(Seps("D", "ABC")));
        Assert.Equal(B("Dy"), await reader.ReadUntilAsync(Seps("yyB", "y")));
        Assert.Equal(B("yB"), await reader.ReadUntilAsync(Seps("B")));
    });

    [Fact]
    public void ReadUntil_MultipleSeparators_WaitsForAnyOfThem() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var until = reader.ReadUntilAsync(Seps("\r\n", "END"));
        reader.FeedData(B("abc\r"));
        await Settle();
        Assert.False(until.Done);
        reader.FeedData(B("EN"));
        await Settle();
        Assert.False(until.Done);
        reader.FeedData(B("D!"));
        Assert.Equal(B("abc\rEND"), await until);
        reader.FeedEof();
        Assert.Equal(B("!"), await reader.ReadAsync());
    });

    /// <summary>For the limit the shortest separator is the one that matched (3.13's rule).</summary>
    [Fact]
    public void ReadUntil_MultipleSeparators_Limit() => On(async () =>
    {
        var reader = new LoopStreamReader(3);
        reader.FeedData(B("abcdef"));
        // Not found: only the last len(longest) - 1 bytes may still start a separator.
        var notFound = await Throws<LimitOverrunError>(() => reader.ReadUntilAsync(Seps("x", "xyz")));
        Assert.Equal(4, notFound.Consumed);
        reader.FeedData(B("\n"));
        var found = await Throws<LimitOverrunError>(() => reader.ReadUntilAsync(Seps("f\n", "\n")));
        Assert.Equal(6, found.Consumed);
        reader.FeedEof();
        Assert.Equal(B("abcdef\n"), await reader.ReadAsync());
    });

    [Fact]
    public void ReadExactly_Zero_ReturnsEmpty_AndLessFails() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(s_data);
        Assert.Empty(await reader.ReadExactlyAsync(0));
        await Throws<ArgumentException>(() => reader.ReadExactlyAsync(-1));
        reader.FeedEof();
        Assert.Equal(s_data, await reader.ReadAsync());
    });

    [Fact]
    public void ReadExactly_WaitsForAllOfIt() => On(async () =>
    {
        var reader = new LoopStreamReader();
        int n = 2 * s_data.Length;
        var read = reader.ReadExactlyAsync(n);
        reader.FeedData(s_data);
        await Settle();
        Assert.False(read.Done);
        reader.FeedData(s_data);
        reader.FeedData(s_data);
        Assert.Equal(s_data.Concat(s_data).ToArray(), await read);
        reader.FeedEof();
        Assert.Equal(s_data, await reader.ReadAsync());
    });

    [Fact]
    public void ReadExactly_IsNotBoundByTheLimit() => On(async () =>
    {
        var reader = new LoopStreamReader(3);
        reader.FeedData(B("chunk"));
        Assert.Equal(B("chunk"), await reader.ReadExactlyAsync(5));
    });

    [Fact]
    public void ReadExactly_AtEof_FailsWithThePartialData() => On(async () =>
    {
        var reader = new LoopStreamReader();
        int n = 2 * s_data.Length;
        var read = reader.ReadExactlyAsync(n);
        await Settle();
        reader.FeedData(s_data);
        reader.FeedEof();
        var ex = await Throws<IncompleteReadError>(() => read);
        Assert.Equal(s_data, ex.Partial);
        Assert.Equal(n, ex.Expected);
        Assert.Contains("18", ex.Message, StringComparison.Ordinal);
        Assert.Contains("36", ex.Message, StringComparison.Ordinal);
        Assert.True(reader.AtEof);
    });

    [Fact]
    public void ReadExactly_AfterSetException_Throws() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("line\n"));
        Assert.Equal(B("li"), await reader.ReadExactlyAsync(2));
        var error = new InvalidDataException();
        reader.SetException(error);
        Assert.Same(error, await Throws<InvalidDataException>(() => reader.ReadExactlyAsync(2)));
    });

    [Fact]
    public void SetException_WakesAWaitingRead() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var line = reader.ReadLineAsync();
        await Settle();
        Assert.False(line.Done);
        var error = new InvalidDataException();
        reader.SetException(error);
        Assert.Same(error, await Throws<InvalidDataException>(() => line));
    });

    [Fact]
    public void SetException_AfterTheWaitingReadWasCancelled_IsHarmless() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var line = reader.ReadLineAsync();
        await Settle();
        line.Cancel();
        await Settle();
        Assert.True(line.Cancelled);
        var error = new InvalidOperationException("message");
        reader.SetException(error);
        await Settle();
        // The reader no longer waits for anyone: a new read is not "a second reader".
        Assert.Same(error, await Throws<InvalidOperationException>(() => reader.ReadAsync(1)));
    });

    [Fact]
    public void CancelledRead_LosesNothing() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var read = reader.ReadAsync(10);
        await Settle();
        read.Cancel();
        await Throws<CancelledError>(() => read);
        reader.FeedData(B("abc"));
        Assert.Equal(B("abc"), await reader.ReadAsync(10));
    });

    [Fact]
    public void CancelledReadExactly_LeavesWhatItHadSeenInTheBuffer() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("ab"));
        var read = reader.ReadExactlyAsync(4);
        await Settle();
        Assert.False(read.Done);
        read.Cancel();
        await Throws<CancelledError>(() => read);
        reader.FeedData(B("cd"));
        Assert.Equal(B("abcd"), await reader.ReadAsync(10));
    });

    [Fact]
    public void CancelledReadUntil_LeavesWhatItHadSeenInTheBuffer() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("ab"));
        var until = reader.ReadUntilAsync(B("\n"));
        await Settle();
        until.Cancel();
        await Throws<CancelledError>(() => until);
        reader.FeedData(B("c\nd"));
        Assert.Equal(B("abc\n"), await reader.ReadLineAsync());
        reader.FeedEof();
        Assert.Equal(B("d"), await reader.ReadLineAsync());
    });

    [Fact]
    public void CancelledMemoryRead_LosesNothing() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var buffer = new byte[8];
        var read = AsTask(reader.ReadExactlyAsync(buffer));
        reader.FeedData(B("abc"));
        await Settle();
        Assert.False(read.Done);
        read.Cancel();
        await Throws<CancelledError>(() => read);
        reader.FeedData(B("de"));
        reader.FeedEof();
        Assert.Equal(B("abcde"), await reader.ReadAsync());
    });

    /// <summary>
    /// The data came, but the read's task was cancelled before it ran (a timeout firing in the same
    /// loop step, say). Nothing may be lost: either the read throws CancelledError and the bytes are
    /// still in the reader (asyncio: the read takes them only when it runs), or the read returns them
    /// (Tulip delivers a cancellation that comes after the awaited future is done at the task's next
    /// await instead).
    /// </summary>
    [Fact]
    public void ReadCancelledRightAfterItsDataCame_LosesNothing() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var starts = new List<(string Name, Func<Future> Read)>
        {
            ("read", () => reader.ReadAsync(10)),
            ("readline", () => reader.ReadLineAsync()),
            ("readexactly", () => reader.ReadExactlyAsync(4)),
            ("readuntil", () => reader.ReadUntilAsync(Seps("\n", "c\n"))),
        };
        foreach (var (name, start) in starts)
        {
            var read = start();
            await Settle();
            reader.FeedData(B("abc\n"));
            read.Cancel();
            var got = await BytesOrCancelled(read);
            reader.FeedData(B("|")); // so the next read has something to return either way
            var rest = await reader.ReadAsync(10);
            Assert.True(got.Concat(rest).SequenceEqual(B("abc\n|")), $"{name}: the read got {Outcome.Show(got)}, the next {Outcome.Show(rest)}");
        }
    });

    /// <summary>As <see cref="ReadCancelledRightAfterItsDataCame_LosesNothing"/>, for the memory reads, awaited by a task of their own.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MemoryReadCancelledRightAfterItsDataCame_LosesNothing(bool exactly) => On(async () =>
    {
        var reader = new LoopStreamReader();
        var buffer = new byte[3];
        var read = AsTask(exactly ? reader.ReadExactlyAsync(buffer) : reader.ReadAsync(buffer));
        await Settle();
        reader.FeedData(B("abc"));
        read.Cancel();
        byte[] got;
        try
        {
            got = buffer[..await read];
        }
        catch (CancelledError)
        {
            got = [];
        }

        reader.FeedEof();
        var rest = await reader.ReadAsync();
        Assert.Equal("\"abc\"", Outcome.Show([.. got, .. rest]));
    });

    /// <summary>
    /// asyncio's read(n) takes, when it runs, up to n of all that came while it waited: data fed
    /// twice in one loop step comes back from one read. The memory read is read(n) into a buffer.
    /// </summary>
    [Fact]
    public void MemoryRead_TakesAllThatCameBeforeItRan() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var buffer = new byte[8];
        var read = AsTask(reader.ReadAsync(buffer));
        await Settle();
        reader.FeedData(B("ab"));
        reader.FeedData(B("cd"));
        int n = await read;
        Assert.Equal("\"abcd\"", Outcome.Show(buffer[..n]));

        // The byte[] read, for comparison.
        var bytes = reader.ReadAsync(8);
        await Settle();
        reader.FeedData(B("ef"));
        reader.FeedData(B("gh"));
        Assert.Equal("\"efgh\"", Outcome.Show(await bytes));
    });

    [Fact]
    public void TwoReadersAtOnce_TheSecondIsRefused() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var first = reader.ReadAsync(10);
        await Settle();
        await Throws<InvalidOperationException>(() => reader.ReadLineAsync());
        await Throws<InvalidOperationException>(() => reader.ReadAsync(new byte[4]));
        await Throws<InvalidOperationException>(() => reader.ReadExactlyAsync(3));
        await Throws<InvalidOperationException>(() => reader.ReadUntilAsync(B("x")));
        Assert.False(first.Done);
        reader.FeedData(B("data"));
        Assert.Equal(B("data"), await first);
    });

    [Fact]
    public void TwoReadersAtOnce_AWaitingMemoryReadRefusesTheOthers() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var buffer = new byte[4];
        var first = AsTask(reader.ReadAsync(buffer));
        await Settle();
        await Throws<InvalidOperationException>(() => reader.ReadAsync(3));
        await Throws<InvalidOperationException>(() => reader.ReadLineAsync());
        await Throws<InvalidOperationException>(() => reader.ReadExactlyAsync(new byte[2]));
        await Throws<InvalidOperationException>(() => ReadAll(reader, []));
        Assert.False(first.Done);
        reader.FeedData(B("data"));
        Assert.Equal(4, await first);
        Assert.Equal(B("data"), buffer);
    });

    [Fact]
    public void TokenCancelsAPendingRead_AndTheReaderStaysUsable() => On(async () =>
    {
        var reader = new LoopStreamReader();
        using var cts = new CancellationTokenSource();
        var read = reader.ReadAsync(10, cts.Token);
        await Settle();
        Assert.False(read.Done);
        cts.Cancel();
        await Throws<OperationCanceledException>(() => read);
        reader.FeedData(B("abc"));
        Assert.Equal(B("abc"), await reader.ReadAsync(10));
    });

    [Fact]
    public void TokenCancelsEachKindOfPendingRead() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var starts = new List<Func<CancellationToken, Future>>
        {
            t => reader.ReadAsync(-1, t),
            t => reader.ReadLineAsync(t),
            t => reader.ReadExactlyAsync(5, t),
            t => reader.ReadUntilAsync(B("\n"), t),
            t => reader.ReadUntilAsync(Seps("\n", "\r"), t),
            t => AsTask(reader.ReadAsync(new byte[4], t)),
            t => AsTask(reader.ReadExactlyAsync(new byte[4], t)),
        };
        foreach (var start in starts)
        {
            using var cts = new CancellationTokenSource();
            var read = start(cts.Token);
            await Settle();
            Assert.False(read.Done);
            cts.Cancel();
            await Throws<OperationCanceledException>(() => read);
        }

        reader.FeedData(B("xy\n"));
        reader.FeedEof();
        Assert.Equal(B("xy\n"), await reader.ReadLineAsync());
    });

    [Fact]
    public void MemoryRead_ReturnsUpToTheBufferLength_ThenZeroAtEof() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("abcdefg"));
        var buffer = new byte[4];
        Assert.Equal(4, await reader.ReadAsync(buffer));
        Assert.Equal(B("abcd"), buffer);
        Assert.Equal(3, await reader.ReadAsync(buffer));
        Assert.Equal(B("efg"), buffer[..3]);
        var pending = AsTask(reader.ReadAsync(buffer));
        await Settle();
        Assert.False(pending.Done);
        reader.FeedData(B("h"));
        Assert.Equal(1, await pending);
        Assert.Equal((byte)'h', buffer[0]);
        reader.FeedEof();
        Assert.Equal(0, await reader.ReadAsync(buffer));
        Assert.Equal(0, await reader.ReadAsync(buffer));
    });

    [Fact]
    public void MemoryRead_OfAnEmptyBuffer_ReturnsZeroAtOnce() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var read = AsTask(reader.ReadAsync(Memory<byte>.Empty));
        await Settle();
        Assert.True(read.Done);
        Assert.Equal(0, await read);
        Assert.Equal(0, await reader.ReadExactlyAsync(Memory<byte>.Empty));
    });

    [Fact]
    public void MemoryReadExactly_FillsTheBuffer() => On(async () =>
    {
        var reader = new LoopStreamReader(2);
        var buffer = new byte[6];
        var read = AsTask(reader.ReadExactlyAsync(buffer));
        reader.FeedData(B("abc"));
        await Settle();
        Assert.False(read.Done);
        reader.FeedData(B("defg"));
        Assert.Equal(6, await read);
        Assert.Equal(B("abcdef"), buffer);
        reader.FeedEof();
        Assert.Equal(B("g"), await reader.ReadAsync());
    });

    [Fact]
    public void MemoryReadExactly_AtEof_FailsWithThePartialData() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("abc"));
        reader.FeedEof();
        var ex = await Throws<IncompleteReadError>(() => reader.ReadExactlyAsync(new byte[5]));
        Assert.Equal(B("abc"), ex.Partial);
        Assert.Equal(5, ex.Expected);
        Assert.True(reader.AtEof);
    });

    [Fact]
    public void Lines_EnumerateToEof_AndCarryTheLastLineWithoutNewline() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("one\ntw"));
        var lines = new List<string>();
        var reading = ReadAll(reader, lines);
        await Settle();
        Assert.Equal(["one\n"], lines);
        reader.FeedData(B("o\n\nthree"));
        await Settle();
        Assert.Equal(["one\n", "two\n", "\n"], lines);
        Assert.False(reading.Done);
        reader.FeedEof();
        await reading;
        Assert.Equal(["one\n", "two\n", "\n", "three"], lines);
    });

    [Fact]
    public void Lines_OfAnEmptyStream_AreNone() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedEof();
        var lines = new List<string>();
        await ReadAll(reader, lines);
        Assert.Empty(lines);
    });

    [Fact]
    public void Lines_EndWithTheReadersException() => On(async () =>
    {
        var reader = new LoopStreamReader();
        reader.FeedData(B("one\n"));
        var lines = new List<string>();
        var reading = ReadAll(reader, lines);
        await Settle();
        var error = new InvalidDataException();
        reader.SetException(error);
        Assert.Same(error, await Throws<InvalidDataException>(() => reading));
        Assert.Equal(["one\n"], lines);
    });

    [Fact]
    public void FlowControl_PausesOverTwiceTheLimit_ResumesAtTheLimit() => On(async () =>
    {
        var reader = new LoopStreamReader(4);
        var transport = new RecordingReadTransport();
        reader.SetTransport(transport);
        reader.FeedData(B("12345678"));
        Assert.Empty(transport.Calls);
        reader.FeedData(B("9"));
        Assert.Equal(["pause"], transport.Calls);
        reader.FeedData(B("abc"));
        Assert.Equal(["pause"], transport.Calls);
        Assert.Equal(B("1234567"), await reader.ReadAsync(7));
        Assert.Equal(["pause"], transport.Calls); // 5 left, over the limit
        Assert.Equal(B("8"), await reader.ReadAsync(1));
        Assert.Equal(["pause", "resume"], transport.Calls); // 4 left
        reader.FeedData(B("defgh"));
        Assert.Equal(["pause", "resume", "pause"], transport.Calls); // 9 buffered
    });

    [Fact]
    public void FlowControl_EachReadKindResumes() => On(async () =>
    {
        var cases = new List<(string Name, Func<LoopStreamReader, Future> Read)>
        {
            ("readline", r => r.ReadLineAsync()),
            ("readuntil", r => r.ReadUntilAsync(B("\n"))),
            ("readexactly", r => r.ReadExactlyAsync(4)),
            ("read", r => r.ReadAsync(4)),
            ("read(memory)", r => AsTask(r.ReadAsync(new byte[4]))),
            ("readexactly(memory)", r => AsTask(r.ReadExactlyAsync(new byte[4]))),
        };
        foreach (var (name, read) in cases)
        {
            var reader = new LoopStreamReader(3);
            var transport = new RecordingReadTransport();
            reader.SetTransport(transport);
            // 7 bytes: over twice the limit; each read takes 4 ("abc\n"), leaving the limit.
            reader.FeedData(B("abc\ndef"));
            Assert.Equal(["pause"], transport.Calls);
            await read(reader);
            Assert.True(transport.Calls.SequenceEqual(["pause", "resume"]), name + ": " + string.Join(",", transport.Calls));
        }
    });

    /// <summary>A read that must wait while paused resumes first, or it would wait forever (readexactly(n > limit)).</summary>
    [Fact]
    public void FlowControl_WaitingWhilePaused_Resumes() => On(async () =>
    {
        var reader = new LoopStreamReader(2);
        var transport = new RecordingReadTransport();
        reader.SetTransport(transport);
        reader.FeedData(B("12345"));
        Assert.Equal(["pause"], transport.Calls);
        var read = reader.ReadExactlyAsync(10);
        await Settle();
        Assert.Equal(["pause", "resume"], transport.Calls);
        // Over twice the limit again: paused; the read then takes it all: resumed.
        reader.FeedData(B("67890"));
        Assert.Equal(B("1234567890"), await read);
        Assert.Equal(["pause", "resume", "pause", "resume"], transport.Calls);
    });

    [Fact]
    public void FlowControl_ReadLineOverTheLimit_ClearsAndResumes() => On(async () =>
    {
        var reader = new LoopStreamReader(2);
        var transport = new RecordingReadTransport();
        reader.SetTransport(transport);
        reader.FeedData(B("abcdefg"));
        AssertLineTooLong(await Throws<Exception>(() => reader.ReadLineAsync()));
        Assert.Equal(["pause", "resume"], transport.Calls);
    });

    /// <summary>What a read returned, or nothing if it was cancelled.</summary>
    private static async LoopTask<byte[]> BytesOrCancelled(Future read)
    {
        try
        {
            await read;
            return read.ResultObject() as byte[] ?? throw new InvalidOperationException("not a byte[] read");
        }
        catch (CancelledError)
        {
            return [];
        }
    }

    private static async LoopTask ReadAll(LoopStreamReader reader, List<string> lines)
    {
        await foreach (byte[] line in reader)
        {
            lines.Add(System.Text.Encoding.ASCII.GetString(line));
        }
    }
}

/// <summary>The reader's suite on the epoll loop.</summary>
public sealed class EpollStreamReaderTests() : StreamReaderTests(LoopKinds.Epoll);

/// <summary>The reader's suite on the poll loop.</summary>
public sealed class PollStreamReaderTests() : StreamReaderTests(LoopKinds.Poll);

/// <summary>The completion loop (<see cref="ProactorEventLoop"/>).</summary>
public sealed class ProactorStreamReaderTests() : StreamReaderTests(LoopKinds.Proactor);

/// <summary>The reader's suite on Tulip.Testing's in-memory loop: it needs no socket.</summary>
public sealed class MemoryStreamReaderTests() : StreamReaderTests(LoopKinds.Memory);
