using System.Net.Security;
using System.Text;
using Tulip.Streams;
using Tulip.Tests.Transports;
using static Tulip.Tests.Tls.TlsTestSupport;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Tls;

/// <summary>
/// start_tls (asyncio's <c>loop.start_tls</c> and <c>StreamWriter.start_tls</c>) on every loop and on the
/// in-memory loop: a plain connection, a plain-text preamble (SMTP's STARTTLS), then TLS on the same
/// transport, client and server side. The protocol is swapped with no byte lost or doubled, its
/// ConnectionMade is not called again, and bytes a stream reader had read ahead of the upgrade are the
/// peer's first TLS records (CPython gh-142352), with the reader's flow control moved to the TLS
/// transport (gh-114921).
/// </summary>
public abstract class StartTlsContractTests : LoopSuite
{
    protected StartTlsContractTests(LoopKind kind) : base(kind)
    {
    }

    private static readonly string[] s_loopback = ["127.0.0.1"];

    /// <summary>A plain server whose one connection's protocol is made by <paramref name="factory"/>, and a plain client connected to it.</summary>
    private static async LoopTask<(Server Server, RecordingProtocol Client, TServer ServerProtocol)> ConnectPlainAsync<TServer>(
        BaseEventLoop loop, Func<TServer> factory, Func<TServer, Future<ITransport>> made)
        where TServer : class, IBaseProtocol
    {
        TServer? serverProtocol = null;
        var server = await loop.CreateServerAsync(() => serverProtocol = factory(), s_loopback, 0);
        var (_, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
        Assert.True(await Until(loop, () => serverProtocol is not null), "the server never accepted");
        await made(serverProtocol!);
        return (server, client, serverProtocol!);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(16 * 1024 + 1)]
    [InlineData(1024 * 1024)]
    public void ClientAndServer_AfterAPreamble_SwapProtocols_NoByteLostOrDoubled(int size)
    {
        TlsRun(Kind, async loop =>
        {
            int registrations = Registrations(Kind, loop);
            var (server, client, serverProtocol) = await ConnectPlainAsync(loop, () => new RecordingProtocol(loop), p => p.Made);
            var clientPlain = client.Transport;
            var serverPlain = serverProtocol.Transport;

            // The preamble: STARTTLS, then the server's go-ahead, after which each side upgrades.
            clientPlain.Write("STARTTLS\r\n"u8);
            await serverProtocol.WaitBytes(loop, 10);
            serverPlain.Write("220 go ahead\r\n"u8);
            var serverTls = loop.StartTlsAsync(serverPlain, serverProtocol, TestCertificates.ServerOptions());
            Assert.IsType<SslProtocol>(serverPlain.GetProtocol()); // swapped at once, before the handshake
            await client.WaitBytes(loop, 14);
            var clientTransport = await loop.StartTlsAsync(clientPlain, client, TestCertificates.ClientOptions());
            var serverTransport = await serverTls;

            Assert.NotSame(clientPlain, clientTransport);
            Assert.Same(client, clientTransport.GetProtocol());
            Assert.Same(serverProtocol, serverTransport.GetProtocol());
            Assert.IsType<SslProtocol>(clientPlain.GetProtocol());
            Assert.IsType<SslStream>(clientTransport.GetExtraInfo("ssl_object"));
            Assert.NotNull(clientTransport.GetExtraInfo("peercert"));
            Assert.Equal(false, clientTransport.GetExtraInfo("server_side"));
            Assert.Equal(true, serverTransport.GetExtraInfo("server_side"));
            Assert.Equal(clientPlain.GetExtraInfo("peername"), clientTransport.GetExtraInfo("peername")); // the keys beneath show through

            var up = Pattern(size);
            var down = Pattern(size + 7);
            clientTransport.Write(up);
            serverTransport.Write(down);
            Assert.True(await serverProtocol.WaitBytes(loop, 10 + up.Length));
            Assert.True(await client.WaitBytes(loop, 14 + down.Length));
            Assert.Equal(Encoding.ASCII.GetBytes("STARTTLS\r\n").Concat(up), serverProtocol.Received);
            Assert.Equal(Encoding.ASCII.GetBytes("220 go ahead\r\n").Concat(down), client.Received);

            clientTransport.Close();
            Assert.Null(await client.Lost);
            Assert.Null(await serverProtocol.Lost);
            Assert.True(serverProtocol.Eof.Done, "the server saw close_notify as EOF");
            Assert.Empty(client.Errors); // among them: "ConnectionMade twice"
            Assert.Empty(serverProtocol.Errors);
            Assert.True(clientPlain.IsClosing);
            await AssertNothingLeft(Kind, loop, registrations, server);
        });
    }

    [Fact]
    public void ConnectionMade_IsNotCalledAgain_OnEitherSide()
    {
        TlsRun(Kind, async loop =>
        {
            int registrations = Registrations(Kind, loop);
            var (server, client, serverProtocol) = await ConnectPlainAsync(loop, () => new CountingMade(loop), p => p.Made);
            var serverTls = loop.StartTlsAsync(serverProtocol.Transport, serverProtocol, TestCertificates.ServerOptions());
            var clientCounting = new CountingMade(loop);
            client.Transport.SetProtocol(clientCounting); // a protocol that never had ConnectionMade takes the connection
            var clientTransport = await loop.StartTlsAsync(client.Transport, clientCounting, TestCertificates.ClientOptions());
            var serverTransport = await serverTls;
            Assert.Equal(1, serverProtocol.MadeCalls);
            Assert.Equal(0, clientCounting.MadeCalls);
            clientTransport.Write("x"u8);
            Assert.True(await serverProtocol.WaitBytes(loop, 1));
            serverTransport.Close();
            Assert.Null(await clientCounting.Lost);
            Assert.Null(await serverProtocol.Lost);
            Assert.Equal(1, serverProtocol.MadeCalls);
            Assert.Equal(0, clientCounting.MadeCalls);
            await AssertNothingLeft(Kind, loop, registrations, server);
        });
    }

    [Fact]
    public void BufferedAppProtocol_GetsEveryByte_ThroughItsOwnBuffers()
    {
        TlsRun(Kind, async loop =>
        {
            int registrations = Registrations(Kind, loop);
            var (server, client, serverProtocol) = await ConnectPlainAsync(loop, () => new BufferedRecorder(loop, bufferSize: 1000), p => p.Made);
            client.Transport.Write("STARTTLS\n"u8);
            Assert.True(await serverProtocol.WaitBytes(loop, 9));
            var serverTls = loop.StartTlsAsync(serverProtocol.Made.Result(), serverProtocol, TestCertificates.ServerOptions());
            var clientTransport = await loop.StartTlsAsync(client.Transport, client, TestCertificates.ClientOptions());
            var serverTransport = await serverTls;
            var payload = Pattern(1024 * 1024 + 3);
            clientTransport.Write(payload);
            Assert.True(await serverProtocol.WaitBytes(loop, 9 + payload.Length));
            Assert.Equal(Encoding.ASCII.GetBytes("STARTTLS\n").Concat(payload), serverProtocol.Received);
            Assert.True(serverProtocol.BufferCalls > payload.Length / 1000, $"{serverProtocol.BufferCalls} BufferUpdated calls for 1 MiB in 1000-byte buffers");
            Assert.Equal(1, serverProtocol.MadeCount);
            clientTransport.Close();
            Assert.Null(await serverProtocol.Lost);
            Assert.Null(await client.Lost);
            Assert.True(serverProtocol.Eof.Done);
            Assert.Empty(serverProtocol.Errors);
            Assert.Empty(client.Errors);
            Assert.Same(serverProtocol, serverTransport.GetProtocol());
            await AssertNothingLeft(Kind, loop, registrations, server);
        });
    }

    /// <summary>SMTP's shape on streams: a greeting, STARTTLS, the go-ahead, then lines over TLS, the TCP client being the TLS client.</summary>
    [Fact]
    public void Writer_StartTls_AsClient_AfterAGreeting()
    {
        TlsRun(Kind, async loop =>
        {
            int registrations = Registrations(Kind, loop);
            LoopTask? serverSide = null;
            await using var server = await StreamConnections.StartServerAsync((reader, writer) => serverSide = Smtp(reader, writer), "127.0.0.1", 0);

            var (r, w) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
            Assert.Equal("220 tulip ESMTP\r\n", Encoding.ASCII.GetString(await r.ReadLineAsync()));
            w.Write("STARTTLS\r\n"u8);
            Assert.Equal("220 ready\r\n", Encoding.ASCII.GetString(await r.ReadLineAsync()));
            var plain = w.Transport;
            await w.StartTlsAsync(TestCertificates.ClientOptions());
            Assert.NotSame(plain, w.Transport);
            Assert.IsType<SslStream>(w.GetExtraInfo("ssl_object"));
            Assert.False(w.CanWriteEof);
            w.Write("EHLO me\r\n"u8);
            Assert.Equal("250 hello me over tls\r\n", Encoding.ASCII.GetString(await r.ReadLineAsync()));
            w.Write("QUIT\r\n"u8);
            Assert.Equal("221 bye\r\n", Encoding.ASCII.GetString(await r.ReadLineAsync()));
            Assert.Empty(await r.ReadAsync()); // the server's close_notify: EOF
            Assert.True(r.AtEof);
            w.Close();
            await w.WaitClosedAsync();
            await serverSide!;
            await AssertNothingLeft(Kind, loop, registrations, server);
        });

        static async LoopTask Smtp(LoopStreamReader reader, LoopStreamWriter writer)
        {
            writer.Write("220 tulip ESMTP\r\n"u8);
            Assert.Equal("STARTTLS\r\n", Encoding.ASCII.GetString(await reader.ReadLineAsync()));
            writer.Write("220 ready\r\n"u8);
            await writer.StartTlsAsync(TestCertificates.ServerOptions());
            Assert.True((bool)writer.GetExtraInfo("server_side")!);
            var ehlo = Encoding.ASCII.GetString(await reader.ReadLineAsync());
            writer.Write(Encoding.ASCII.GetBytes("250 hello " + ehlo[5..^2] + " over tls\r\n"));
            Assert.Equal("QUIT\r\n", Encoding.ASCII.GetString(await reader.ReadLineAsync()));
            writer.Write("221 bye\r\n"u8);
            writer.Close();
            await writer.WaitClosedAsync();
        }
    }

    /// <summary>
    /// CPython gh-142352: the client sends STARTTLS and its ClientHello without waiting; the server's
    /// reader has both in its buffer when it reads the line, and the ClientHello it read ahead must go
    /// to the TLS layer, not be lost (the handshake would hang) nor reach the reader as data.
    /// </summary>
    [Fact]
    public void Writer_StartTls_AsServer_ReadAheadIsTheClientHello()
    {
        TlsRun(Kind, async loop =>
        {
            int registrations = Registrations(Kind, loop);
            var serverDone = loop.CreateFuture<string>();
            CountingStreamProtocol? serverProtocol = null;
            var server = await loop.CreateServerAsync(() => serverProtocol = new CountingStreamProtocol(loop, new LoopStreamReader(), async (reader, writer) =>
            {
                try
                {
                    // STARTTLS\n is 10 bytes: wait for more, the start of the ClientHello.
                    await serverProtocol!.WaitReceived(11);
                    Assert.Equal("STARTTLS\n", Encoding.ASCII.GetString(await reader.ReadLineAsync()));
                    Assert.Contains("bytes", reader.ToString()); // read ahead: the ClientHello waits in the reader
                    await writer.StartTlsAsync(TestCertificates.ServerOptions());
                    var line = Encoding.ASCII.GetString(await reader.ReadLineAsync());
                    writer.Write(Encoding.ASCII.GetBytes("echo " + line));
                    await writer.DrainAsync();
                    Assert.Empty(await reader.ReadAsync());
                    writer.Close();
                    await writer.WaitClosedAsync();
                    serverDone.SetResult(line);
                }
                catch (Exception ex)
                {
                    serverDone.SetException(ex);
                }
            }), s_loopback, 0);
            var (plain, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            plain.Write("STARTTLS\n"u8);
            var tls = await loop.StartTlsAsync(plain, client, TestCertificates.ClientOptions()); // no go-ahead awaited
            tls.Write("over tls\n"u8);
            Assert.True(await client.WaitBytes(loop, "echo over tls\n".Length));
            Assert.Equal("echo over tls\n", Encoding.ASCII.GetString(client.Received));
            tls.Close();
            Assert.Null(await client.Lost);
            Assert.Equal("over tls\n", await serverDone);
            Assert.Empty(client.Errors);
            await AssertNothingLeft(Kind, loop, registrations, server);
        });
    }

    /// <summary>
    /// gh-142352 on the side that connected: the TCP server is the TLS client and sends its go-ahead and
    /// its ClientHello together; the TCP client's reader, which read both, upgrades as the TLS server.
    /// </summary>
    [Fact]
    public void Writer_StartTls_ReadAheadOnTheConnectingSide_ReachesTls()
    {
        TlsRun(Kind, async loop =>
        {
            int registrations = Registrations(Kind, loop);
            RecordingProtocol? accepted = null;
            var server = await loop.CreateServerAsync(() => accepted = new RecordingProtocol(loop), s_loopback, 0);
            var reader = new LoopStreamReader();
            var (transport, protocol) = await loop.CreateConnectionAsync(() => new CountingStreamProtocol(loop, reader), "127.0.0.1", PortOf(server));
            var writer = new LoopStreamWriter(transport, protocol, reader);
            Assert.True(await Until(loop, () => accepted is not null));
            await accepted!.Made;

            writer.Write("STARTTLS\n"u8);
            Assert.True(await accepted.WaitBytes(loop, 9));
            accepted.Transport.Write("GO\n"u8);
            var tlsClient = loop.StartTlsAsync(accepted.Transport, accepted, TestCertificates.ClientOptions()); // its ClientHello follows GO at once
            Assert.True(await protocol.WaitReceived(4));
            Assert.Equal("GO\n", Encoding.ASCII.GetString(await reader.ReadLineAsync()));
            await writer.StartTlsAsync(TestCertificates.ServerOptions());
            var clientTransport = await tlsClient;
            clientTransport.Write("ping\n"u8);
            Assert.Equal("ping\n", Encoding.ASCII.GetString(await reader.ReadLineAsync()));
            writer.Write("pong\n"u8);
            Assert.True(await Until(loop, () => accepted.ReceivedCount >= 9 + 5));
            Assert.Equal("STARTTLS\npong\n", Encoding.ASCII.GetString(accepted.Received));
            writer.Close();
            await writer.WaitClosedAsync();
            Assert.Null(await accepted.Lost);
            Assert.Empty(accepted.Errors);
            await AssertNothingLeft(Kind, loop, registrations, server);
        });
    }

    /// <summary>
    /// CPython gh-114921: after the upgrade the reader's flow control acts on the TLS transport. A reader
    /// with a small limit that does not read pauses the TLS transport (the peer is paused in turn), and
    /// reading it all back resumes it, byte-exact.
    /// </summary>
    [Fact]
    public void Writer_StartTls_ReaderFlowControl_MovesToTheTlsTransport()
    {
        TlsRun(Kind, async loop =>
        {
            int registrations = Registrations(Kind, loop);
            RecordingProtocol? accepted = null;
            var server = await loop.CreateServerAsync(() => accepted = new RecordingProtocol(loop), s_loopback, 0);
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server), limit: 1024);
            Assert.True(await Until(loop, () => accepted is not null));
            await accepted!.Made;
            var serverTls = loop.StartTlsAsync(accepted.Transport, accepted, TestCertificates.ServerOptions());
            var plain = writer.Transport;
            await writer.StartTlsAsync(TestCertificates.ClientOptions());
            var serverTransport = await serverTls;

            var payload = Pattern(4 * 1024 * 1024);
            serverTransport.Write(payload);
            // Our reader, over 2 x 1 KiB and not read, pauses the TLS transport (not the one beneath,
            // which the TLS layer pauses in turn).
            Assert.True(await Until(loop, () => !writer.Transport.IsReading), "the reader never paused the TLS transport");
            Assert.False(plain.IsReading);
            var got = new MemoryStream();
            var buffer = new byte[64 * 1024];
            while (got.Length < payload.Length)
            {
                int n = await reader.ReadAsync(buffer);
                Assert.True(n > 0, "EOF before the payload was read");
                got.Write(buffer, 0, n);
            }

            Assert.Equal(payload, got.ToArray());
            Assert.True(writer.Transport.IsReading);
            writer.Close();
            await writer.WaitClosedAsync();
            Assert.Null(await accepted.Lost);
            Assert.Empty(accepted.Errors);
            await AssertNothingLeft(Kind, loop, registrations, server);
        });
    }

