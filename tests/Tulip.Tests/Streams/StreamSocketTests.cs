using System.Net.Sockets;
using Tulip;
using Tulip.Streams;
using Tulip.Tests.Selectors;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Streams;

/// <summary>
/// The streams parts that need real sockets: UNIX-socket streams, an echo's steady path allocating
/// nothing, and no fd left behind. Bound to the real loops only.
/// </summary>
[Collection(NativeFdCollection.Name)]
public abstract class StreamSocketTests : LoopSuite
{
    protected StreamSocketTests(LoopKind kind) : base(kind)
    {
    }

    private static string TempSocketPath() => Path.Combine(Path.GetTempPath(), $"tulip-streams-{Guid.NewGuid():N}.sock");

    [Fact]
    public void UnixServerAndConnection_Echo()
    {
        string path = TempSocketPath();
        Run(Kind, async loop =>
        {
            var server = await StreamConnections.StartUnixServerAsync(StreamConnectionTests.EchoAsync, path, limit: 4096);
            var (reader, writer) = await StreamConnections.OpenUnixConnectionAsync(path, limit: 4096);
            Assert.IsType<UnixDomainSocketEndPoint>(writer.GetExtraInfo("peername"));
            var data = Pattern(300_000);
            writer.Write(data);
            await writer.DrainAsync();
            writer.WriteEof();
            Assert.Equal(data, await reader.ReadAsync());
            await writer.DisposeAsync();
            server.Close();
            await server.WaitClosedAsync();
            Assert.False(File.Exists(path));
        });
    }

    /// <summary>Kernel back-pressure: the in-memory pair never refuses a write, so this needs sockets.</summary>
    [Fact]
    public void Drain_WaitsWhileThePeerDoesNotRead_AndFinishesWhenItReads()
    {
        Run(Kind, async loop =>
        {
            var startReading = loop.CreateFuture<bool>();
            var received = loop.CreateFuture<int>();
            await using var server = await StreamConnections.StartServerAsync(async (reader, writer) =>
            {
                await startReading;
                received.SetResult((await reader.ReadAsync()).Length);
                writer.Close();
            }, "127.0.0.1", 0, limit: 1024);
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
            const int size = 32 << 20; // past any kernel socket buffer
            writer.Write(new byte[size]);
            var drain = writer.DrainAsync().AsFuture();
            for (int i = 0; i < 20; i++)
            {
                await Tasks.Yield();
            }

            Assert.False(drain.Done, "drain must wait while the peer does not read");
            startReading.SetResult(true);
            await drain;
            writer.WriteEof();
            Assert.Equal(size, await received);
            await writer.DisposeAsync();
        });
    }

    /// <summary>asyncio's test_read_all_from_pipe_reader: the protocol works over a read pipe too, pausing it.</summary>
    [Fact]
    public void ReadPipe_ThroughAStreamReader_PausesAndReadsEverything()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var reader = new LoopStreamReader(limit: 1024);
            var (transport, _) = await loop.ConnectReadPipeAsync(() => new StreamReaderProtocol(reader), pipe.TakeRead());
            var data = Pattern(300_000);
            int writeFd = pipe.WriteFd;
            var writing = Task.Run(() =>
            {
                PipeTestNative.WriteAll(writeFd, data);
                pipe.CloseWrite();
            });
            Assert.True(await Eventually(() => !transport.IsReading), "over twice the limit the pipe is paused");
            var all = await reader.ReadAsync();
            await writing;
            Assert.Equal(data, all);
            Assert.True(reader.AtEof);
        });
    }

    [Fact]
    public void EchoSteadyPath_ReadIntoMemory_Write_Drain_AllocatesNothing()
    {
        // Client and server both on the loop thread: every byte the round trips allocate is counted.
        // Several windows, and the quietest must be 0 B: an allocation per message would show in
        // every window, while a one-off (in a loaded full run a window once saw 4,520 B: a buffer
        // that grows once, the runtime's own work on this thread) shows in one.
        const int warmup = 200;
        const int iterations = 1000;
        const int windows = 5;
        var allocated = new List<long>();
        Run(Kind, async loop =>
        {
            await using var server = await StreamConnections.StartServerAsync(StreamConnectionTests.EchoAsync, "127.0.0.1", 0);
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
            var message = Pattern(1024);
            var back = new byte[message.Length];
            for (int i = 0; i < warmup; i++)
            {
                writer.Write(message);
                await writer.DrainAsync();
                await reader.ReadExactlyAsync(back);
            }

            for (int w = 0; w < windows; w++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0; i < iterations; i++)
                {
                    writer.Write(message);
                    await writer.DrainAsync();
                    await reader.ReadExactlyAsync(back);
                }

                allocated.Add(GC.GetAllocatedBytesForCurrentThread() - before);
            }

            Assert.Equal(message, back);
            await writer.DisposeAsync();
        });
        Assert.True(allocated.Min() == 0,
            $"{iterations} echo round trips on {Backend} allocated [{string.Join(", ", allocated)}] B on the loop thread per window (expected 0 in at least one)");
    }

    [Fact]
    public void ConnectionsAndServers_LeaveNoFd()
    {
        var errors = new List<ExceptionContext>();
        Run(Kind, async loop =>
        {
            // Warm up what .NET opens lazily on a first connection.
            await using (var warm = await StreamConnections.StartServerAsync(StreamConnectionTests.EchoAsync, "127.0.0.1", 0))
            {
                var (r, w) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(warm));
                w.WriteEof();
                await r.ReadAsync();
                await w.DisposeAsync();
            }

            await Eventually(() => false, 5);
            var before = TakeFds();
            string path = TempSocketPath();
            var tcp = await StreamConnections.StartServerAsync(StreamConnectionTests.EchoAsync, "127.0.0.1", 0);
            var unix = await StreamConnections.StartUnixServerAsync(StreamConnectionTests.EchoAsync, path);
            for (int i = 0; i < 5; i++)
            {
                var (reader, writer) = i % 2 == 0
                    ? await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(tcp))
                    : await StreamConnections.OpenUnixConnectionAsync(path);
                writer.Write("x\n"u8);
                Assert.Equal("x\n"u8.ToArray(), await reader.ReadLineAsync());
                if (i == 4)
                {
                    writer.Transport.Abort();
                }
                else
                {
                    writer.WriteEof();
                    Assert.Empty(await reader.ReadAsync());
                }

                await writer.DisposeAsync();
            }

            tcp.Close();
            unix.Close();
            await tcp.WaitClosedAsync();
            await unix.WaitClosedAsync();
            Assert.True(await Eventually(before.NoneAdded), string.Join(", ", before.Added()));
        }, errors: errors);
        // The aborted connection may reach the server as a reset, which its echo does not catch.
        Assert.True(errors.Count <= 1 && errors.All(e => e.Exception is SocketException { SocketErrorCode: SocketError.ConnectionReset }),
            string.Join("\n", errors.Select(e => e.Message + ": " + e.Exception)));
    }
}

public sealed class EpollStreamSocketTests() : StreamSocketTests(LoopKinds.Epoll);

public sealed class PollStreamSocketTests() : StreamSocketTests(LoopKinds.Poll);

public sealed class ProactorStreamSocketTests() : StreamSocketTests(LoopKinds.Proactor);
