using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;
using Tulip.Streams;
using static Tulip.Tests.Streams.DuplexPipeTestSupport;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Streams;

/// <summary>
/// <see cref="DuplexPipeProtocol"/> over a loop's connections, client and server both pipes: a
/// Pipelines line parser, half-close, abort, and the pipe used from the thread pool. Needs no real
/// socket, so the in-memory loop runs it too.
/// </summary>
public abstract class DuplexPipeTests : LoopSuite
{
    protected DuplexPipeTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public void LineParser_EchoesLines_SplitAcrossFlushes()
    {
        Run(Kind, async loop =>
        {
            var (server, serving) = await StartServer(loop, UpperCaseLines);
            await using var _ = server;
            var (_, client) = await loop.CreateConnectionAsync(() => new DuplexPipeProtocol(), "127.0.0.1", PortOf(server));
            // Pieces that cut lines anywhere, each flushed alone.
            foreach (var piece in new[] { "hel", "lo\nwor", "ld\n\nlast", " one" })
            {
                await WriteTextAsync(client.Output, piece);
            }

            await client.Output.CompleteAsync();
            var lines = new List<string>();
            string tail = await ReadLinesAsync(client.Input, line =>
            {
                lines.Add(line);
                return ValueTask.CompletedTask;
            });
            Assert.Equal(["HELLO", "WORLD", ""], lines);
            Assert.Equal("LAST ONE", tail);
            await Assert.Single(serving);
            await client.Closed;
            Assert.True(client.Transport.IsClosing);
        });
    }

    [Fact]
    public void HalfClose_ClientEndsOutput_ServerStillReplies()
    {
        Run(Kind, async loop =>
        {
            var (server, serving) = await StartServer(loop, static async p =>
            {
                byte[] request = await ReadToEndAsync(p.Input); // ends at the client's EOF
                await WriteTextAsync(p.Output, $"got {request.Length} bytes");
                await p.Output.CompleteAsync();
            });
            await using var _ = server;
            var (transport, client) = await loop.CreateConnectionAsync(() => new DuplexPipeProtocol(), "127.0.0.1", PortOf(server));
            await WriteTextAsync(client.Output, "ping!");
            await client.Output.CompleteAsync();
            byte[] reply = await ReadToEndAsync(client.Input);
            Assert.Equal("got 5 bytes", Encoding.UTF8.GetString(reply));
            await Assert.Single(serving);
            await client.Closed;
            Assert.True(transport.IsClosing);
        });
    }

    [Fact]
    public void PeerAborts_InputThrowsTheReset()
    {
        Run(Kind, async loop =>
        {
            var (server, _) = await StartServer(loop, static async p =>
            {
                await Tasks.Sleep(0);
                p.Transport.Abort();
            });
            await using var _ = server;
            var (_, client) = await loop.CreateConnectionAsync(() => new DuplexPipeProtocol(), "127.0.0.1", PortOf(server));
            var ex = await Assert.ThrowsAsync<SocketException>(async () => await ReadToEndAsync(client.Input));
            Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
            await client.Closed;
            // The writer learns it too: a flush throws the same error.
            var flushError = await Assert.ThrowsAsync<SocketException>(async () => await client.Output.WriteAsync(new byte[1]));
            Assert.Equal(SocketError.ConnectionReset, flushError.SocketErrorCode);
        });
    }

    [Fact]
    public void OutputCompletedWithAnException_AbortsTheConnection()
    {
        Run(Kind, async loop =>
        {
            var serverInput = loop.CreateFuture<Exception?>();
            var (server, _) = await StartServer(loop, async p =>
            {
                try
                {
                    await ReadToEndAsync(p.Input);
                    serverInput.SetResult(null);
                }
                catch (Exception ex)
                {
                    serverInput.SetResult(ex);
                }
            });
            await using var _ = server;
            var (transport, client) = await loop.CreateConnectionAsync(() => new DuplexPipeProtocol(), "127.0.0.1", PortOf(server));
            await WriteTextAsync(client.Output, "partial request");
            await client.Output.CompleteAsync(new InvalidOperationException("the parser gave up"));
            await client.Closed;
            Assert.True(transport.IsClosing);
            var seen = await serverInput;
            Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(seen).SocketErrorCode);
            // Our own side was aborted, not broken: its input ends cleanly.
            Assert.Empty(await ReadToEndAsync(client.Input));
        });
    }

    [Fact]
    public void UsedFromTheThreadPool_TransportIsOnlyCalledOnTheLoopThread()
    {
        Run(Kind, async loop =>
        {
            var (server, serving) = await StartServer(loop, UpperCaseLines);
            await using var _ = server;
            var (_, checking) = await loop.CreateConnectionAsync(() => new ThreadCheckingProtocol(new DuplexPipeProtocol(inputPauseThreshold: 4096, outputPauseThreshold: 4096)),
                "127.0.0.1", PortOf(server));
            var client = checking.Inner;
            int loopThread = Environment.CurrentManagedThreadId;
            const int Lines = 2000; // about 90 KB each way: past both pause thresholds, so both pipes wait and resume
            var (received, threads) = await Task.Run(async () =>
            {
                var seenThreads = new HashSet<int>();
                var reading = ReadAllLines(client.Input, seenThreads);
                for (int i = 0; i < Lines; i++)
                {
                    await WriteTextAsync(client.Output, $"line number {i,6} of the test\n");
                    lock (seenThreads)
                    {
                        seenThreads.Add(Environment.CurrentManagedThreadId);
                    }
                }

                await client.Output.CompleteAsync();
                return (await reading, seenThreads);
            });
            Assert.Equal(Lines, received.Count);
            Assert.Equal("LINE NUMBER   1999 OF THE TEST", received[^1]);
            Assert.DoesNotContain(loopThread, threads);
            await Assert.Single(serving);
            await client.Closed;
            Assert.True(checking.Transport!.Calls > 0);
            Assert.Empty(checking.Transport.OffLoopCalls);
        });

        static async Task<List<string>> ReadAllLines(PipeReader input, HashSet<int> threads)
        {
            var lines = new List<string>();
            await ReadLinesAsync(input, line =>
            {
                lines.Add(line);
                lock (threads)
                {
                    threads.Add(Environment.CurrentManagedThreadId);
                }

                return ValueTask.CompletedTask;
            });
            return lines;
        }
    }

    [Fact]
    public void Transport_FromAnotherThread_FailsClearly()
    {
        Run(Kind, async loop =>
        {
            var (server, _) = await StartServer(loop, static async p => await p.Output.CompleteAsync());
            await using var _ = server;
            var (_, client) = await loop.CreateConnectionAsync(() => new DuplexPipeProtocol(), "127.0.0.1", PortOf(server));
            var ex = await Task.Run(() => Assert.Throws<InvalidOperationException>(() => client.Transport));
            Assert.Contains("loop thread", ex.Message);
            Assert.Empty(await ReadToEndAsync(client.Input));
            await client.Output.CompleteAsync();
            await client.Closed;
        });
    }
}

public sealed class EpollDuplexPipeTests() : DuplexPipeTests(LoopKinds.Epoll);

public sealed class PollDuplexPipeTests() : DuplexPipeTests(LoopKinds.Poll);

public sealed class ProactorDuplexPipeTests() : DuplexPipeTests(LoopKinds.Proactor);

public sealed class MemoryDuplexPipeTests() : DuplexPipeTests(LoopKinds.Memory);
