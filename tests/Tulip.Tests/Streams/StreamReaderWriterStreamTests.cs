using System.Text;
using Tulip.Streams;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Streams;

/// <summary>
/// <see cref="StreamReaderWriterStream"/>: .NET's Stream-based code (System.IO.StreamReader and
/// LoopStreamWriter, CopyToAsync) over a Tulip reader/writer pair, on the loop thread and from the thread
/// pool. This file uses System.IO's LoopStreamReader and Tulip's side by side, qualified (implicit usings
/// bring System.IO in): it compiles, which is the point of Tulip.Streams being a namespace of its own.
/// </summary>
public abstract class StreamReaderWriterStreamTests : LoopSuite
{
    protected StreamReaderWriterStreamTests(LoopKind kind) : base(kind)
    {
    }

    private static async LoopTask<Server> EchoServer() =>
        await StreamConnections.StartServerAsync(static async (reader, writer) =>
        {
            var buffer = new byte[16 * 1024];
            int n;
            while ((n = await reader.ReadAsync(buffer.AsMemory())) > 0)
            {
                writer.Write(buffer.AsSpan(0, n));
                await writer.DrainAsync();
            }

            writer.Close();
        }, "127.0.0.1", 0);

    private static async LoopTask<Server> SendingServer(byte[] payload) =>
        await StreamConnections.StartServerAsync(async (_, writer) =>
        {
            writer.Write(payload);
            await writer.DrainAsync();
            writer.Close();
        }, "127.0.0.1", 0);

    private static async LoopTask<StreamReaderWriterStream> Connect(Server server)
    {
        var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
        return new StreamReaderWriterStream(reader, writer);
    }

    [Fact]
    public void SystemIOStreamReader_ReadsLines_OnTheLoopThread()
    {
        Run(Kind, async loop =>
        {
            await using var server = await SendingServer("first line\r\nsecond\nno newline at the end"u8.ToArray());
            await using var stream = await Connect(server);
            using var text = new StreamReader(stream, Encoding.UTF8, leaveOpen: true);
            Assert.Equal("first line", await text.ReadLineAsync());
            Assert.Equal("second", await text.ReadLineAsync());
            Assert.Equal("no newline at the end", await text.ReadLineAsync());
            Assert.Null(await text.ReadLineAsync());
            Tulip.Streams.LoopStreamReader tulipReader = stream.Reader;
            Assert.True(tulipReader.AtEof);
        });
    }

    [Fact]
    public void CopyToAsync_BothWays_ThroughAnEcho()
    {
        Run(Kind, async loop =>
        {
            await using var server = await EchoServer();
            await using var stream = await Connect(server);
            var data = Pattern(1 << 20);
            await new MemoryStream(data).CopyToAsync(stream); // WriteAsync: write + drain, piece by piece
            stream.Writer.WriteEof();
            var back = new MemoryStream();
            await stream.CopyToAsync(back);                    // ReadAsync until 0 (EOF)
            Assert.True(data.AsSpan().SequenceEqual(back.ToArray()));
        });
    }

