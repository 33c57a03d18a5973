using System.Net;
using System.Net.Sockets;
using Tulip;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// The part of the stream-transport contract that needs real sockets: extra info and socket
/// options, kernel buffers that fill (flow control, close and abort with data buffered, vectored
/// writes the socket refuses), IPv4 and IPv6 listeners, a given socket, name resolution. Bound to
/// every real loop kind (the bindings are in StreamTransportContractTests.cs); the in-memory loop
/// runs only the inherited, socket-free half.
/// </summary>
public abstract class SocketStreamTransportContractTests : StreamTransportContractTests
{
    protected SocketStreamTransportContractTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public void Connect_GivesTransportWithExtraInfoAndNoDelay()
    {
        Run(Kind, async loop =>
        {
            await using var server = await EchoServer(loop);
            var (transport, protocol) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            Assert.True(protocol.Made.Done);
            Assert.Same(transport, protocol.Transport);
            var socket = Assert.IsType<Socket>(transport.GetExtraInfo("socket"));
            Assert.True(socket.NoDelay);
            Assert.Equal(PortOf(server), Assert.IsType<IPEndPoint>(transport.GetExtraInfo("peername")).Port);
            Assert.IsType<IPEndPoint>(transport.GetExtraInfo("sockname"));
            Assert.Equal("x", transport.GetExtraInfo("nope", "x"));
            Assert.Equal((16 * 1024, 64 * 1024), transport.GetWriteBufferLimits());
            Assert.True(transport.IsReading);
            Assert.True(transport.CanWriteEof);
            transport.Close();
            Assert.True(transport.IsClosing);
            Assert.Null(await protocol.Lost);
            Assert.Empty(protocol.Errors);
        });
    }

    [Fact]
    public void Close_WithFiveMegabytesBuffered_DeliversAllThenFin()
    {
        const int size = 5 << 20;
        Run(Kind, async loop =>
        {
            var data = Pattern(size);
            int bufferedAtClose = -1;
            RecordingProtocol? serverSide = null;
            await using var server = await loop.CreateServerAsync(() => serverSide = new RecordingProtocol(loop), s_loopback, 0);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            transport.PauseReading(); // the kernel buffers fill: the server must buffer the rest
            Assert.True(await Eventually(() => serverSide is not null && serverSide.Made.Done));
            serverSide!.Transport.Write(data);
            bufferedAtClose = serverSide.Transport.GetWriteBufferSize();
            serverSide.Transport.Close();
            Assert.True(serverSide.Transport.IsClosing);
            Assert.False(serverSide.Lost.Done);
            transport.ResumeReading();
            Assert.True(await client.Eof);
            Assert.Null(await client.Lost);
            Assert.Null(await serverSide.Lost);
            Assert.True(bufferedAtClose > 0, "the test must close with data still buffered");
            Assert.True(data.AsSpan().SequenceEqual(client.Received));
        });
    }

    [Fact]
    public void Abort_SendsRstAndLosesConnectionAtOnce()
    {
        Run(Kind, async loop =>
        {
            RecordingProtocol? serverSide = null;
            await using var server = await loop.CreateServerAsync(() => serverSide = new RecordingProtocol(loop), s_loopback, 0);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            transport.PauseReading();
            Assert.True(await Eventually(() => serverSide is not null && serverSide.Made.Done));
            // Buffered data that Abort drops. The kernel may take several MiB at once (on any loop: a
            // completion loop's held receive takes a little more), so write until some is buffered.
            long written = 0;
            var chunk = Pattern(1 << 20);
            while (serverSide!.Transport.GetWriteBufferSize() == 0)
            {
                serverSide.Transport.Write(chunk);
                written += chunk.Length;
                Assert.True(written <= 256L << 20, "the kernel took 256 MiB from a peer that does not read");
            }

            Assert.True(serverSide.Transport.GetWriteBufferSize() > 0);
            serverSide.Transport.Abort();
            Assert.True(serverSide.Transport.IsClosing);
            Assert.Equal(0, serverSide.Transport.GetWriteBufferSize());
            await Tasks.Sleep(0);
            Assert.True(serverSide.Lost.Done, "ConnectionLost runs in the next iteration after Abort");
            Assert.Null(serverSide.Lost.Result());
            transport.ResumeReading();
            var ex = Assert.IsType<SocketException>(await client.Lost);
            Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
            Assert.True(client.ReceivedCount < written);
        });
    }