    // ---- bad inputs -----------------------------------------------------------------------------

    [Fact]
    public void BadInputs_GiveClearExceptions_AndLeaveTheConnectionAsItWas()
    {
        TlsRun(Kind, async loop =>
        {
            int registrations = Registrations(Kind, loop);
            var (server, client, serverProtocol) = await ConnectPlainAsync(loop, () => new RecordingProtocol(loop), p => p.Made);
            var t = client.Transport;
            var clientOptions = TestCertificates.ClientOptions();
            var serverOptions = TestCertificates.ServerOptions();

            Assert.Throws<ArgumentNullException>(() => loop.StartTlsAsync(null!, client, clientOptions));
            Assert.Throws<ArgumentNullException>(() => loop.StartTlsAsync(t, null!, clientOptions));
            Assert.Throws<ArgumentNullException>(() => loop.StartTlsAsync(t, client, (SslClientAuthenticationOptions)null!));
            Assert.Throws<ArgumentNullException>(() => loop.StartTlsAsync(t, client, (SslServerAuthenticationOptions)null!));
            var noHost = Assert.Throws<ArgumentException>(() => loop.StartTlsAsync(t, client, TestCertificates.ClientOptions(targetHost: null)));
            Assert.Contains("TargetHost", noHost.Message);
            foreach (double bad in new[] { 0, -1, double.NaN })
            {
                Assert.Throws<ArgumentOutOfRangeException>(() => loop.StartTlsAsync(t, client, clientOptions, handshakeTimeout: bad));
                Assert.Throws<ArgumentOutOfRangeException>(() => loop.StartTlsAsync(t, client, clientOptions, shutdownTimeout: bad));
                Assert.Throws<ArgumentOutOfRangeException>(() => loop.StartTlsAsync(t, client, serverOptions, handshakeTimeout: bad));
            }

            // None of those touched the connection: it still carries plain bytes.
            Assert.Same(client, t.GetProtocol());
            Assert.True(t.IsReading);
            t.Write("still plain"u8);
            Assert.True(await serverProtocol.WaitBytes(loop, 11));
            Assert.Equal("still plain", Encoding.ASCII.GetString(serverProtocol.Received));

            t.Close();
            var closing = Assert.Throws<InvalidOperationException>(() => loop.StartTlsAsync(t, client, clientOptions));
            Assert.Contains("closing", closing.Message);
            Assert.Null(await client.Lost);
            Assert.Empty(client.Errors);
            await serverProtocol.Lost;
            await AssertNothingLeft(Kind, loop, registrations, server);
        });
    }

