using System.Net.Sockets;
using Tulip;
using Tulip.Streams;
using Tulip.Testing;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Streams;

/// <summary>
/// StreamReaderProtocol and LoopStreamWriter over a <see cref="MemoryTransport"/> (no socket, exact
/// control of what arrives and when the peer reads): the buffered-protocol path into the reader,
/// the reader's flow control, EOF, connection loss, drain waiters, the close future, and the
/// reader's waiter under cancellation. Runs on every loop kind, the in-memory one included.
/// </summary>
public abstract class StreamProtocolTests : LoopSuite
{
    protected StreamProtocolTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>A reader, its protocol, a transport with ConnectionMade run, and a writer.</summary>
    private static async LoopTask<(LoopStreamReader Reader, StreamReaderProtocol Protocol, MemoryTransport Transport, LoopStreamWriter Writer)> Connect(
        BaseEventLoop loop, int limit = LoopStreamReader.DefaultLimit)
    {
        var reader = new LoopStreamReader(limit);
        var protocol = new StreamReaderProtocol(reader);
        var transport = new MemoryTransport(loop, protocol);
        await Tasks.Yield(); // ConnectionMade
        return (reader, protocol, transport, new LoopStreamWriter(transport, protocol, reader));
    }

    [Fact]
    public void DataArrivesThroughGetBuffer_AndIsReadInOrder()
    {
        Run(Kind, async loop =>
        {
            var (reader, _, transport, _) = await Connect(loop);
            var data = Pattern(200_000);
            transport.DeliverData(data.AsSpan(0, 70_000));
            transport.DeliverData(data.AsSpan(70_000));
            var got = await reader.ReadExactlyAsync(data.Length);
            Assert.Equal(data, got);
        });
    }

    [Fact]
    public void GetBuffer_StartsAt4KiB_AndDoublesTo64KiBWhileReadsFillIt()
    {
        Run(Kind, async loop =>
        {
            var reader = new LoopStreamReader();
            var protocol = new StreamReaderProtocol(reader);
            var partial = protocol.GetBuffer(-1);
            Assert.Equal(4096, partial.Length);
            "abc"u8.CopyTo(partial.Span);
            protocol.BufferUpdated(3);
            var three = new byte[3];
            Assert.Equal(3, await reader.ReadAsync(three));
            Assert.Equal("abc"u8.ToArray(), three);
            var sizes = new List<int>();
            for (int i = 0; i < 6; i++)
            {
                var memory = protocol.GetBuffer(-1);
                sizes.Add(memory.Length);
                var chunk = Pattern(memory.Length);
                chunk.CopyTo(memory);
                protocol.BufferUpdated(memory.Length);
                Assert.Equal(chunk, await reader.ReadExactlyAsync(chunk.Length));
            }

            Assert.Equal([4096, 8192, 16384, 32768, 65536, 65536], sizes);
        });
    }

    [Fact]
    public void ReaderFlowControl_PausesOverTwiceTheLimit_ResumesAtTheLimit()
    {
        Run(Kind, async loop =>
        {
            const int limit = 1000;
            var (reader, _, transport, _) = await Connect(loop, limit);
            transport.DeliverData(new byte[2 * limit]);
            await Tasks.Yield();
            Assert.True(transport.IsReading, "exactly twice the limit must not pause");
            transport.DeliverData(new byte[1]);
            await Tasks.Yield();
            Assert.False(transport.IsReading, "over twice the limit must pause reading");

            var buffer = new byte[limit];
            Assert.Equal(limit, await reader.ReadAsync(buffer)); // 1001 left
            Assert.False(transport.IsReading, "still over the limit");
            Assert.Equal(1, await reader.ReadAsync(buffer.AsMemory(0, 1))); // 1000 left: at the limit
            Assert.True(transport.IsReading, "at the limit reading resumes");
        });
    }

    [Fact]
    public void WaitingWhilePaused_ResumesReading_SoReadExactlyOverTheLimitFinishes()
    {
        Run(Kind, async loop =>
        {
            const int limit = 100;
            var (reader, _, transport, _) = await Connect(loop, limit);
            var data = Pattern(1000);
            transport.DeliverData(data.AsSpan(0, 500));
            await Tasks.Yield();
            Assert.False(transport.IsReading);
            var read = reader.ReadExactlyAsync(1000);
            Assert.True(transport.IsReading, "a read that must wait resumes the transport");
            transport.DeliverData(data.AsSpan(500));
            Assert.Equal(data, await read);
        });
    }

