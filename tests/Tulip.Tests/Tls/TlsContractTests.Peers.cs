using System.Security.Authentication;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Tls;

/// <summary>
/// The half of the TLS contract about the peer: handshakes that time out, fail or are cut, records
/// corrupted beneath TLS, and the ways a connection ends (close_notify either way, truncation,
/// shutdown timeout, data after close_notify, flushing while paused).
/// </summary>
public abstract partial class TlsContractTests
{
    // ---- handshakes that do not finish -------------------------------------------------------

    [Fact]
    public void HandshakeTimeout_FailsTheConnect_AndAbortsTheSocket()
    {
        Run(Kind, async loop =>
        {
            // A plain server that never answers the ClientHello.
            var silent = new List<RecordingProtocol>();
            await using var server = await loop.CreateServerAsync(() =>
            {
                var p = new RecordingProtocol(loop);
                silent.Add(p);
                return p;
            }, s_loopback, 0);
            int made = 0;
            var ex = await Assert.ThrowsAsync<AuthenticationException>(async () =>
                await loop.CreateConnectionAsync(() => { made++; return new RecordingProtocol(loop); }, "127.0.0.1", PortOf(server),
                    ClientSsl(handshakeTimeout: 0.3)));
            Assert.Contains("did not finish within 0.3 seconds", ex.Message);
            Assert.IsType<TimeoutError>(ex.InnerException);
            Assert.Equal(1, made);
            // The server's side sees the connection end.
            Assert.NotNull(await silent[0].Lost ?? new Exception("lost"));
        });
    }