    /// <summary>
    /// A transport that already carries TLS (its protocol is a TLS layer) cannot be upgraded again: that
    /// would take the bytes away from the TLS layer in the middle of its connection. TLS in TLS is the
    /// upgrade of the TLS transport, which works (TlsLayeringContractTests).
    /// </summary>
    [Fact]
    public void StartTls_OnATransportAlreadyUnderTls_IsRefused()
    {
        TlsRun(Kind, async loop =>
        {
            int registrations = Registrations(Kind, loop);
            var (server, client, serverProtocol) = await ConnectPlainAsync(loop, () => new RecordingProtocol(loop), p => p.Made);
            var serverTls = loop.StartTlsAsync(serverProtocol.Transport, serverProtocol, TestCertificates.ServerOptions());
            var again = Assert.Throws<InvalidOperationException>(() => loop.StartTlsAsync(serverProtocol.Transport, serverProtocol, TestCertificates.ServerOptions()));
            Assert.Contains("TLS", again.Message);
            var tls = await loop.StartTlsAsync(client.Transport, client, TestCertificates.ClientOptions());
            var serverTransport = await serverTls;
            again = Assert.Throws<InvalidOperationException>(() => loop.StartTlsAsync(client.Transport, client, TestCertificates.ClientOptions()));
            Assert.Contains("TLS", again.Message);

            // The connection is unharmed by the refusals.
            tls.Write("after"u8);
            Assert.True(await serverProtocol.WaitBytes(loop, 5));
            Assert.Equal("after", Encoding.ASCII.GetString(serverProtocol.Received));
            serverTransport.Close();
            Assert.Null(await client.Lost);
            Assert.Null(await serverProtocol.Lost);
            Assert.Empty(client.Errors);
            Assert.Empty(serverProtocol.Errors);
            await AssertNothingLeft(Kind, loop, registrations, server);
        });
    }

