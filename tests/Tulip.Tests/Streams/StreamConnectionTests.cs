using System.Net.Sockets;
using System.Text;
using Tulip;
using Tulip.Streams;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Streams;

/// <summary>
/// The streams over the loop's own connections (asyncio's <c>open_connection</c> / <c>start_server</c>):
/// echo, back-pressure both ways, half-close, the client callback's failure, wait_closed. Needs no
/// real socket, so the in-memory loop runs it too; <see cref="StreamSocketTests"/> adds what does.
/// </summary>
public abstract class StreamConnectionTests : LoopSuite
{
    protected StreamConnectionTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>Echoes with ReadAsync(Memory) / Write / DrainAsync until EOF, then closes (the benchmark's streams mode).</summary>
    internal static async LoopTask EchoAsync(LoopStreamReader reader, LoopStreamWriter writer)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            int n = await reader.ReadAsync(buffer);
            if (n == 0)
            {
                break;
            }

            writer.Write(buffer.AsSpan(0, n));
            await writer.DrainAsync();
        }

        writer.Close();
    }

    [Fact]
    public void OpenConnection_StartServer_Echo()
    {
        Run(Kind, async loop =>
        {
            await using var server = await StreamConnections.StartServerAsync(EchoAsync, "127.0.0.1", 0);
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
            writer.Write("hello\nworld\n"u8);
            await writer.DrainAsync();
            Assert.Equal("hello\n"u8.ToArray(), await reader.ReadLineAsync());
            Assert.Equal("world\n"u8.ToArray(), await reader.ReadLineAsync());

            var big = Pattern(1 << 20);
            writer.Write(big);
            await writer.DrainAsync();
            Assert.Equal(big, await reader.ReadExactlyAsync(big.Length));

            writer.WriteEof();
            Assert.Empty(await reader.ReadAsync());
            Assert.True(reader.AtEof);
            writer.Close();
            await writer.WaitClosedAsync();
            Assert.True(writer.IsClosing);
        });
    }

    [Fact]
    public void ManyClients_AreServedTogether()
    {
        Run(Kind, async loop =>
        {
            await using var server = await StreamConnections.StartServerAsync(EchoAsync, "127.0.0.1", 0);
            var clients = new List<LoopTask<string>>();
            for (int i = 0; i < 10; i++)
            {
                int id = i;
                clients.Add(loop.CreateTask(async () =>
                {
                    var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
                    await using var _ = writer;
                    var lines = new StringBuilder();
                    for (int k = 0; k < 20; k++)
                    {
                        writer.Write(Encoding.ASCII.GetBytes($"{id}:{k}\n"));
                        await writer.DrainAsync();
                        lines.Append(Encoding.ASCII.GetString(await reader.ReadLineAsync()));
                    }

                    return lines.ToString();
                }));
            }

            for (int i = 0; i < clients.Count; i++)
            {
                string expected = string.Concat(Enumerable.Range(0, 20).Select(k => $"{i}:{k}\n"));
                Assert.Equal(expected, await clients[i]);
            }
        });
    }

    [Fact]
    public void HalfClose_ServerReadsToEof_ThenReplies()
    {
        Run(Kind, async loop =>
        {
            await using var server = await StreamConnections.StartServerAsync(static async (reader, writer) =>
            {
                var all = await reader.ReadAsync();
                writer.Write(Encoding.ASCII.GetBytes($"got {all.Length}"));
                await writer.DrainAsync();
                writer.Close();
            }, "127.0.0.1", 0);
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
            writer.Write(new byte[100_000]);
            Assert.True(writer.CanWriteEof);
            writer.WriteEof();
            Assert.Equal("got 100000", Encoding.ASCII.GetString(await reader.ReadAsync()));
            Assert.True(reader.AtEof);
            await writer.DisposeAsync();
        });
    }

    [Fact]
    public void ReaderFlowControl_PausesTheServersTransport_AndResumesAsItReads()
    {
        Run(Kind, async loop =>
        {
            const int limit = 1024;
            var go = loop.CreateFuture<bool>();
            var result = loop.CreateFuture<(bool Paused, byte[] Data, bool ReadingAfter)>();
            await using var server = await StreamConnections.StartServerAsync(async (reader, writer) =>
            {
                bool paused = await Eventually(() => !writer.Transport.IsReading);
                await go;
                var data = await reader.ReadExactlyAsync(200_000);
                result.SetResult((paused, data, writer.Transport.IsReading));
                writer.Close();
            }, "127.0.0.1", 0, limit: limit);
            var (_, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
            var data = Pattern(200_000);
            writer.Write(data);
            go.SetResult(true);
            var (paused, got, readingAfter) = await result;
            Assert.True(paused, "over twice the limit buffered, the reader pauses its transport");
            Assert.Equal(data, got);
            Assert.True(readingAfter, "once read, the transport reads again");
            await writer.DisposeAsync();
        });
    }

    [Fact]
    public void ClientConnectedThrows_GoesToTheExceptionHandler_TheConnectionIsClosed_TheServerGoesOn()
    {
        var errors = new List<ExceptionContext>();
        Run(Kind, async loop =>
        {
            int calls = 0;
            await using var server = await StreamConnections.StartServerAsync(async (reader, writer) =>
            {
                if (++calls == 1)
                {
                    await reader.ReadLineAsync();
                    throw new InvalidOperationException("boom");
                }

                await EchoAsync(reader, writer);
            }, "127.0.0.1", 0);
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
            writer.Write("x\n"u8);
            Assert.Empty(await reader.ReadAsync()); // the server closed the connection
            await writer.DisposeAsync();

            var (reader2, writer2) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
            writer2.Write("still\n"u8);
            Assert.Equal("still\n"u8.ToArray(), await reader2.ReadLineAsync());
            await writer2.DisposeAsync();
        }, errors: errors);
        var context = Assert.Single(errors);
        Assert.Equal("Unhandled exception in client_connected_cb", context.Message);
        Assert.Equal("boom", Assert.IsType<InvalidOperationException>(context.Exception).Message);
        Assert.IsAssignableFrom<ITransport>(context.Transport);
    }

    [Fact]
    public void WaitClosed_CompletesOnceThePeerCloses_AndCancellingItLeavesTheConnection()
    {
        Run(Kind, async loop =>
        {
            await using var server = await StreamConnections.StartServerAsync(EchoAsync, "127.0.0.1", 0);
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
            using (var cts = new CancellationTokenSource())
            {
                var wait = writer.WaitClosedAsync(cts.Token);
                await Tasks.Yield();
                cts.Cancel();
                await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await wait);
            }

            writer.Write("still open\n"u8);
            Assert.Equal("still open\n"u8.ToArray(), await reader.ReadLineAsync());
            writer.WriteEof(); // the echo closes when it reads EOF
            Assert.Empty(await reader.ReadAsync());
            writer.Close();
            await writer.WaitClosedAsync();
        });
    }

    [Fact]
    public void CancelledPendingRead_OverAConnection_LeavesTheDataForTheNextRead()
    {
        Run(Kind, async loop =>
        {
            await using var server = await StreamConnections.StartServerAsync(EchoAsync, "127.0.0.1", 0);
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
            var pending = loop.CreateTask(async () => await reader.ReadLineAsync());
            await Tasks.Yield();
            pending.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await pending);
            writer.Write("after\n"u8);
            Assert.Equal("after\n"u8.ToArray(), await reader.ReadLineAsync());
            await writer.DisposeAsync();
        });
    }

    [Fact]
    public void ConnectionRefused_Throws()
    {
        Run(Kind, async loop =>
        {
            int port = FreePort();
            var ex = await Assert.ThrowsAsync<SocketException>(async () => await StreamConnections.OpenConnectionAsync("127.0.0.1", port));
            Assert.Equal(SocketError.ConnectionRefused, ex.SocketErrorCode);
        });
    }
}

public sealed class EpollStreamConnectionTests() : StreamConnectionTests(LoopKinds.Epoll);

public sealed class PollStreamConnectionTests() : StreamConnectionTests(LoopKinds.Poll);

/// <summary>The completion loop (<see cref="ProactorEventLoop"/>).</summary>
public sealed class ProactorStreamConnectionTests() : StreamConnectionTests(LoopKinds.Proactor);

public sealed class MemoryStreamConnectionTests() : StreamConnectionTests(LoopKinds.Memory);
