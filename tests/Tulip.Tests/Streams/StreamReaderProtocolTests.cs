namespace Tulip.Tests.Streams;

using Tulip.Streams;
using static Tulip.Tests.Streams.ReaderTestSupport;
using static Tulip.Tests.Transports.TestUtil;

/// <summary>
/// The reader side of <see cref="StreamReaderProtocol"/> (asyncio's StreamReaderProtocol as a
/// buffered protocol): what a transport hands it reaches the reader, EOF and the connection's loss
/// end the reads, and the reader's flow control reaches the transport. Driven by hand through the
/// protocol's calls, with a transport that only records, so no socket.
/// </summary>
public abstract class StreamReaderProtocolTests : LoopSuite
{
    protected StreamReaderProtocolTests(LoopKind kind) : base(kind)
    {
    }

    private void On(Func<LoopTask> body) => Run(Kind, _ => body());

    private static void Deliver(StreamReaderProtocol protocol, string ascii, int sizeHint = -1)
    {
        var data = B(ascii);
        int offset = 0;
        while (offset < data.Length)
        {
            var memory = protocol.GetBuffer(sizeHint);
            Assert.False(memory.IsEmpty);
            int n = Math.Min(memory.Length, data.Length - offset);
            data.AsSpan(offset, n).CopyTo(memory.Span);
            protocol.BufferUpdated(n);
            offset += n;
        }
    }

    [Fact]
    public void Construct_WithoutAReader_Fails() => On(async () =>
    {
        Assert.Throws<ArgumentNullException>(() => new StreamReaderProtocol(null!));
        await Tasks.Yield();
    });