    [Fact]
    public void ReadExactlyIntoMemory_OverTwiceTheLimit_DoesNotDeadlock()
    {
        Run(Kind, async loop =>
        {
            const int limit = 100;
            var (reader, _, transport, _) = await Connect(loop, limit);
            var data = Pattern(5000);
            var buffer = new byte[5000];
            var read = reader.ReadExactlyAsync(buffer);
            for (int i = 0; i < 50; i++)
            {
                transport.DeliverData(data.AsSpan(i * 100, 100));
            }

            Assert.Equal(5000, await read);
            Assert.Equal(data, buffer);
        });
    }

    [Fact]
    public void EofReceived_FeedsEof_AndKeepsTheWriteSideOpen()
    {
        Run(Kind, async loop =>
        {
            var (reader, _, transport, writer) = await Connect(loop);
            transport.DeliverData("last");
            transport.DeliverEof();
            Assert.Equal("last"u8.ToArray(), await reader.ReadAsync());
            Assert.True(reader.AtEof);
            Assert.False(transport.IsClosing, "after EOF a stream protocol keeps the write side open");
            writer.Write("reply"u8);
            Assert.Equal("reply", transport.TakeWrittenText());
        });
    }

    [Fact]
    public void EofReceived_OverTls_ClosesTheTransport()
    {
        Run(Kind, async loop =>
        {
            var reader = new LoopStreamReader();
            var protocol = new StreamReaderProtocol(reader);
            var transport = new MemoryTransport(loop, protocol, new Dictionary<string, object?> { ["sslcontext"] = new object() });
            await Tasks.Yield();
            Assert.False(protocol.EofReceived(), "over TLS the protocol returns false, as asyncio's does");
            Assert.True(reader.AtEof);
        });
    }

    [Fact]
    public void ConnectionLostWithError_ReaderThrowsIt_WaitClosedThrowsIt_DrainThrowsIt()
    {
        Run(Kind, async loop =>
        {
            var (reader, _, transport, writer) = await Connect(loop);
            var reset = new SocketException((int)SocketError.ConnectionReset);
            var pending = reader.ReadAsync(new byte[10]);
            transport.DeliverConnectionLost(reset);
            Assert.Same(reset, await Assert.ThrowsAsync<SocketException>(async () => await pending));
            Assert.Same(reset, reader.Exception);
            Assert.Same(reset, await Assert.ThrowsAsync<SocketException>(async () => await writer.WaitClosedAsync()));
            Assert.Same(reset, await Assert.ThrowsAsync<SocketException>(async () => await writer.DrainAsync()));
        });
    }

    [Fact]
    public void ConnectionLostNormally_ReaderAtEof_WaitClosedCompletes_DrainThrowsConnectionLost()
    {
        Run(Kind, async loop =>
        {
            var (reader, _, transport, writer) = await Connect(loop);
            transport.DeliverData("tail");
            await Tasks.Yield();
            transport.DeliverConnectionLost();
            await writer.WaitClosedAsync();
            Assert.Equal("tail"u8.ToArray(), await reader.ReadAsync());
            Assert.True(reader.AtEof);
            var ex = await Assert.ThrowsAsync<SocketException>(async () => await writer.DrainAsync());
            Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
            Assert.Contains("Connection lost", ex.Message, StringComparison.Ordinal);
        });
    }

    [Fact]
    public void Drain_IsSynchronousWhenNotPaused_WaitsWhilePaused_WakesInOrder()
    {
        Run(Kind, async loop =>
        {
            var (_, _, transport, writer) = await Connect(loop);
            Assert.True(writer.DrainAsync().IsCompletedSuccessfully);

            transport.PeerAcceptsWrites = false;
            writer.Write(new byte[MemoryTransport.DefaultHighWaterMark + 1]);
            Assert.True(transport.IsWritingPaused);
            var order = new List<int>();
            var first = loop.CreateTask(async () => { await writer.DrainAsync(); order.Add(1); });
            var second = loop.CreateTask(async () => { await writer.DrainAsync(); order.Add(2); });
            await Tasks.Yield();
            Assert.False(first.Done);
            Assert.False(second.Done);
            transport.FlushWrites();
            await first;
            await second;
            Assert.Equal([1, 2], order);
            Assert.True(writer.DrainAsync().IsCompletedSuccessfully);
        });
    }