    [Fact]
    public void PeerThatNeverReads_PausesWritingAtHighMark_MemoryBounded()
    {
        Run(Kind, async loop =>
        {
            await using var server = await loop.CreateServerAsync(() => new NeverReads(), s_loopback, 0);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            var chunk = new byte[16 * 1024];
            long written = 0;
            // A protocol that honours PauseWriting stops here: it writes only while not paused.
            while (!client.Paused.Done)
            {
                transport.Write(chunk);
                written += chunk.Length;
                if (transport.GetWriteBufferSize() == 0 || Kind.DefersWrites)
                {
                    // The kernel took it all, or (ring writes) takes it only at the end of the
                    // iteration: let it fill.
                    await Tasks.Sleep(0);
                }

                Assert.True(written < 256L << 20, "PauseWriting never came");
            }

            Assert.Equal(1, client.PauseCount);
            int buffered = transport.GetWriteBufferSize();
            Assert.InRange(buffered, 64 * 1024 + 1, 64 * 1024 + chunk.Length);
            // Let the kernel drain the buffer? The peer never reads, so nothing moves and no resume comes.
            for (int i = 0; i < 20; i++)
            {
                await Tasks.Sleep(0);
            }

            Assert.Equal(buffered, transport.GetWriteBufferSize());
            Assert.Equal(0, client.ResumeCount);
            transport.Abort();
            await client.Lost;
            server.AbortClients(); // its side never reads, so it would never see the RST
        });
    }

    [Fact]
    public void FlowControl_ResumesAtLowMark_WithCustomLimits()
    {
        Run(Kind, async loop =>
        {
            RecordingProtocol? serverSide = null;
            await using var server = await loop.CreateServerAsync(() => serverSide = new RecordingProtocol(loop), s_loopback, 0);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            Assert.True(await Eventually(() => serverSide is not null && serverSide.Made.Done));
            serverSide!.Transport.PauseReading();
            transport.SetWriteBufferLimits(high: 1000);
            Assert.Equal((250, 1000), transport.GetWriteBufferLimits());
            Assert.Throws<ArgumentOutOfRangeException>(() => transport.SetWriteBufferLimits(high: 10, low: 20));
            long total = 0;
            var chunk = new byte[64 * 1024];
            while (!client.Paused.Done)
            {
                transport.Write(chunk);
                total += chunk.Length;
                if (!client.Paused.Done)
                {
                    await Tasks.Sleep(0);
                }
            }

            Assert.False(client.Resumed.Done);
            serverSide.Transport.ResumeReading();
            Assert.True(await client.Resumed);
            Assert.True(transport.GetWriteBufferSize() <= 250);
            Assert.True(await serverSide.WaitBytes(loop, total));
            Assert.Equal(1, client.PauseCount);
            Assert.Equal(1, client.ResumeCount);
            Assert.Empty(client.Errors);
            transport.Close();
            await client.Lost;
        });
    }

    [Fact]
    public void PauseReading_StopsDataReceived_ResumeDeliversIt()
    {
        Run(Kind, async loop =>
        {
            RecordingProtocol? serverSide = null;
            await using var server = await loop.CreateServerAsync(() => serverSide = new RecordingProtocol(loop), s_loopback, 0);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            Assert.True(await Eventually(() => serverSide is not null && serverSide.Made.Done));
            var serverTransport = serverSide!.Transport;
            serverTransport.PauseReading();
            serverTransport.PauseReading(); // idempotent
            Assert.False(serverTransport.IsReading);
            transport.Write("while paused"u8);
            // The bytes reached the server's transport, and it holds them: in the kernel (a selector
            // loop stops reading) or in a receive that completed while paused (a completion loop).
            Assert.True(await Eventually(() => Kind.Undelivered(serverTransport) == "while paused".Length));
            for (int i = 0; i < 10; i++)
            {
                await Tasks.Sleep(0);
            }

            Assert.Equal(0, serverSide.ReceivedCount);
            // Still held (a completion loop's receive may be on its way to the loop meanwhile: then neither counts it).
            Assert.True(await Eventually(() => Kind.Undelivered(serverTransport) == "while paused".Length));
            Assert.Equal(0, serverSide.ReceivedCount);
            serverTransport.ResumeReading();
            Assert.True(serverTransport.IsReading);
            Assert.Equal(0, serverSide.ReceivedCount); // delivered on a later iteration, not inside ResumeReading
            Assert.True(await serverSide.WaitBytes(loop, "while paused".Length));
            Assert.Equal("while paused"u8.ToArray(), serverSide.Received);
            Assert.Equal(0, Kind.Undelivered(serverTransport));
            // Paused and resumed again with nothing held: nothing is delivered twice, and reading goes on.
            serverTransport.PauseReading();
            serverTransport.ResumeReading();
            transport.Write("!"u8);
            Assert.True(await serverSide.WaitBytes(loop, "while paused!".Length));
            for (int i = 0; i < 10; i++)
            {
                await Tasks.Sleep(0);
            }

            Assert.Equal("while paused!"u8.ToArray(), serverSide.Received);
            transport.Close();
            Assert.Null(await serverSide.Lost);
        });
    }