    [Fact]
    public void BufferedData_ReachesTheReader_AndWakesAWaitingRead() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var protocol = new StreamReaderProtocol(reader);
        protocol.ConnectionMade(new RecordingReadTransport());
        var line = reader.ReadLineAsync();
        await Settle();
        Deliver(protocol, "hello ");
        await Settle();
        Assert.False(line.Done);
        Deliver(protocol, "world\nmore", sizeHint: 3);
        Assert.Equal(B("hello world\n"), await line);
        Assert.Equal(B("more"), await reader.ReadAsync(10));
    });

    [Fact]
    public void GetBuffer_IsNeverEmpty_WhateverTheHint() => On(async () =>
    {
        var reader = new LoopStreamReader(4);
        var protocol = new StreamReaderProtocol(reader);
        protocol.ConnectionMade(new RecordingReadTransport());
        foreach (int hint in new[] { -1, 0, 1, 4096, 1 << 20 })
        {
            Assert.False(protocol.GetBuffer(hint).IsEmpty);
        }

        // Nothing was written: BufferUpdated(0) delivers nothing.
        protocol.BufferUpdated(0);
        Assert.Empty(await reader.ReadAsync(0));
        Deliver(protocol, "x");
        Assert.Equal(B("x"), await reader.ReadAsync(10));
    });

    [Fact]
    public void BufferUpdated_WithMoreThanTheBufferHeld_Fails() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var protocol = new StreamReaderProtocol(reader);
        protocol.ConnectionMade(new RecordingReadTransport());
        var memory = protocol.GetBuffer(-1);
        Assert.Throws<ArgumentOutOfRangeException>(() => protocol.BufferUpdated(memory.Length + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => protocol.BufferUpdated(-1));
        await Tasks.Yield();
    });

    [Fact]
    public void EofReceived_FeedsEof_AndKeepsTheWriteSideOpen() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var protocol = new StreamReaderProtocol(reader);
        protocol.ConnectionMade(new RecordingReadTransport());
        var read = reader.ReadAsync();
        Deliver(protocol, "tail");
        await Settle();
        Assert.False(read.Done);
        Assert.True(protocol.EofReceived());
        Assert.Equal(B("tail"), await read);
        Assert.True(reader.AtEof);
    });

    [Fact]
    public void ConnectionLost_WithoutError_EndsTheStream() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var protocol = new StreamReaderProtocol(reader);
        protocol.ConnectionMade(new RecordingReadTransport());
        Deliver(protocol, "partial");
        var exactly = reader.ReadExactlyAsync(100);
        await Settle();
        protocol.ConnectionLost(null);
        var ex = await Throws<IncompleteReadError>(() => exactly);
        Assert.Equal(B("partial"), ex.Partial);
        Assert.Equal(100, ex.Expected);
        Assert.True(reader.AtEof);
        Assert.Null(reader.Exception);
    });

    [Fact]
    public void ConnectionLost_WithAnError_FailsTheWaitingRead_AndEveryLaterOne() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var protocol = new StreamReaderProtocol(reader);
        protocol.ConnectionMade(new RecordingReadTransport());
        var line = reader.ReadLineAsync();
        await Settle();
        var error = new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionReset);
        protocol.ConnectionLost(error);
        Assert.Same(error, await Throws<System.Net.Sockets.SocketException>(() => line));
        Assert.Same(error, reader.Exception);
        Assert.Same(error, await Throws<System.Net.Sockets.SocketException>(() => reader.ReadAsync(1)));
    });

    [Fact]
    public void GetBuffer_AfterTheConnectionWasLost_Fails() => On(async () =>
    {
        var reader = new LoopStreamReader();
        var protocol = new StreamReaderProtocol(reader);
        protocol.ConnectionMade(new RecordingReadTransport());
        protocol.ConnectionLost(null);
        Assert.Throws<InvalidOperationException>(() => protocol.GetBuffer(-1));
        await Tasks.Yield();
    });

    [Fact]
    public void FlowControl_ReachesTheTransport() => On(async () =>
    {
        var reader = new LoopStreamReader(4);
        var protocol = new StreamReaderProtocol(reader);
        var transport = new RecordingReadTransport();
        protocol.ConnectionMade(transport);
        Deliver(protocol, "12345678");
        Assert.Empty(transport.Calls);
        Deliver(protocol, "9");
        Assert.Equal(["pause"], transport.Calls);
        Assert.False(transport.IsReading);
        Assert.Equal(B("12345"), await reader.ReadAsync(5));
        Assert.Equal(["pause", "resume"], transport.Calls);
        Assert.True(transport.IsReading);
    });

    /// <summary>A transport that cannot pause (asyncio: pause_reading raises NotImplementedError) leaves the reader buffering.</summary>
    [Fact]
    public void FlowControl_ATransportThatCannotPause_IsLeftReading() => On(async () =>
    {
        var reader = new LoopStreamReader(2);
        var protocol = new StreamReaderProtocol(reader);
        var transport = new UnpausableReadTransport();
        protocol.ConnectionMade(transport);
        Deliver(protocol, "12345");
        Deliver(protocol, "67890");
        Assert.Equal(1, transport.PauseAttempts);
        Assert.Equal(B("1234567890"), await reader.ReadExactlyAsync(10));
        Assert.Equal(0, transport.Resumes);
    });

    private sealed class UnpausableReadTransport : IReadTransport
    {
        private IBaseProtocol? _protocol;

        public int PauseAttempts { get; private set; }

        public int Resumes { get; private set; }

        public bool IsReading => true;

        public bool IsClosing => false;

        public void PauseReading()
        {
            PauseAttempts++;
            throw new NotSupportedException("this transport cannot pause");
        }

        public void ResumeReading() => Resumes++;

        public object? GetExtraInfo(string name, object? defaultValue = null) => defaultValue;

        public void Close()
        {
        }

        public void SetProtocol(IBaseProtocol protocol) => _protocol = protocol;

        public IBaseProtocol GetProtocol() => _protocol ?? throw new InvalidOperationException("no protocol was set on this test transport");
    }
}

/// <summary>The protocol's reader side on the epoll loop.</summary>
public sealed class EpollStreamReaderProtocolTests() : StreamReaderProtocolTests(LoopKinds.Epoll);

/// <summary>The protocol's reader side on the poll loop.</summary>
public sealed class PollStreamReaderProtocolTests() : StreamReaderProtocolTests(LoopKinds.Poll);

/// <summary>The completion loop (<see cref="ProactorEventLoop"/>).</summary>
public sealed class ProactorStreamReaderProtocolTests() : StreamReaderProtocolTests(LoopKinds.Proactor);

/// <summary>The protocol's reader side on Tulip.Testing's in-memory loop: it needs no socket.</summary>
public sealed class MemoryStreamReaderProtocolTests() : StreamReaderProtocolTests(LoopKinds.Memory);