    [Fact]
    public void FromTheThreadPool_TextReaderAndWriter_AndSyncCalls()
    {
        Run(Kind, async loop =>
        {
            await using var server = await EchoServer();
            var stream = await Connect(server);
            int loopThread = Environment.CurrentManagedThreadId;
            var (lines, sync, threads) = await Task.Run(async () =>
            {
                var seen = new HashSet<int> { Environment.CurrentManagedThreadId };
                var writer = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true) { NewLine = "\n" };
                for (int i = 0; i < 100; i++)
                {
                    await writer.WriteLineAsync($"line {i}");
                }

                await writer.FlushAsync();
                await writer.DisposeAsync();
                using var reader = new StreamReader(stream, Encoding.UTF8, leaveOpen: true);
                var got = new List<string>();
                for (int i = 0; i < 100; i++)
                {
                    got.Add((await reader.ReadLineAsync())!);
                    seen.Add(Environment.CurrentManagedThreadId);
                }

                // Synchronous calls block this (pool) thread on the loop's work.
                stream.Write("sync"u8);
                stream.Flush();
                var buffer = new byte[4];
                int filled = 0;
                while (filled < 4)
                {
                    filled += stream.Read(buffer.AsSpan(filled));
                }

                await stream.DisposeAsync();
                return (got, Encoding.ASCII.GetString(buffer), seen);
            });
            Assert.Equal(Enumerable.Range(0, 100).Select(i => $"line {i}"), lines);
            Assert.Equal("sync", sync);
            Assert.DoesNotContain(loopThread, threads);
            Assert.False(stream.CanRead);
            Assert.True(stream.Writer.IsClosing);
        });
    }

    private sealed record Order(string Item, int Quantity, List<string> Notes);

    [Fact]
    public void JsonSerializer_RoundTripsThroughAnEcho_FromTheThreadPool()
    {
        Run(Kind, async loop =>
        {
            await using var server = await EchoServer();
            await using var stream = await Connect(server);
            var order = new Order("tulip bulbs", 144, [.. Enumerable.Range(0, 10_000).Select(i => $"note {i}")]); // about 110 KB: past the high-water mark
            await Task.Run(async () => await System.Text.Json.JsonSerializer.SerializeAsync(stream, order));
            stream.Writer.WriteEof(); // the loop thread's: the document ends where the echo's input does
            var back = await Task.Run(async () => await System.Text.Json.JsonSerializer.DeserializeAsync<Order>(stream));
            Assert.NotNull(back);
            Assert.Equal(order.Item, back.Item);
            Assert.Equal(order.Quantity, back.Quantity);
            Assert.Equal(order.Notes, back.Notes);
        });
    }

    [Fact]
    public void SynchronousCallsOnTheLoopThread_SayToUseTheAsyncOnes()
    {
        Run(Kind, async loop =>
        {
            await using var server = await EchoServer();
            await using var stream = await Connect(server);
            var read = Assert.Throws<NotSupportedException>(() => stream.Read(new byte[1]));
            Assert.Contains("ReadAsync", read.Message);
            var write = Assert.Throws<NotSupportedException>(() => stream.Write(new byte[1]));
            Assert.Contains("WriteAsync", write.Message);
            Assert.Throws<NotSupportedException>(stream.Flush);
            Assert.False(stream.CanSeek);
            Assert.Throws<NotSupportedException>(() => stream.Length);
            Assert.Throws<NotSupportedException>(() => stream.Seek(0, SeekOrigin.Begin));
        });
    }

    [Fact]
    public void DisposeAsync_ClosesTheConnection_ThePeerSeesEof()
    {
        Run(Kind, async loop =>
        {
            var peerSawEof = loop.CreateFuture<bool>();
            await using var server = await StreamConnections.StartServerAsync(async (reader, writer) =>
            {
                peerSawEof.SetResult((await reader.ReadAsync()).Length == 0);
                writer.Close();
            }, "127.0.0.1", 0);
            var stream = await Connect(server);
            await stream.DisposeAsync();
            Assert.True(stream.Writer.IsClosing);
            Assert.True(await peerSawEof);
            await Assert.ThrowsAsync<ObjectDisposedException>(async () => _ = await stream.ReadAsync(new byte[1]));
            await stream.DisposeAsync(); // idempotent
        });
    }

    [Fact]
    public void MadeOffTheLoop_Throws()
    {
        Run(Kind, async loop =>
        {
            await using var server = await EchoServer();
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
            await using var _ = writer;
            var ex = await Task.Run(() => Assert.Throws<InvalidOperationException>(() => new StreamReaderWriterStream(reader, writer)));
            Assert.Contains("loop thread", ex.Message);
        });
    }
}

public sealed class EpollStreamReaderWriterStreamTests() : StreamReaderWriterStreamTests(LoopKinds.Epoll);

public sealed class PollStreamReaderWriterStreamTests() : StreamReaderWriterStreamTests(LoopKinds.Poll);

/// <summary>The completion loop (<see cref="ProactorEventLoop"/>).</summary>
public sealed class ProactorStreamReaderWriterStreamTests() : StreamReaderWriterStreamTests(LoopKinds.Proactor);

public sealed class MemoryStreamReaderWriterStreamTests() : StreamReaderWriterStreamTests(LoopKinds.Memory);
