using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Tls;

/// <summary>
/// The TLS contract (issue 11), written once and bound to every loop and to the in-memory loop (no
/// socket: the same TLS layer over Tulip.Testing's connected pairs): exchanges of every size,
/// certificates and their failures, versions, ALPN, SNI, mutual TLS, timeouts, and what the peer
/// can do wrong beneath TLS. Certificates are made at test time (<see cref="TestCertificates"/>).
/// </summary>
public abstract partial class TlsContractTests : LoopSuite
{
    protected TlsContractTests(LoopKind kind) : base(kind)
    {
    }

    private protected static readonly string[] s_loopback = ["127.0.0.1"];

    /// <summary>A TLS echo server (the plain transports' echo protocol above TLS).</summary>
    private protected static async LoopTask<Server> TlsEchoServer(BaseEventLoop loop, SslServerAuthenticationOptions? ssl = null, double? handshakeTimeout = null) =>
        await loop.CreateServerAsync(static () => new EchoProtocol(), s_loopback, 0, new ServerOptions
        {
            Ssl = ssl ?? TestCertificates.ServerOptions(),
            SslHandshakeTimeout = handshakeTimeout ?? SslProtocol.DefaultHandshakeTimeout,
        });

    private protected static ConnectionOptions ClientSsl(string? targetHost = "localhost", double? handshakeTimeout = null, double? shutdownTimeout = null) => new()
    {
        Ssl = TestCertificates.ClientOptions(targetHost),
        SslHandshakeTimeout = handshakeTimeout ?? SslProtocol.DefaultHandshakeTimeout,
        SslShutdownTimeout = shutdownTimeout ?? SslProtocol.DefaultShutdownTimeout,
    };

    private protected static LoopTask<(ITransport Transport, RecordingProtocol Protocol)> ConnectTls(BaseEventLoop loop, Server server,
        ConnectionOptions? options = null, string host = "127.0.0.1") =>
        loop.CreateConnectionAsync(() => new RecordingProtocol(loop), host, PortOf(server), options ?? ClientSsl());

    /// <summary>Writes <paramref name="data"/> and waits for all of it to come back.</summary>
    private protected static async LoopTask<byte[]> Echo(BaseEventLoop loop, ITransport transport, RecordingProtocol client, byte[] data)
    {
        long before = client.ReceivedCount;
        transport.Write(data);
        await client.WaitBytes(loop, before + data.Length);
        return client.Received.AsSpan((int)before, data.Length).ToArray();
    }