    [Fact]
    public void ServerHandshakeTimeout_DropsAClientThatSaysNothing_AndServesOthers()
    {
        Run(Kind, async loop =>
        {
            await using var server = await TlsEchoServer(loop, handshakeTimeout: 0.3);
            // A plain client that connects and sends nothing.
            var (mute, muteProtocol) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            var (transport, client) = await ConnectTls(loop, server);
            await muteProtocol.Lost;
            Assert.Equal(0, muteProtocol.ReceivedCount);
            Assert.Equal(Pattern(100), await Echo(loop, transport, client, Pattern(100)));
            transport.Close();
            await client.Lost;
            mute.Close();
        });
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    public void Timeouts_ThatAreNotPositive_AreRefused(double timeout)
    {
        Run(Kind, async loop =>
        {
            var app = new RecordingProtocol(loop);
            Assert.Throws<ArgumentOutOfRangeException>(() => new SslProtocol(loop, app, TestCertificates.ClientOptions(), handshakeTimeout: timeout));
            Assert.Throws<ArgumentOutOfRangeException>(() => new SslProtocol(loop, app, TestCertificates.ServerOptions(), shutdownTimeout: timeout));
            await using var server = await TlsEchoServer(loop);
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await ConnectTls(loop, server, ClientSsl(handshakeTimeout: timeout)));
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await ConnectTls(loop, server, ClientSsl(shutdownTimeout: timeout)));
        });
    }

    [Fact]
    public void PeerClosesDuringTheHandshake_FailsTheConnect_WithNoConnectionMadeOrLost()
    {
        Run(Kind, async loop =>
        {
            await using var server = await loop.CreateServerAsync(() => new CloseOnData(), s_loopback, 0);
            var made = new List<RecordingProtocol>();
            var ex = await Assert.ThrowsAsync<AuthenticationException>(async () =>
                await loop.CreateConnectionAsync(() =>
                {
                    var p = new RecordingProtocol(loop);
                    made.Add(p);
                    return p;
                }, "127.0.0.1", PortOf(server), ClientSsl()));
            Assert.Contains("closed the connection before the handshake finished", ex.Message);
            Assert.Single(made);
            Assert.False(made[0].Made.Done);
            Assert.False(made[0].Lost.Done);
        });
    }

    [Fact]
    public void GarbageInsteadOfAHandshake_FailsTheConnect_NeverHangs()
    {
        Run(Kind, async loop =>
        {
            await using var server = await loop.CreateServerAsync(() => new AnswerWith(Pattern(3000)), s_loopback, 0);
            await Assert.ThrowsAsync<AuthenticationException>(async () => await ConnectTls(loop, server));
        });
    }

    [Fact]
    public void GarbageFromAClient_CostsTheServerThatConnectionOnly_LoggedOnce()
    {
        Run(Kind, async loop =>
        {
            await using var server = await TlsEchoServer(loop);
            var (scanner, scannerProtocol) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            scanner.Write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8);
            await scannerProtocol.Lost;
            var (transport, client) = await ConnectTls(loop, server);
            Assert.Equal(Pattern(1000), await Echo(loop, transport, client, Pattern(1000)));
            transport.Close();
            await client.Lost;
        });
    }

    // ---- records tampered with beneath TLS ---------------------------------------------------

    [Fact]
    public void CorruptedRecord_EndsTheConnection_WithAnError_AndNoBadData()
    {
        Run(Kind, async loop =>
        {
            var taps = new List<TlsTap>();
            await using var server = await TappedTlsEchoServer(loop, taps);
            var (transport, client) = await ConnectTls(loop, server);
            Assert.Equal(Pattern(100), await Echo(loop, transport, client, Pattern(100)));
            // From now on the server's records reach the wire with one byte flipped.
            taps[0].OnWrite = static b =>
            {
                b[b.Length / 2] ^= 0x55;
                return b;
            };
            transport.Write(Pattern(500));
            var lost = await client.Lost;
            Assert.NotNull(lost);
            Assert.Equal(Pattern(100), client.Received); // nothing of the corrupted record was delivered
        });
    }

    [Fact]
    public void Truncation_AnEofWithoutCloseNotify_IsAnError_NeverACleanEof()
    {
        Run(Kind, async loop =>
        {
            var taps = new List<TlsTap>();
            await using var server = await TappedTlsEchoServer(loop, taps);
            var (transport, client) = await ConnectTls(loop, server);
            Assert.Equal(Pattern(100), await Echo(loop, transport, client, Pattern(100)));
            taps[0].Transport!.Beneath.Close(); // a TCP FIN, no close_notify
            var lost = await client.Lost;
            Assert.IsType<SslTruncationException>(lost);
            Assert.False(client.Eof.Done, "a truncated stream was reported as a clean EOF");
        });
    }

    [Fact]
    public void BytesAfterThePeersCloseNotify_AreDropped()
    {
        Run(Kind, async loop =>
        {
            var taps = new List<TlsTap>();
            var serverSide = new List<RecordingProtocol>();
            await using var server = await loop.CreateServerAsync(() =>
            {
                var app = new RecordingProtocol(loop);
                serverSide.Add(app);
                var tap = new TlsTap(new SslProtocol(loop, app, TestCertificates.ServerOptions()));
                taps.Add(tap);
                return tap;
            }, s_loopback, 0);
            var (transport, client) = await ConnectTls(loop, server);
            var app = await serverSide[0].Made;
            app.Write("last words"u8);
            await client.WaitBytes(loop, "last words".Length);
            // The next thing the server writes is its close_notify; garbage rides right behind it.
            taps[0].OnWrite = static b => [.. b, .. Pattern(777)];
            app.Close();
            Assert.Null(await client.Lost);
            Assert.True(client.Eof.Done);
            Assert.Equal("last words", System.Text.Encoding.ASCII.GetString(client.Received));
        });
    }

    // ---- ending ------------------------------------------------------------------------------

    [Fact]
    public void ClientCloses_ServerSeesCloseNotifyAsEof_ThenACleanLoss()
    {
        Run(Kind, async loop =>
        {
            var serverSide = new List<RecordingProtocol>();
            await using var server = await RecordingTlsServer(loop, serverSide);
            var (transport, client) = await ConnectTls(loop, server);
            transport.Write("bye"u8);
            transport.Close();
            Assert.True(transport.IsClosing);
            Assert.Null(await client.Lost);
            Assert.Null(await serverSide[0].Lost);
            Assert.True(serverSide[0].Eof.Done);
            Assert.Equal("bye", System.Text.Encoding.ASCII.GetString(serverSide[0].Received));
            Assert.Empty(serverSide[0].Errors);
        });
    }

    [Fact]
    public void ServerCloses_ClientSeesCloseNotifyAsEof_ThenACleanLoss()
    {
        Run(Kind, async loop =>
        {
            await using var server = await loop.CreateServerAsync(() => new GreetAndClose("goodbye"), s_loopback, 0,
                new ServerOptions { Ssl = TestCertificates.ServerOptions() });
            var (transport, client) = await ConnectTls(loop, server);
            Assert.Null(await client.Lost);
            Assert.True(client.Eof.Done);
            Assert.Equal("goodbye", System.Text.Encoding.ASCII.GetString(client.Received));
            Assert.Empty(client.Errors);
        });
    }

    [Fact]
    public void Close_WhileWritingIsPaused_FlushesEverything_BeforeCloseNotify()
    {
        Run(Kind, async loop =>
        {
            var serverSide = new List<RecordingProtocol>();
            await using var server = await RecordingTlsServer(loop, serverSide, pauseReading: true);
            var (transport, client) = await ConnectTls(loop, server);
            SlowPeer(loop, true);
            // The peer does not read: write until the TLS layer's backlog passes the high mark, however
            // much the kernel's buffers take first (tcp_rmem's maximum varies from machine to machine).
            var data = await WriteUntilPaused(transport, client);
            transport.Close();
            var peer = await serverSide[0].Made;
            peer.ResumeReading();
            SlowPeer(loop, false);
            await serverSide[0].Eof;
            Assert.Equal(data, serverSide[0].Received);
            Assert.Null(await client.Lost);
        });
    }

    /// <summary>Writes 1 MiB chunks of a pattern, one per iteration, until <paramref name="client"/> is paused; returns all that was written.</summary>
    private static async LoopTask<byte[]> WriteUntilPaused(ITransport transport, RecordingProtocol client)
    {
        var written = new System.IO.MemoryStream();
        var chunk = Pattern(1 << 20);
        while (!client.Paused.Done)
        {
            Assert.True(written.Length < 512L << 20, "512 MiB written to a peer that does not read, and PauseWriting never came");
            transport.Write(chunk);
            written.Write(chunk);
            await Tasks.Sleep(0);
        }

        return written.ToArray();
    }

    [Fact]
    public void PeersCloseNotify_WhileOurWritesAreBacklogged_StillDeliversItsTrailingData()
    {
        Run(Kind, async loop =>
        {
            var serverSide = new List<RecordingProtocol>();
            await using var server = await RecordingTlsServer(loop, serverSide, pauseReading: true);
            var (transport, client) = await ConnectTls(loop, server, ClientSsl(shutdownTimeout: 1));
            SlowPeer(loop, true);
            await WriteUntilPaused(transport, client);
            var peer = await serverSide[0].Made;
            peer.Write("trailing data"u8);
            peer.Close(); // close_notify behind the data, while our side still has megabytes queued
            await client.Eof;
            Assert.Equal("trailing data", System.Text.Encoding.ASCII.GetString(client.Received));
            await client.Lost;
            await serverSide[0].Lost;
        }, errors: new List<ExceptionContext>());
    }

    [Fact]
    public void ShutdownTimeout_APeerThatNeverAnswersCloseNotify_IsCutOff()
    {
        Run(Kind, async loop =>
        {
            var taps = new List<TlsTap>();
            await using var server = await TappedTlsEchoServer(loop, taps);
            var (transport, client) = await ConnectTls(loop, server, ClientSsl(shutdownTimeout: 0.3));
            Assert.Equal(Pattern(10), await Echo(loop, transport, client, Pattern(10)));
            taps[0].OnRead = static _ => []; // the server never sees our close_notify, so never answers
            transport.Close();
            var lost = await client.Lost;
            Assert.IsType<TimeoutError>(lost);
        });
    }

    [Fact]
    public void Abort_DropsAtOnce_WithoutCloseNotify()
    {
        Run(Kind, async loop =>
        {
            var serverSide = new List<RecordingProtocol>();
            await using var server = await RecordingTlsServer(loop, serverSide);
            var (transport, client) = await ConnectTls(loop, server);
            await serverSide[0].Made;
            transport.Abort();
            Assert.Null(await client.Lost);
            Assert.NotNull(await serverSide[0].Lost); // no close_notify came: not a clean end
            Assert.False(serverSide[0].Eof.Done);
        });
    }

    [Fact]
    public void PauseReading_OnTheTlsTransport_StopsDelivery_UntilResumed()
    {
        Run(Kind, async loop =>
        {
            await using var server = await TlsEchoServer(loop);
            var (transport, client) = await ConnectTls(loop, server);
            Assert.Equal(Pattern(10), await Echo(loop, transport, client, Pattern(10)));
            transport.PauseReading();
            Assert.False(transport.IsReading);
            transport.Write(Pattern(200_000));
            await Eventually(() => false, 50);
            long whilePaused = client.ReceivedCount;
            Assert.Equal(10, whilePaused);
            transport.ResumeReading();
            await client.WaitBytes(loop, 10 + 200_000);
            transport.Close();
            await client.Lost;
        });
    }

    /// <summary>A TLS server whose connections' application protocols are recorded in <paramref name="serverSide"/>.</summary>
    private protected static async LoopTask<Server> RecordingTlsServer(BaseEventLoop loop, List<RecordingProtocol> serverSide, bool pauseReading = false) =>
        await loop.CreateServerAsync(() =>
        {
            var p = new PeerProtocol(loop, pauseReading);
            serverSide.Add(p);
            return p;
        }, s_loopback, 0, new ServerOptions { Ssl = TestCertificates.ServerOptions() });

    private protected static async LoopTask<Server> TappedTlsEchoServer(BaseEventLoop loop, List<TlsTap> taps) =>
        await loop.CreateServerAsync(() =>
        {
            var tap = new TlsTap(new SslProtocol(loop, new EchoProtocol(), TestCertificates.ServerOptions()));
            taps.Add(tap);
            return tap;
        }, s_loopback, 0);

    private sealed class CloseOnData : Protocol
    {
        private ITransport _transport = null!;

        public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;

        public override void DataReceived(ReadOnlySpan<byte> data) => _transport.Close();
    }

    private sealed class AnswerWith(byte[] answer) : Protocol
    {
        private ITransport _transport = null!;

        public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;

        public override void DataReceived(ReadOnlySpan<byte> data) => _transport.Write(answer);
    }

    private sealed class GreetAndClose(string text) : Protocol
    {
        public override void ConnectionMade(IBaseTransport transport)
        {
            var t = (ITransport)transport;
            t.Write(System.Text.Encoding.ASCII.GetBytes(text));
            t.Close();
        }
    }
}

/// <summary>What a TLS server logs about clients that fail their handshake: one line each, no stack trace.</summary>
public sealed class TlsServerLoggingTests
{
    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void ScannersThatFailTheHandshake_AreLoggedOnceEach_WithoutAStackTrace(string kind)
    {
        var logs = new Tulip.Tests.Loop.CapturingLoggerFactory();
        using var loop = LoopKinds.Named(kind).Create(logs);
        loop.RunUntilComplete(async () =>
        {
            await using var server = await loop.CreateServerAsync(static () => new EchoProtocol(), ["127.0.0.1"], 0,
                new ServerOptions { Ssl = TestCertificates.ServerOptions() });
            for (int i = 0; i < 3; i++)
            {
                var (scanner, protocol) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
                scanner.Write("GET / HTTP/1.1\r\n\r\n"u8);
                await protocol.Lost;
            }
        });

        var failures = logs.Entries.Where(e => e.Message.Contains("TLS handshake with client")).ToList();
        Assert.Equal(3, failures.Count);
        Assert.All(failures, e =>
        {
            Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Information, e.Level);
            Assert.Null(e.Exception);
            Assert.Contains("127.0.0.1", e.Message);
        });
        Assert.DoesNotContain(logs.Entries, e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Warning);
    }
}