    [Fact]
    public void Writer_StartTls_BadInputs_GiveClearExceptions()
    {
        TlsRun(Kind, async loop =>
        {
            int registrations = Registrations(Kind, loop);
            await using var server = await StreamConnections.StartServerAsync(static async (r, w) =>
            {
                await r.ReadAsync();
                w.Close();
            }, "127.0.0.1", 0);
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
            Assert.Throws<ArgumentNullException>(() => writer.StartTlsAsync((SslClientAuthenticationOptions)null!));
            Assert.Throws<ArgumentNullException>(() => writer.StartTlsAsync((SslServerAuthenticationOptions)null!));
            Assert.Throws<ArgumentException>(() => writer.StartTlsAsync(TestCertificates.ClientOptions(targetHost: null)));
            Assert.Throws<ArgumentOutOfRangeException>(() => writer.StartTlsAsync(TestCertificates.ClientOptions(), handshakeTimeout: 0));
            Assert.Throws<ArgumentOutOfRangeException>(() => writer.StartTlsAsync(TestCertificates.ServerOptions(), shutdownTimeout: -5));
            var plain = writer.Transport;
            writer.Close();
            await Assert.ThrowsAnyAsync<Exception>(async () => await writer.StartTlsAsync(TestCertificates.ClientOptions()));
            Assert.Same(plain, writer.Transport);
            await writer.WaitClosedAsync();
            await AssertNothingLeft(Kind, loop, registrations, server);
        });
    }

    /// <summary>A protocol that counts ConnectionMade (asyncio: start_tls never calls it again).</summary>
    private sealed class CountingMade(IEventLoop loop) : RecordingProtocol(loop)
    {
        public int MadeCalls { get; private set; }

        public override void ConnectionMade(IBaseTransport transport)
        {
            MadeCalls++;
            base.ConnectionMade(transport);
        }
    }
}

public sealed class EpollStartTlsTests() : StartTlsContractTests(LoopKinds.Epoll);

public sealed class PollStartTlsTests() : StartTlsContractTests(LoopKinds.Poll);

public sealed class ProactorStartTlsTests() : StartTlsContractTests(LoopKinds.Proactor);

public sealed class MemoryStartTlsTests() : StartTlsContractTests(LoopKinds.Memory);
