using System.Net;
using System.Net.Sockets;
using Tulip;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// The stream-transport contract (issue 3), written once and bound to every backend: TCP
/// connections and servers, half-close, close and abort, flow control, transfers, servers with
/// idle clients. Each test runs its own loop.
/// </summary>
/// <remarks>
/// This half needs no real socket, so the in-memory loop runs it too;
/// <see cref="SocketStreamTransportContractTests"/> (StreamTransportContractTests.Sockets.cs) adds
/// what needs one, and the real loops are bound to it.
/// </remarks>
public abstract class StreamTransportContractTests : LoopSuite
{
    protected StreamTransportContractTests(LoopKind kind) : base(kind)
    {
    }

    private protected static readonly string[] s_loopback = ["127.0.0.1"];

    private protected static async LoopTask<Server> EchoServer(BaseEventLoop loop) =>
        await loop.CreateServerAsync(static () => new EchoProtocol(), s_loopback, 0);

    [Fact]
    public void ConnectionRefused_Throws()
    {
        Run(Kind, async loop =>
        {
            int port = FreePort();
            var ex = await Assert.ThrowsAsync<SocketException>(async () =>
                await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port));
            Assert.Equal(SocketError.ConnectionRefused, ex.SocketErrorCode);
        });
    }

    [Theory]
    [InlineData(1)]
    [InlineData(1023)]
    [InlineData(1025)]
    [InlineData(65535)]
    [InlineData(65537)]
    [InlineData((1 << 20) - 1)]
    [InlineData((1 << 20) + 1)]
    [InlineData((16 << 20) - 1)]
    [InlineData((16 << 20) + 1)]
    public void Transfer_IsByteExact(int size)
    {
        Run(Kind, async loop =>
        {
            await using var server = await EchoServer(loop);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            var data = Pattern(size);
            // In pieces of varying size, as an application would write.
            int offset = 0, piece = 1;
            while (offset < size)
            {
                int n = Math.Min(piece, size - offset);
                transport.Write(data.AsSpan(offset, n));
                offset += n;
                piece = piece * 3 + 7;
            }

            transport.WriteEof();
            Assert.Throws<InvalidOperationException>(() => transport.Write(new byte[1]));
            Assert.True(await client.Eof);
            Assert.Null(await client.Lost);
            Assert.Equal(size, client.ReceivedCount);
            Assert.True(data.AsSpan().SequenceEqual(client.Received));
            Assert.Empty(client.Errors);
        });
    }

    [Fact]
    public void HalfClose_ClientShutsWriteSide_ServerStillReplies()
    {
        Run(Kind, async loop =>
        {
            RecordingProtocol? serverSide = null;
            await using var server = await loop.CreateServerAsync(() => serverSide = new RecordingProtocol(loop) { KeepOpenOnEof = true }, s_loopback, 0);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            transport.Write("question"u8);
            transport.WriteEof();
            Assert.True(await Eventually(() => serverSide is not null && serverSide.Eof.Done));
            Assert.Equal("question"u8.ToArray(), serverSide!.Received);
            Assert.False(serverSide.Transport.IsClosing);
            serverSide.Transport.Write("answer"u8);
            serverSide.Transport.Close();
            Assert.Null(await client.Lost);
            Assert.Equal("answer"u8.ToArray(), client.Received);
            Assert.True(client.Eof.Done);
            Assert.Null(await serverSide.Lost);
            Assert.Empty(client.Errors);
            Assert.Empty(serverSide.Errors);
        });
    }

    [Fact]
    public void HalfClose_ServerShutsWriteSide_ClientStillReplies()
    {
        Run(Kind, async loop =>
        {
            RecordingProtocol? serverSide = null;
            await using var server = await loop.CreateServerAsync(() => serverSide = new RecordingProtocol(loop), s_loopback, 0);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop) { KeepOpenOnEof = true }, "127.0.0.1", PortOf(server));
            Assert.True(await Eventually(() => serverSide is not null && serverSide.Made.Done));
            serverSide!.Transport.Write("hello"u8);
            serverSide.Transport.WriteEof();
            Assert.True(await client.Eof);
            Assert.False(transport.IsClosing);
            transport.Write("still here"u8);
            transport.WriteEof();
            Assert.True(await serverSide.Eof);
            Assert.Null(await serverSide.Lost); // its EofReceived returned false: it closes
            transport.Close();
            Assert.Null(await client.Lost);
            Assert.Equal("hello"u8.ToArray(), client.Received);
            Assert.Equal("still here"u8.ToArray(), serverSide.Received);
        });
    }

    [Fact]
    public void Write_AfterPeerReset_LosesConnectionWithSocketException()
    {
        // The write path's error handling: send(2) on a reset connection fails (ECONNRESET, then
        // EPIPE, never SIGPIPE: MSG_NOSIGNAL); the protocol loses the connection with a
        // SocketException, the exception handler is not called (Run fails the test if it is), and
        // later writes are dropped quietly.
        Run(Kind, async loop =>
        {
            RecordingProtocol? serverSide = null;
            await using var server = await loop.CreateServerAsync(() => serverSide = new RecordingProtocol(loop), s_loopback, 0);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            Assert.True(await Eventually(() => serverSide is not null && serverSide.Made.Done));
            serverSide!.Transport.PauseReading(); // so only a write can find the reset
            transport.Abort();
            Assert.Null(await client.Lost); // the client's socket is closed: the RST is on its way
            for (int i = 0; i < 1000 && !serverSide.Transport.IsClosing; i++)
            {
                serverSide.Transport.Write(Pattern(1024));
                await Tasks.Sleep(0);
            }

            var ex = Assert.IsType<SocketException>(await serverSide.Lost);
            Assert.True(ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown, $"unexpected {ex.SocketErrorCode}: {ex.Message}");
            serverSide.Transport.Write(Pattern(16)); // dropped: the transport is closed
            Assert.Equal(0, serverSide.Transport.GetWriteBufferSize());
        });
    }

    [Fact]
    public void WritesAfterClose_AreDropped()
    {
        Run(Kind, async loop =>
        {
            await using var server = await EchoServer(loop);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            transport.Close();
            for (int i = 0; i < 10; i++)
            {
                transport.Write("dropped"u8); // no throw, nothing buffered
                transport.WriteLines(["dropped"u8.ToArray(), "too"u8.ToArray()]);
            }

            Assert.Equal(0, transport.GetWriteBufferSize());
            Assert.Null(await client.Lost);
            Assert.Equal(0, client.ReceivedCount);
        });
    }

    [Fact]
    public void ThousandConcurrentConnections_AllEcho()
    {
        const int count = 1000;
        Run(Kind, async loop =>
        {
            await using var server = await loop.CreateServerAsync(static () => new EchoProtocol(), s_loopback, 0, new ServerOptions { Backlog = 1024 });
            int port = PortOf(server);
            async LoopTask<bool> One(int i)
            {
                var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port);
                var message = System.Text.Encoding.ASCII.GetBytes($"connection {i} says hello");
                transport.Write(message);
                bool ok = await client.WaitBytes(loop, message.Length) && client.Received.AsSpan().SequenceEqual(message);
                transport.Close();
                await client.Lost;
                return ok;
            }

            var tasks = new LoopTask<bool>[count];
            for (int i = 0; i < count; i++)
            {
                tasks[i] = One(i);
            }

            var results = await Tasks.Gather(tasks);
            Assert.All(results, Assert.True);
        }, timeoutSeconds: 120);
    }

    [Fact]
    public void ServerClose_WithIdleClients_CloseClientsGivesThemEof()
    {
        Run(Kind, async loop =>
        {
            var server = await EchoServer(loop);
            Assert.True(server.IsServing);
            var clients = new List<RecordingProtocol>();
            for (int i = 0; i < 5; i++)
            {
                var (_, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
                clients.Add(client);
            }

            Assert.True(await Eventually(() => Kind.ServerClients(server) == 5));
            server.Close();
            Assert.False(server.IsServing);
            Assert.Empty(server.Sockets);
            var waitClosed = server.WaitClosedAsync();
            await Tasks.Sleep(0);
            Assert.False(waitClosed.Done, "WaitClosedAsync waits for the connections too");
            server.CloseClients();
            await waitClosed;
            foreach (var client in clients)
            {
                Assert.Null(await client.Lost);
                Assert.True(client.Eof.Done);
            }

            await server.WaitClosedAsync(); // done: returns at once
        });
    }

    [Fact]
    public void ServerClose_AbortClients_ResetsThem()
    {
        Run(Kind, async loop =>
        {
            var server = await EchoServer(loop);
            var clients = new List<RecordingProtocol>();
            for (int i = 0; i < 3; i++)
            {
                var (_, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
                clients.Add(client);
            }

            Assert.True(await Eventually(() => Kind.ServerClients(server) == 3));
            server.Close();
            server.AbortClients();
            await server.WaitClosedAsync();
            foreach (var client in clients)
            {
                var ex = Assert.IsType<SocketException>(await client.Lost);
                Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
            }
        });
    }

    [Fact]
    public void Server_StartServingLater_AndServeForeverEndsOnClose()
    {
        Run(Kind, async loop =>
        {
            var server = await loop.CreateServerAsync(static () => new EchoProtocol(), s_loopback, 0, new ServerOptions { StartServing = false });
            Assert.False(server.IsServing);
            var serving = server.ServeForeverAsync();
            Assert.True(server.IsServing);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            transport.Write("ping"u8);
            Assert.True(await client.WaitBytes(loop, 4));
            transport.Close();
            await client.Lost;
            server.Close();
            await serving;
            Assert.True(serving.Done);
        });
    }

    [Fact]
    public void ProtocolFactoryThrows_SurfacesItsException()
    {
        Run(Kind, async loop =>
        {
            await using var server = await EchoServer(loop);
            var ex = await Assert.ThrowsAsync<InvalidTimeZoneException>(async () =>
                await loop.CreateConnectionAsync<RecordingProtocol>(() => throw new InvalidTimeZoneException("factory"), "127.0.0.1", PortOf(server)));
            Assert.Equal("factory", ex.Message);
        });
    }

    [Fact]
    public void BufferedProtocol_ReceivesIntoItsOwnBuffer()
    {
        Run(Kind, async loop =>
        {
            await using var server = await EchoServer(loop);
            var client = new BufferedRecorder(loop);
            var (transport, _) = await loop.CreateConnectionAsync(() => client, "127.0.0.1", PortOf(server));
            var data = Pattern(300_000);
            transport.Write(data);
            transport.WriteEof();
            await client.Lost;
            Assert.True(data.AsSpan().SequenceEqual(client.Received.ToArray()));
            Assert.True(client.Updates > 1);
        });
    }

    /// <summary>A server whose first connection's protocol is returned once it is made; small receive window if it starts paused.</summary>
    private protected static async LoopTask<(Server Server, Future<RecordingProtocol> Peer)> PeerServer(BaseEventLoop loop, bool pauseReading)
    {
        var peer = loop.CreateFuture<RecordingProtocol>();
        var server = await loop.CreateServerAsync(() =>
        {
            var p = new PeerProtocol(loop, pauseReading);
            peer.TrySetResult(p);
            return p;
        }, s_loopback, 0);
        if (pauseReading)
        {
            server.Sockets[0].ReceiveBufferSize = 64 * 1024;
        }

        return (server, peer);
    }

    /// <summary>Lines of sizes 0..<paramref name="maxSize"/> (some empty), from a seeded generator, and their concatenation.</summary>
    private protected static List<ReadOnlyMemory<byte>> Lines(int seed, int count, int maxSize, MemoryStream expected)
    {
        var rng = new Random(seed);
        var lines = new List<ReadOnlyMemory<byte>>(count);
        for (int i = 0; i < count; i++)
        {
            var line = new byte[i % 9 == 0 ? 0 : rng.Next(1, maxSize + 1)];
            rng.NextBytes(line);
            // Slices of bigger arrays too: the vectored send must honour each memory's offset.
            var memory = i % 3 == 0 ? new byte[line.Length + 10].AsMemory(5, line.Length) : line.AsMemory();
            line.CopyTo(memory);
            lines.Add(memory);
            expected.Write(line);
        }

        return lines;
    }

    [Fact]
    public void WriteLines_SocketTakesItAll_NothingIsBuffered()
    {
        Run(Kind, async loop =>
        {
            var (server, peerFuture) = await PeerServer(loop, pauseReading: false);
            await using (server)
            {
                var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
                var peer = await peerFuture;
                var expected = new MemoryStream();
                // 200 lines: more than one sendmsg batch; small, so the kernel takes them all.
                transport.WriteLines(Lines(1, 200, 100, expected));
                if (Kind.DefersWrites)
                {
                    // Ring writes: everything waits for the end of the iteration, then goes in one send.
                    Assert.Equal((int)expected.Length, transport.GetWriteBufferSize());
                    for (int turn = 0; turn < 1000 && transport.GetWriteBufferSize() != 0; turn++)
                    {
                        await Tasks.Sleep(0);
                    }
                }

                Assert.Equal(0, transport.GetWriteBufferSize());
                transport.WriteLines([]);
                transport.WriteLines([ReadOnlyMemory<byte>.Empty]);
                transport.WriteEof();
                Assert.Throws<InvalidOperationException>(() => transport.WriteLines(["late"u8.ToArray()]));
                Assert.True(await peer.Eof);
                Assert.True(expected.ToArray().AsSpan().SequenceEqual(peer.Received));
                transport.Close();
                await client.Lost;
            }
        });
    }

    [Fact]
    public void Server_NotServing_RefusesConnections_UntilStartServing()
    {
        Run(Kind, async loop =>
        {
            await using var server = await loop.CreateServerAsync(static () => new EchoProtocol(), s_loopback, 0, new ServerOptions { StartServing = false });
            // Bound but not listening (asyncio listens in start_serving): refused, not left waiting in a backlog.
            var ex = await Assert.ThrowsAsync<SocketException>(async () =>
                await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server)));
            Assert.Equal(SocketError.ConnectionRefused, ex.SocketErrorCode);
            server.StartServing();
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            transport.Write("ping"u8);
            Assert.True(await client.WaitBytes(loop, 4));
            transport.Close();
            await client.Lost;
        });
    }

    private sealed class BufferedRecorder : IBufferedProtocol
    {
        private readonly byte[] _buffer = new byte[4096];

        public BufferedRecorder(IEventLoop loop) => Lost = loop.CreateFuture<Exception?>();

        public Future<Exception?> Lost { get; }

        public MemoryStream Received { get; } = new();

        public int Updates { get; private set; }

        public void ConnectionMade(IBaseTransport transport)
        {
        }

        public Memory<byte> GetBuffer(int sizeHint) => _buffer;

        public void BufferUpdated(int bytesWritten)
        {
            Updates++;
            Received.Write(_buffer, 0, bytesWritten);
        }

        public bool EofReceived() => false;

        public void ConnectionLost(Exception? exception) => Lost.TrySetResult(exception);

        public void PauseWriting()
        {
        }

        public void ResumeWriting()
        {
        }
    }
}

public sealed class EpollStreamTransportTests() : SocketStreamTransportContractTests(LoopKinds.Epoll);

public sealed class PollStreamTransportTests() : SocketStreamTransportContractTests(LoopKinds.Poll);

public sealed class ProactorStreamTransportTests() : SocketStreamTransportContractTests(LoopKinds.Proactor);

/// <summary>
/// Tulip.Testing's in-memory loop against the socket-free half of the contract: the fake behaves
/// as the real loops do (STYLE §10), with no socket.
/// </summary>
public sealed class MemoryStreamTransportTests() : StreamTransportContractTests(LoopKinds.Memory);