    [Fact]
    public void Drain_CancelledWhilePaused_OthersStillWake()
    {
        Run(Kind, async loop =>
        {
            var (_, _, transport, writer) = await Connect(loop);
            transport.PeerAcceptsWrites = false;
            writer.Write(new byte[MemoryTransport.DefaultHighWaterMark + 1]);
            using var cts = new CancellationTokenSource();
            var cancelled = loop.CreateTask(async () => await writer.DrainAsync(cts.Token));
            var other = loop.CreateTask(async () => await writer.DrainAsync());
            await Tasks.Yield();
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await cancelled);
            Assert.False(other.Done);
            transport.FlushWrites();
            await other;
        });
    }

    [Fact]
    public void Drain_PausedThenConnectionLost_FailsTheWaiterWithTheError()
    {
        Run(Kind, async loop =>
        {
            var (_, _, transport, writer) = await Connect(loop);
            transport.PeerAcceptsWrites = false;
            writer.Write(new byte[MemoryTransport.DefaultHighWaterMark + 1]);
            var drain = loop.CreateTask(async () => await writer.DrainAsync());
            await Tasks.Yield();
            var reset = new SocketException((int)SocketError.ConnectionReset);
            transport.DeliverConnectionLost(reset);
            Assert.Same(reset, await Assert.ThrowsAsync<SocketException>(async () => await drain));
        });
    }

    [Fact]
    public void Drain_ReaderHasAnException_ThrowsIt()
    {
        Run(Kind, async loop =>
        {
            var (reader, _, _, writer) = await Connect(loop);
            var error = new InvalidDataException("bad");
            reader.SetException(error);
            Assert.Same(error, await Assert.ThrowsAsync<InvalidDataException>(async () => await writer.DrainAsync()));
        });
    }

    [Fact]
    public void Drain_TransportClosing_YieldsSoTheLossIsSeen()
    {
        Run(Kind, async loop =>
        {
            var (_, _, _, writer) = await Connect(loop);
            writer.Close();
            Assert.True(writer.IsClosing);
            var drain = writer.DrainAsync();
            Assert.False(drain.IsCompleted, "a drain on a closing transport yields to the loop first");
            await Assert.ThrowsAsync<SocketException>(async () => await drain);
        });
    }

    [Fact]
    public void PendingMemoryRead_CancelledByItsTask_LeavesTheBytesForTheNextRead()
    {
        Run(Kind, async loop =>
        {
            var (reader, _, transport, _) = await Connect(loop);
            var first = new byte[16];
            var task = loop.CreateTask(async () => await reader.ReadAsync(first));
            await Tasks.Yield();
            task.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await task);
            transport.DeliverData("hello");
            var next = new byte[16];
            int n = await reader.ReadAsync(next);
            Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(next, 0, n));
            Assert.All(first, b => Assert.Equal(0, b));
        });
    }

    [Fact]
    public void PendingMemoryRead_CancelledByToken_LeavesTheBytesForTheNextRead()
    {
        Run(Kind, async loop =>
        {
            var (reader, _, transport, _) = await Connect(loop);
            using var cts = new CancellationTokenSource();
            var first = new byte[16];
            var pending = reader.ReadExactlyAsync(first, cts.Token);
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await pending);
            transport.DeliverData("0123456789abcdef");
            var next = new byte[16];
            Assert.Equal(16, await reader.ReadExactlyAsync(next));
            Assert.Equal("0123456789abcdef"u8.ToArray(), next);
        });
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MemoryRead_DataAndCancellationInTheSameStep_LosesNothing(bool exactly)
    {
        // Whichever wins, the bytes are either in the read's result or still in the reader.
        Run(Kind, async loop =>
        {
            var reader = new LoopStreamReader();
            var target = new byte[8];
            var task = loop.CreateTask(async () => exactly ? await reader.ReadExactlyAsync(target) : await reader.ReadAsync(target));
            await Tasks.Yield();
            reader.FeedData("abcdefgh"u8);
            task.Cancel();
            int got = 0;
            try
            {
                got = await task;
            }
            catch (CancelledError)
            {
            }

            reader.FeedEof();
            var rest = await reader.ReadAsync();
            Assert.Equal("abcdefgh", System.Text.Encoding.ASCII.GetString(target, 0, got) + System.Text.Encoding.ASCII.GetString(rest));
        });
    }

    [Fact]
    public void SecondWaitingRead_IsRefused()
    {
        Run(Kind, async loop =>
        {
            var (reader, _, transport, _) = await Connect(loop);
            var first = reader.ReadAsync(new byte[4]);
            var ex = Assert.Throws<InvalidOperationException>(() => reader.ReadAsync(new byte[4]));
            Assert.Contains("already waiting for incoming data", ex.Message, StringComparison.Ordinal);
            var line = reader.ReadLineAsync();
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await line);
            transport.DeliverData("abcd");
            Assert.Equal(4, await first);
        });
    }

    [Fact]
    public void LinesEnumerate_UntilEof()
    {
        Run(Kind, async loop =>
        {
            var (reader, _, transport, _) = await Connect(loop);
            transport.DeliverData("one\ntwo\nthr");
            var lines = new List<string>();
            var enumerate = loop.CreateTask(async () =>
            {
                await foreach (var line in reader)
                {
                    lines.Add(System.Text.Encoding.ASCII.GetString(line));
                }
            });
            await Tasks.Yield();
            transport.DeliverData("ee\n");
            transport.DeliverData("tail");
            transport.DeliverEof();
            await enumerate;
            Assert.Equal(["one\n", "two\n", "three\n", "tail"], lines);
        });
    }

    [Fact]
    public void LineEnumeration_Cancelled_DeliversCancelledErrorAtTheAwait_AndKeepsThePartialLine()
    {
        Run(Kind, async loop =>
        {
            var (reader, _, transport, _) = await Connect(loop);
            transport.DeliverData("par");
            var enumerate = loop.CreateTask(async () =>
            {
                await foreach (var line in reader)
                {
                }
            });
            await Tasks.Yield();
            await Tasks.Yield();
            enumerate.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await enumerate);
            transport.DeliverData("tial\n");
            Assert.Equal("partial\n"u8.ToArray(), await reader.ReadLineAsync());
        });
    }

    [Fact]
    public void ClientConnectedCallback_GetsTheReaderAndAWriter()
    {
        Run(Kind, async loop =>
        {
            var reader = new LoopStreamReader();
            LoopStreamWriter? got = null;
            var protocol = new StreamReaderProtocol(reader, async (r, w) =>
            {
                Assert.Same(reader, r);
                got = w;
                var line = await r.ReadLineAsync();
                w.Write(line);
                await w.DrainAsync();
                w.Close();
            });
            var transport = new MemoryTransport(loop, protocol);
            transport.DeliverData("ping\n");
            Assert.True(await Eventually(() => transport.IsClosed));
            Assert.Same(transport, got!.Transport);
            Assert.Equal("ping\n", transport.WrittenText);
        });
    }

    [Fact]
    public void ClientConnectedCallback_Throws_GoesToTheExceptionHandler_AndClosesTheTransport()
    {
        var errors = new List<ExceptionContext>();
        var boom = new InvalidOperationException("boom");
        Run(Kind, async loop =>
        {
            var protocol = new StreamReaderProtocol(new LoopStreamReader(), async (r, w) =>
            {
                await Tasks.Yield();
                throw boom;
            });
            var transport = new MemoryTransport(loop, protocol);
            Assert.True(await Eventually(() => transport.IsClosing));
            Assert.True(await Eventually(() => errors.Count > 0));
            Assert.Same(transport, errors[0].Transport);
        }, errors: errors);
        var context = Assert.Single(errors);
        Assert.Equal("Unhandled exception in client_connected_cb", context.Message);
        Assert.Same(boom, context.Exception);
    }

    [Fact]
    public void ClientConnectedCallback_Cancelled_ClosesTheTransport_WithoutReporting()
    {
        Run(Kind, async loop =>
        {
            LoopTask? handler = null;
            var protocol = new StreamReaderProtocol(new LoopStreamReader(), (r, w) => handler = HandlerAsync(r));
            var transport = new MemoryTransport(loop, protocol);
            Assert.True(await Eventually(() => handler is not null));
            handler!.Cancel();
            Assert.True(await Eventually(() => transport.IsClosing));

            static async LoopTask HandlerAsync(LoopStreamReader reader) => await reader.ReadAsync();
        });
    }

    [Fact]
    public void Writer_WritesLinesAndEof_AndForwardsExtraInfo()
    {
        Run(Kind, async loop =>
        {
            var reader = new LoopStreamReader();
            var protocol = new StreamReaderProtocol(reader);
            var transport = new MemoryTransport(loop, protocol, new Dictionary<string, object?> { ["peername"] = "peer" });
            await Tasks.Yield();
            var writer = new LoopStreamWriter(transport, protocol, reader);
            writer.WriteLines([new byte[] { (byte)'a' }, new byte[] { (byte)'b', (byte)'c' }]);
            Assert.True(writer.CanWriteEof);
            writer.WriteEof();
            Assert.Equal("abc", transport.WrittenText);
            Assert.True(transport.EofWritten);
            Assert.Equal("peer", writer.GetExtraInfo("peername"));
            Assert.Equal(7, writer.GetExtraInfo("nothing", 7));
            await writer.DisposeAsync();
            Assert.True(transport.IsClosed);
        });
    }

    [Fact]
    public void BadArguments_Throw()
    {
        Run(Kind, async loop =>
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => new LoopStreamReader(0));
            Assert.Throws<ArgumentOutOfRangeException>(() => new LoopStreamReader(-1));
            Assert.Throws<ArgumentNullException>(() => new StreamReaderProtocol(null!));
            var reader = new LoopStreamReader();
            var protocol = new StreamReaderProtocol(reader);
            Assert.Throws<ArgumentNullException>(() => new LoopStreamWriter(null!, protocol, reader));
            Assert.Throws<ArgumentOutOfRangeException>(() => StreamConnections.OpenConnectionAsync("127.0.0.1", 1, limit: 0));
            Assert.Throws<ArgumentOutOfRangeException>(() => StreamConnections.OpenUnixConnectionAsync("/nonexistent", limit: -5));
            Assert.Throws<ArgumentNullException>(() => StreamConnections.StartServerAsync(null!, "127.0.0.1", 0));
            Assert.Throws<ArgumentNullException>(() => StreamConnections.StartUnixServerAsync(null!, "/nonexistent"));
            Assert.Throws<ArgumentOutOfRangeException>(() => StreamConnections.StartServerAsync((r, w) => NoOp(), "127.0.0.1", 0, limit: 0));
            await Tasks.Yield();

            static async LoopTask NoOp() => await Tasks.Yield();
        });
    }

    [Fact]
    public void Reader_WithoutARunningLoop_Throws()
    {
        Assert.Throws<InvalidOperationException>(() => new LoopStreamReader());
    }

    [Fact]
    public void Reader_UsedFromAnotherThread_Throws()
    {
        Run(Kind, async loop =>
        {
            var reader = new LoopStreamReader();
            var ex = await Task.Run(() => Record.Exception(() => reader.FeedData("x"u8)));
            Assert.IsType<InvalidOperationException>(ex);
            Assert.Contains("loop's thread", ex!.Message, StringComparison.Ordinal);
        });
    }
}

public sealed class EpollStreamProtocolTests() : StreamProtocolTests(LoopKinds.Epoll);

public sealed class PollStreamProtocolTests() : StreamProtocolTests(LoopKinds.Poll);

/// <summary>The completion loop (<see cref="ProactorEventLoop"/>).</summary>
public sealed class ProactorStreamProtocolTests() : StreamProtocolTests(LoopKinds.Proactor);

public sealed class MemoryStreamProtocolTests() : StreamProtocolTests(LoopKinds.Memory);