    // ---- exchanges ---------------------------------------------------------------------------

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(16 * 1024 - 1)]
    [InlineData(16 * 1024)]
    [InlineData(16 * 1024 + 1)]
    [InlineData(1 << 20)]
    [InlineData(10 << 20)]
    public void Echo_IsByteExact_ThenClosesCleanly(int size)
    {
        Run(Kind, async loop =>
        {
            await using var server = await TlsEchoServer(loop);
            var (transport, client) = await ConnectTls(loop, server);
            var data = Pattern(size);
            // In pieces of varying size, as an application writes.
            for (int offset = 0, piece = 1; offset < size; offset += piece, piece = Math.Min(piece * 3, 300_000))
            {
                transport.Write(data.AsSpan(offset, Math.Min(piece, size - offset)));
            }

            await client.WaitBytes(loop, size);
            Assert.Equal(data, client.Received);
            transport.Close();
            Assert.Null(await client.Lost);
            Assert.Empty(client.Errors);
        });
    }

    [Fact]
    public void ManyClients_AtOnce_EachGetsItsOwnBytes()
    {
        Run(Kind, async loop =>
        {
            await using var server = await TlsEchoServer(loop);
            const int clients = 30;
            var tasks = new List<LoopTask<byte[]>>();
            for (int i = 0; i < clients; i++)
            {
                int n = i;
                tasks.Add(loop.CreateTask(async () =>
                {
                    var (transport, client) = await ConnectTls(loop, server);
                    var data = Pattern(4096 + n);
                    var back = await Echo(loop, transport, client, data);
                    transport.Close();
                    await client.Lost;
                    return back;
                }));
            }

            var results = await Tasks.Gather(tasks.ToArray());
            for (int i = 0; i < clients; i++)
            {
                Assert.Equal(Pattern(4096 + i), results[i]);
            }
        });
    }

    [Fact]
    public void WriteLines_ArriveAsOneStream_InOrder()
    {
        Run(Kind, async loop =>
        {
            await using var server = await TlsEchoServer(loop);
            var (transport, client) = await ConnectTls(loop, server);
            var parts = new[] { Pattern(10), Pattern(20_000), ReadOnlyMemory<byte>.Empty.ToArray(), Pattern(70_000) };
            transport.WriteLines(parts.Select(p => (ReadOnlyMemory<byte>)p));
            int total = parts.Sum(p => p.Length);
            await client.WaitBytes(loop, total);
            Assert.Equal(parts.SelectMany(p => p).ToArray(), client.Received);
            transport.Close();
            await client.Lost;
        });
    }

    [Fact]
    public void FirstData_WrittenInConnectionMade_BothWays_Arrives()
    {
        // The client's first bytes leave right behind its Finished (the same flight); the server's
        // first bytes right behind its last handshake message.
        Run(Kind, async loop =>
        {
            await using var server = await loop.CreateServerAsync(() => new GreetingProtocol("server first;"), s_loopback, 0,
                new ServerOptions { Ssl = TestCertificates.ServerOptions() });
            var (transport, client) = await loop.CreateConnectionAsync(() => new GreetingRecorder(loop, "client first;"), "127.0.0.1", PortOf(server), ClientSsl());
            await client.WaitBytes(loop, "server first;client first;".Length);
            Assert.Equal("server first;client first;", System.Text.Encoding.ASCII.GetString(client.Received));
            transport.Close();
            await client.Lost;
        });
    }

    // ---- what the transport tells -------------------------------------------------------------

    [Fact]
    public void ExtraInfo_GivesTheTlsFacts_AndTheTransportBeneath()
    {
        Run(Kind, async loop =>
        {
            await using var server = await TlsEchoServer(loop);
            var (transport, client) = await ConnectTls(loop, server);
            var ssl = Assert.IsType<SslStream>(transport.GetExtraInfo("ssl_object"));
            Assert.True(ssl.IsAuthenticated);
            var peer = Assert.IsType<X509Certificate2>(transport.GetExtraInfo("peercert"));
            Assert.Equal(TestCertificates.Localhost.Thumbprint, peer.Thumbprint);
            peer.Dispose(); // the caller's copy: the connection's own certificate is untouched
            var again = Assert.IsType<X509Certificate2>(transport.GetExtraInfo("peercert"));
            Assert.Equal(TestCertificates.Localhost.Thumbprint, again.Thumbprint);
            Assert.NotNull(transport.GetExtraInfo("cipher"));
            Assert.Null(transport.GetExtraInfo("alpn")); // none asked for
            Assert.NotNull(transport.GetExtraInfo("tls_version"));
            Assert.False((bool)transport.GetExtraInfo("server_side")!);
            Assert.NotNull(transport.GetExtraInfo("peername"));
            Assert.Equal("fallback", transport.GetExtraInfo("no such key", "fallback"));
            Assert.False(transport.CanWriteEof);
            Assert.Throws<NotSupportedException>(transport.WriteEof);
            // Still works after all that.
            Assert.Equal(Pattern(100), await Echo(loop, transport, client, Pattern(100)));
            transport.Close();
            await client.Lost;
        });
    }

    [Theory]
    [InlineData(SslProtocols.Tls12)]
    [InlineData(SslProtocols.Tls13)]
    public void Version_IsTheOneAgreed(SslProtocols version)
    {
        Run(Kind, async loop =>
        {
            var serverOptions = TestCertificates.ServerOptions();
            serverOptions.EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13;
            await using var server = await TlsEchoServer(loop, serverOptions);
            var options = ClientSsl();
            options.Ssl!.EnabledSslProtocols = version;
            var (transport, client) = await ConnectTls(loop, server, options);
            Assert.Equal(version, transport.GetExtraInfo("tls_version"));
            Assert.Equal(Pattern(5000), await Echo(loop, transport, client, Pattern(5000)));
            transport.Close();
            Assert.Null(await client.Lost);
        });
    }

    [Fact]
    public void Alpn_NegotiatesTheProtocolBothKnow()
    {
        Run(Kind, async loop =>
        {
            var serverOptions = TestCertificates.ServerOptions();
            serverOptions.ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11];
            await using var server = await TlsEchoServer(loop, serverOptions);
            var options = ClientSsl();
            options.Ssl!.ApplicationProtocols = [SslApplicationProtocol.Http11];
            var (transport, client) = await ConnectTls(loop, server, options);
            Assert.Equal("http/1.1", transport.GetExtraInfo("alpn"));
            transport.Close();
            await client.Lost;
        });
    }

    [Fact]
    public void Sni_SelectsTheServerCertificateByName()
    {
        Run(Kind, async loop =>
        {
            var names = new List<string?>();
            var serverOptions = new SslServerAuthenticationOptions
            {
                ServerCertificateSelectionCallback = (_, name) =>
                {
                    names.Add(name);
                    return name == "example.org" ? TestCertificates.ExampleOrg : TestCertificates.Localhost;
                },
            };
            await using var server = await TlsEchoServer(loop, serverOptions);
            foreach (var name in new[] { "example.org", "localhost" })
            {
                var (transport, client) = await ConnectTls(loop, server, ClientSsl(name));
                using var peer = (X509Certificate2)transport.GetExtraInfo("peercert")!;
                Assert.Equal(name, peer.GetNameInfo(X509NameType.DnsName, forIssuer: false));
                transport.Close();
                await client.Lost;
            }

            Assert.Equal(["example.org", "localhost"], names);
        });
    }

    [Fact]
    public void MutualTls_ServerSeesTheClientCertificate()
    {
        Run(Kind, async loop =>
        {
            var seen = loop.CreateFuture<X509Certificate2?>();
            var serverOptions = MutualServerOptions();
            await using var server = await loop.CreateServerAsync(() => new PeerCertProbe(seen), s_loopback, 0, new ServerOptions { Ssl = serverOptions });
            var options = ClientSsl();
            options.Ssl!.ClientCertificates = [TestCertificates.Client];
            var (transport, client) = await ConnectTls(loop, server, options);
            using var clientCert = await seen;
            Assert.Equal(TestCertificates.Client.Thumbprint, clientCert?.Thumbprint);
            transport.Close();
            await client.Lost;
        });
    }

    [Fact]
    public void MutualTls_WithoutAClientCertificate_IsRefused_AndTheServerGoesOn()
    {
        Run(Kind, async loop =>
        {
            var seen = loop.CreateFuture<X509Certificate2?>();
            await using var server = await loop.CreateServerAsync(() => new PeerCertProbe(seen), s_loopback, 0, new ServerOptions { Ssl = MutualServerOptions() });
            // TLS 1.3 lets the client finish before the server has judged its (missing) certificate:
            // the refusal then arrives as the connection's loss, with an error, and no data.
            try
            {
                var (transport, client) = await ConnectTls(loop, server);
                transport.Write("hello"u8);
                Assert.NotNull(await client.Lost);
                Assert.Equal(0, client.ReceivedCount);
            }
            catch (AuthenticationException)
            {
            }
            catch (IOException)
            {
            }

            Assert.False(seen.Done, "the server's application saw a connection that failed mutual TLS");
            // A client with a certificate still gets in.
            var options = ClientSsl();
            options.Ssl!.ClientCertificates = [TestCertificates.Client];
            var (good, goodClient) = await ConnectTls(loop, server, options);
            using var cert = await seen;
            good.Close();
            await goodClient.Lost;
        }, errors: new List<ExceptionContext>());
    }

    private static SslServerAuthenticationOptions MutualServerOptions()
    {
        var options = TestCertificates.ServerOptions();
        options.ClientCertificateRequired = true;
        options.CertificateChainPolicy = TestCertificates.TrustingCa();
        return options;
    }

    // ---- certificates refused ----------------------------------------------------------------

    public static TheoryData<string, string> BadServerCertificates => new()
    {
        { "self-signed", "UntrustedRoot" },
        { "expired", "NotTimeValid" },
        { "unknown CA", "PartialChain" },
        { "wrong host", "RemoteCertificateNameMismatch" },
    };

    private static X509Certificate2 CertificateFor(string kind) => kind switch
    {
        "self-signed" => TestCertificates.SelfSigned,
        "expired" => TestCertificates.Expired,
        "unknown CA" => TestCertificates.UnknownCaLeaf,
        "wrong host" => TestCertificates.ExampleOrg,
        _ => throw new ArgumentException(kind),
    };

    [Theory]
    [MemberData(nameof(BadServerCertificates))]
    public void BadServerCertificate_FailsTheConnect_SayingWhy_AndTheServerGoesOn(string kind, string reason)
    {
        Run(Kind, async loop =>
        {
            var bad = await TlsEchoServer(loop, TestCertificates.ServerOptions(CertificateFor(kind)));
            int made = 0;
            var ex = await Assert.ThrowsAsync<AuthenticationException>(async () =>
                await loop.CreateConnectionAsync(() => { made++; return new RecordingProtocol(loop); }, "127.0.0.1", PortOf(bad), ClientSsl()));
            Assert.Contains(reason, ex.Message + " " + ex.InnerException?.Message);
            Assert.Equal(1, made); // made, never connected: no ConnectionMade, no ConnectionLost
            Assert.True(await Eventually(() => Kind.ServerClients(bad) == 0), "the server kept the refused connection");
            await bad.DisposeAsync();

            // The same loop goes on serving good connections.
            await using var good = await TlsEchoServer(loop);
            var (transport, client) = await ConnectTls(loop, good);
            Assert.Equal(Pattern(10), await Echo(loop, transport, client, Pattern(10)));
            transport.Close();
            await client.Lost;
        }, errors: new List<ExceptionContext>());
    }

    [Fact]
    public void ByDefault_TheSystemTrustStoreDecides_AndOurTestCaIsNotInIt()
    {
        Run(Kind, async loop =>
        {
            await using var server = await TlsEchoServer(loop);
            var options = new ConnectionOptions { Ssl = new SslClientAuthenticationOptions { TargetHost = "localhost" } };
            var ex = await Assert.ThrowsAsync<AuthenticationException>(async () =>
                await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server), options));
            Assert.Matches("UntrustedRoot|PartialChain", ex.Message + " " + ex.InnerException?.Message);
        }, errors: new List<ExceptionContext>());
    }

    [Fact]
    public void CallersOwnValidation_IsTheOnlyWayToAcceptAnUntrustedCertificate()
    {
        Run(Kind, async loop =>
        {
            await using var server = await TlsEchoServer(loop, TestCertificates.ServerOptions(TestCertificates.SelfSigned));
            SslPolicyErrors? seen = null;
            var options = new ConnectionOptions
            {
                Ssl = new SslClientAuthenticationOptions
                {
                    TargetHost = "localhost",
                    // The caller's own rule: pin the one self-signed certificate it expects.
                    RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                    {
                        seen = errors;
                        return certificate is not null && certificate.GetCertHashString() == TestCertificates.SelfSigned.Thumbprint;
                    },
                },
            };
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server), options);
            Assert.NotNull(seen);
            Assert.NotEqual(SslPolicyErrors.None, seen);
            Assert.Equal(Pattern(10), await Echo(loop, transport, client, Pattern(10)));
            transport.Close();
            await client.Lost;
        });
    }

    [Fact]
    public void ServerNameDefaultsToTheHost_AndTheCallersOptionsAreNotChanged()
    {
        Run(Kind, async loop =>
        {
            await using var server = await loop.CreateServerAsync(static () => new EchoProtocol(), ["localhost"], 0,
                new ServerOptions { Ssl = TestCertificates.ServerOptions() });
            var options = ClientSsl(targetHost: null);
            var (transport, client) = await ConnectTls(loop, server, options, host: "localhost");
            Assert.Null(options.Ssl!.TargetHost);
            Assert.Equal("localhost", ((SslStream)transport.GetExtraInfo("ssl_object")!).TargetHostName);
            transport.Close();
            await client.Lost;
        });
    }

    // ---- small helpers -------------------------------------------------------------------------

    /// <summary>
    /// Makes the newest connection's server a slow reader on the in-memory loop, where a paused reader
    /// does not push back on the writer by itself (no kernel buffers fill): a no-op on real sockets.
    /// </summary>
    private protected static void SlowPeer(BaseEventLoop loop, bool slow)
    {
        if (loop is Tulip.Testing.MemoryEventLoop memory)
        {
            memory.Connections[^1].ClientTransport.PeerAcceptsWrites = !slow;
        }
    }

    /// <summary>Writes a greeting as soon as it is connected, and echoes.</summary>
    private sealed class GreetingProtocol(string greeting) : Protocol
    {
        private ITransport _transport = null!;

        public override void ConnectionMade(IBaseTransport transport)
        {
            _transport = (ITransport)transport;
            _transport.Write(System.Text.Encoding.ASCII.GetBytes(greeting));
        }

        public override void DataReceived(ReadOnlySpan<byte> data) => _transport.Write(data);
    }

    private sealed class GreetingRecorder(IEventLoop loop, string greeting) : RecordingProtocol(loop)
    {
        public override void ConnectionMade(IBaseTransport transport)
        {
            base.ConnectionMade(transport);
            ((ITransport)transport).Write(System.Text.Encoding.ASCII.GetBytes(greeting));
        }
    }

    /// <summary>Reports the client certificate the server's transport shows.</summary>
    private sealed class PeerCertProbe(Future<X509Certificate2?> seen) : Protocol
    {
        public override void ConnectionMade(IBaseTransport transport) =>
            seen.TrySetResult(transport.GetExtraInfo("peercert") as X509Certificate2);
    }
}

public sealed class EpollTlsContractTests() : TlsContractTests(LoopKinds.Epoll);

public sealed class PollTlsContractTests() : TlsContractTests(LoopKinds.Poll);

/// <summary>The completion loop (<see cref="ProactorEventLoop"/>).</summary>
public sealed class ProactorTlsContractTests() : TlsContractTests(LoopKinds.Proactor);

public sealed class MemoryTlsContractTests() : TlsContractTests(LoopKinds.Memory);