    [Fact]
    public void Server_NullHost_BindsIPv4AndIPv6()
    {
        Run(Kind, async loop =>
        {
            await using var server = await loop.CreateServerAsync(static () => new EchoProtocol(), null, 0);
            Assert.Contains(server.Sockets, s => s.AddressFamily == AddressFamily.InterNetwork);
            Assert.Contains(server.Sockets, s => s.AddressFamily == AddressFamily.InterNetworkV6);
            var v4 = server.Sockets.First(s => s.AddressFamily == AddressFamily.InterNetwork);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", ((IPEndPoint)v4.LocalEndPoint!).Port);
            transport.Write("x"u8);
            Assert.True(await client.WaitBytes(loop, 1));
            transport.Close();
            await client.Lost;
        });
    }

    [Fact]
    public void ExistingConnectedSocket_IsWrapped()
    {
        Run(Kind, async loop =>
        {
            await using var server = await EchoServer(loop);
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            await loop.SockConnectAsync(socket, new IPEndPoint(IPAddress.Loopback, PortOf(server)));
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), null, 0, new ConnectionOptions { Socket = socket });
            transport.Write("wrapped"u8);
            Assert.True(await client.WaitBytes(loop, 7));
            transport.Close();
            await client.Lost;
            Assert.Throws<ObjectDisposedException>(() => socket.Send(new byte[1]));
        });
    }

    [Fact]
    public void HappyEyeballs_ConnectsToTheAddressThatListens()
    {
        Run(Kind, async loop =>
        {
            // "localhost" may resolve to ::1 and 127.0.0.1; only IPv4 listens, so any IPv6 attempt fails.
            await using var server = await EchoServer(loop);
            var options = new ConnectionOptions { HappyEyeballsDelay = 0.05 };
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "localhost", PortOf(server), options);
            transport.Write("he"u8);
            Assert.True(await client.WaitBytes(loop, 2));
            transport.Close();
            await client.Lost;
        });
    }

    [Fact]
    public void WriteLines_PeerNotReading_BuffersWhatTheSocketRefuses_OrderKept()
    {
        Run(Kind, async loop =>
        {
            var (server, peerFuture) = await PeerServer(loop, pauseReading: true);
            await using (server)
            {
                var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
                var peer = await peerFuture;
                var expected = new MemoryStream();
                int seed = 0;
                // Vectored writes until one is partial: the kernel took some, the transport buffered the rest.
                while (transport.GetWriteBufferSize() == 0)
                {
                    transport.WriteLines(Lines(++seed, 70, 30_000, expected));
                    Assert.True(expected.Length < 256L << 20, "the socket never filled");
                }

                // With a backlog, lines, plain writes and lines again queue behind it, in order.
                transport.WriteLines(Lines(++seed, 10, 1000, expected));
                transport.Write("plain write"u8);
                expected.Write("plain write"u8);
                transport.WriteLines(Lines(++seed, 100, 5000, expected));
                Assert.True(client.Paused.Done, "the backlog is past the high-water mark");
                peer.Transport.ResumeReading();
                Assert.True(await client.Resumed);
                transport.WriteEof();
                Assert.True(await peer.Eof);
                var received = peer.Received;
                Assert.Equal(expected.Length, received.Length);
                Assert.True(expected.ToArray().AsSpan().SequenceEqual(received), "the bytes arrived out of order");
                transport.Close();
                await client.Lost;
                Assert.Empty(client.Errors);
                Assert.Empty(peer.Errors);
            }
        });
    }

    /// <summary>A peer that never reads: what it is sent stays in the kernel's buffers.</summary>
    private sealed class NeverReads : Protocol
    {
        public override void ConnectionMade(IBaseTransport transport) => ((ITransport)transport).PauseReading();
    }

    [Fact]
    public void SetProtocol_WithANonStreamProtocol_IsRefused_AndTheCurrentOneStays()
    {
        Run(Kind, async loop =>
        {
            await using var server = await EchoServer(loop);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            var ex = Assert.Throws<ArgumentException>(() => transport.SetProtocol(new NotAStreamProtocol()));
            Assert.Contains("needs an IProtocol or an IBufferedProtocol", ex.Message);
            Assert.Same(client, transport.GetProtocol());
            transport.Write("still mine"u8);
            await client.WaitBytes(loop, "still mine".Length);
            transport.Close();
            await client.Lost;
        });
    }

    private sealed class NotAStreamProtocol : IBaseProtocol
    {
        public void ConnectionMade(IBaseTransport transport)
        {
        }

        public void ConnectionLost(Exception? exception)
        {
        }

        public void PauseWriting()
        {
        }

        public void ResumeWriting()
        {
        }
    }

    /// <summary>
    /// A protocol that writes again from <c>ResumeWriting</c> and then closes (or writes EOF), as a
    /// pipe adapter does when its last flush comes in as the buffer drains: everything it wrote
    /// reaches the peer, before the FIN. The resume comes from the transport's own "buffer empty"
    /// path (low-water mark 0), the one that then looks at IsClosing: it must see the new backlog.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void WriteAndCloseFromResumeWriting_AllBytesArriveBeforeTheEnd(bool writeEof)
    {
        Run(Kind, async loop =>
        {
            // Far more than a loopback socket takes in one send, so the refill is buffered.
            const int Refill = 16 << 20;
            RefillOnResumeProtocol? serving = null;
            await using var server = await loop.CreateServerAsync(
                () => serving = new RefillOnResumeProtocol(loop, Refill, writeEof), s_loopback, 0);
            var (transport, client) = await loop.CreateConnectionAsync(() => new PeerProtocol(loop, pauseReading: true), "127.0.0.1", PortOf(server));
            Assert.True(await Eventually(() => serving is not null));
            Assert.True(await serving!.Paused, "the server's first writes should fill the connection while the client does not read");
            transport.ResumeReading();

            Assert.True(await client.Eof);
            Assert.Null(await client.Lost);
            Assert.Null(await serving.Lost);
            Assert.Empty(client.Errors);
            Assert.Equal(serving.Written, client.ReceivedCount);
            Assert.True(serving.Written > Refill);
            byte[] received = client.Received;
            for (int i = 0; i < received.Length; i++)
            {
                if (received[i] != RefillOnResumeProtocol.ByteAt(i))
                {
                    Assert.Fail($"byte {i} of {received.Length} is {received[i]}, expected {RefillOnResumeProtocol.ByteAt(i)}");
                }
            }
        });
    }

    /// <summary>Writes until paused, then, on the first ResumeWriting, <c>refill</c> bytes more and Close (or WriteEof).</summary>
    private sealed class RefillOnResumeProtocol(IEventLoop loop, int refill, bool writeEof) : Protocol
    {
        private const int Chunk = 64 * 1024;
        private ITransport _transport = null!;
        private bool _paused;
        private bool _refilled;

        public Future<bool> Paused { get; } = loop.CreateFuture<bool>();

        public Future<Exception?> Lost { get; } = loop.CreateFuture<Exception?>();

        public long Written { get; private set; }

        public static byte ByteAt(long offset) => (byte)(offset % 251);

        public override void ConnectionMade(IBaseTransport transport)
        {
            _transport = (ITransport)transport;
            _transport.SetWriteBufferLimits(high: Chunk, low: 0);
            // A bound far above any kernel buffer, so a transport that never pauses fails the test, not the run.
            while (!_paused && Written < (256 << 20))
            {
                WriteMore(Chunk);
            }

            Paused.TrySetResult(_paused);
        }

        public override void PauseWriting() => _paused = true;

        public override void ResumeWriting()
        {
            _paused = false;
            if (_refilled)
            {
                return;
            }

            _refilled = true;
            WriteMore(refill);
            if (writeEof)
            {
                _transport.WriteEof();
            }
            else
            {
                _transport.Close();
            }
        }

        public override bool EofReceived() => false;

        public override void ConnectionLost(Exception? exception) => Lost.TrySetResult(exception);

        private void WriteMore(int count)
        {
            var data = new byte[count];
            for (int i = 0; i < count; i++)
            {
                data[i] = ByteAt(Written + i);
            }

            Written += count;
            _transport.Write(data);
        }
    }
}
