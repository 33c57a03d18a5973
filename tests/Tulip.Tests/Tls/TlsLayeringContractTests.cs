using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Tulip.Tests.Transports;
using static Tulip.Tests.Tls.TlsTestSupport;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Tls;

/// <summary>
/// TLS is a protocol over any stream transport, so it layers: TLS inside TLS (a second session over the
/// application transport of a first, as a client tunnelling through a TLS proxy does), and TLS over a
/// third party's transport (<see cref="QueueTransport"/>, written against the public interfaces only),
/// both through <see cref="SslProtocol"/> made by hand and through <c>StartTlsAsync</c>, on every loop.
/// </summary>
public abstract class TlsLayeringContractTests : LoopSuite
{
    protected TlsLayeringContractTests(LoopKind kind) : base(kind)
    {
    }

    private static readonly string[] s_loopback = ["127.0.0.1"];

    [Theory]
    [InlineData(1)]
    [InlineData(16 * 1024 - 1)]
    [InlineData(1024 * 1024)]
    public void TlsInTls_EchoesByteExact_AndClosesBothLayersCleanly(int size)
    {
        TlsRun(Kind, async loop =>
        {
            int registrations = Registrations(Kind, loop);
            RecordingProtocol? accepted = null;
            var server = await loop.CreateServerAsync(() => accepted = new RecordingProtocol(loop), s_loopback, 0,
                new ServerOptions { Ssl = TestCertificates.ServerOptions() });
            var (outer, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server),
                new ConnectionOptions { Ssl = TestCertificates.ClientOptions() });
            Assert.True(await Until(loop, () => accepted is { Made.Done: true }));
            var serverOuter = accepted!.Transport;

            // The inner session presents another certificate, so each layer is seen to be its own.
            var serverInnerTask = loop.StartTlsAsync(serverOuter, accepted, TestCertificates.ServerOptions(TestCertificates.ExampleOrg));
            var inner = await loop.StartTlsAsync(outer, client, TestCertificates.ClientOptions("example.org"));
            var serverInner = await serverInnerTask;
            var outerStream = Assert.IsType<SslStream>(outer.GetExtraInfo("ssl_object"));
            var innerStream = Assert.IsType<SslStream>(inner.GetExtraInfo("ssl_object"));
            Assert.NotSame(outerStream, innerStream);
            Assert.Contains("localhost", ((X509Certificate2)outer.GetExtraInfo("peercert")!).Subject);
            Assert.Contains("example.org", ((X509Certificate2)inner.GetExtraInfo("peercert")!).Subject);
            Assert.Same(client, inner.GetProtocol());
            Assert.IsType<SslProtocol>(outer.GetProtocol());

            var payload = Pattern(size);
            inner.Write(payload);
            Assert.True(await accepted.WaitBytes(loop, size));
            serverInner.Write(accepted.Received); // the echo
            Assert.True(await client.WaitBytes(loop, size));
            Assert.Equal(payload, accepted.Received);
            Assert.Equal(payload, client.Received);

            // Closing the inner session sends its close_notify, then closes the outer one (its own close_notify).
            inner.Close();
            Assert.Null(await client.Lost);
            Assert.Null(await accepted.Lost);
            Assert.True(accepted.Eof.Done, "the inner close_notify reached the server as EOF");
            Assert.True(outer.IsClosing);
            Assert.True(serverOuter.IsClosing);
            Assert.Empty(client.Errors);
            Assert.Empty(accepted.Errors);
            await AssertNothingLeft(Kind, loop, registrations, server);
        });
    }

    [Fact]
    public void TlsInTls_ServerClosesTheInnerSession_BothLayersEndCleanly()
    {
        TlsRun(Kind, async loop =>
        {
            int registrations = Registrations(Kind, loop);
            RecordingProtocol? accepted = null;
            var server = await loop.CreateServerAsync(() => accepted = new RecordingProtocol(loop), s_loopback, 0,
                new ServerOptions { Ssl = TestCertificates.ServerOptions() });
            var (outer, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server),
                new ConnectionOptions { Ssl = TestCertificates.ClientOptions() });
            Assert.True(await Until(loop, () => accepted is { Made.Done: true }));
            var serverInnerTask = loop.StartTlsAsync(accepted!.Transport, accepted, TestCertificates.ServerOptions());
            var inner = await loop.StartTlsAsync(outer, client, TestCertificates.ClientOptions());
            var serverInner = await serverInnerTask;
            serverInner.Write("last words"u8);
            serverInner.Close();
            Assert.Null(await client.Lost);
            Assert.Null(await accepted.Lost);
            Assert.Equal("last words", System.Text.Encoding.ASCII.GetString(client.Received)); // data before close_notify still delivered
            Assert.True(client.Eof.Done);
            Assert.Empty(client.Errors);
            Assert.Empty(accepted.Errors);
            await AssertNothingLeft(Kind, loop, registrations, server);
        });
    }

    [Theory]
    [InlineData(4096, 1024 * 1024)]
    [InlineData(1, 3000)]
    public void ThirdPartyTransport_CarriesTls_ThroughSslProtocol(int chunkSize, int size)
    {
        TlsRun(Kind, async loop =>
        {
            var client = new RecordingProtocol(loop);
            var server = new RecordingProtocol(loop);
            var waiter = loop.CreateFuture<VoidResult>();
            var serverWaiter = loop.CreateFuture<VoidResult>();
            var clientTls = new SslProtocol(loop, client, TestCertificates.ClientOptions(), waiter);
            var serverTls = new SslProtocol(loop, server, TestCertificates.ServerOptions(), serverWaiter);
            var (c, s) = QueueTransport.Pair(loop, clientTls, serverTls, chunkSize);
            await waiter;
            await serverWaiter;
            Assert.Same(clientTls.AppTransport, await client.Made);
            Assert.Same(serverTls.AppTransport, await server.Made);
            Assert.Equal("queue-server", client.Transport.GetExtraInfo("peername")); // the third party's keys show through

            var up = Pattern(size);
            var down = Pattern(size + 1);
            client.Transport.Write(up);
            server.Transport.Write(down);
            Assert.True(await server.WaitBytes(loop, up.Length));
            Assert.True(await client.WaitBytes(loop, down.Length));
            Assert.Equal(up, server.Received);
            Assert.Equal(down, client.Received);
            client.Transport.Close();
            Assert.Null(await client.Lost);
            Assert.Null(await server.Lost);
            Assert.True(server.Eof.Done);
            Assert.True(c.IsClosed && s.IsClosed, "the queue transports were not closed by the TLS layers");
            Assert.Empty(client.Errors);
            Assert.Empty(server.Errors);
        });
    }

    [Fact]
    public void ThirdPartyTransport_StartTls_BothSides_AfterPlainBytes()
    {
        TlsRun(Kind, async loop =>
        {
            var client = new RecordingProtocol(loop);
            var server = new RecordingProtocol(loop);
            var (c, s) = QueueTransport.Pair(loop, client, server, chunkSize: 100);
            await client.Made;
            await server.Made;
            c.Write("STARTTLS\n"u8);
            Assert.True(await server.WaitBytes(loop, 9));
            var serverTls = loop.StartTlsAsync(s, server, TestCertificates.ServerOptions());
            var clientTls = await loop.StartTlsAsync(c, client, TestCertificates.ClientOptions());
            var serverTransport = await serverTls;
            var payload = Pattern(200_000);
            clientTls.Write(payload);
            Assert.True(await server.WaitBytes(loop, 9 + payload.Length));
            Assert.Equal("STARTTLS\n"u8.ToArray().Concat(payload), server.Received);
            serverTransport.Write("ok"u8);
            Assert.True(await client.WaitBytes(loop, 2));
            Assert.Equal("ok", System.Text.Encoding.ASCII.GetString(client.Received));
            serverTransport.Close();
            Assert.Null(await client.Lost);
            Assert.Null(await server.Lost);
            Assert.True(c.IsClosed && s.IsClosed);
            Assert.Empty(client.Errors);
            Assert.Empty(server.Errors);
        });
    }

    /// <summary>The third party's transport ends without close_notify: a truncation, as over a socket.</summary>
    [Fact]
    public void ThirdPartyTransport_EndWithoutCloseNotify_IsATruncation()
    {
        TlsRun(Kind, async loop =>
        {
            var client = new RecordingProtocol(loop);
            var server = new RecordingProtocol(loop);
            var waiter = loop.CreateFuture<VoidResult>();
            var (c, s) = QueueTransport.Pair(loop, new SslProtocol(loop, client, TestCertificates.ClientOptions(), waiter),
                new SslProtocol(loop, server, TestCertificates.ServerOptions()));
            await waiter;
            await server.Made;
            server.Transport.Write("cut"u8);
            Assert.True(await client.WaitBytes(loop, 3));
            s.Close(); // the plain transport beneath the server's TLS: a FIN with no close_notify
            Assert.IsType<SslTruncationException>(await client.Lost);
            Assert.False(client.Eof.Done, "a truncation is never a clean EOF");
            await server.Lost;
            Assert.True(c.IsClosed);
            Assert.Empty(client.Errors);
        });
    }

    /// <summary>TLS in TLS over the third party's transport: nothing in the layers needs a loop's own transport.</summary>
    [Fact]
    public void ThirdPartyTransport_TlsInTls()
    {
        TlsRun(Kind, async loop =>
        {
            var client = new RecordingProtocol(loop);
            var server = new RecordingProtocol(loop);
            var waiter = loop.CreateFuture<VoidResult>();
            var serverWaiter = loop.CreateFuture<VoidResult>();
            var (c, s) = QueueTransport.Pair(loop, new SslProtocol(loop, client, TestCertificates.ClientOptions(), waiter),
                new SslProtocol(loop, server, TestCertificates.ServerOptions(), serverWaiter), chunkSize: 333);
            await waiter;
            await serverWaiter;
            var serverInner = loop.StartTlsAsync(server.Transport, server, TestCertificates.ServerOptions(TestCertificates.ExampleOrg));
            var inner = await loop.StartTlsAsync(client.Transport, client, TestCertificates.ClientOptions("example.org"));
            var innerServer = await serverInner;
            var payload = Pattern(100_000);
            inner.Write(payload);
            Assert.True(await server.WaitBytes(loop, payload.Length));
            innerServer.Write(server.Received);
            Assert.True(await client.WaitBytes(loop, payload.Length));
            Assert.Equal(payload, client.Received);
            inner.Close();
            Assert.Null(await client.Lost);
            Assert.Null(await server.Lost);
            Assert.True(c.IsClosed && s.IsClosed);
            Assert.Empty(client.Errors);
            Assert.Empty(server.Errors);
        });
    }
}

public sealed class EpollTlsLayeringTests() : TlsLayeringContractTests(LoopKinds.Epoll);

public sealed class PollTlsLayeringTests() : TlsLayeringContractTests(LoopKinds.Poll);

public sealed class ProactorTlsLayeringTests() : TlsLayeringContractTests(LoopKinds.Proactor);

public sealed class MemoryTlsLayeringTests() : TlsLayeringContractTests(LoopKinds.Memory);
