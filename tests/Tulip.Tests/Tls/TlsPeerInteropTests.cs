using System.Net.Security;
using System.Security.Authentication;
using System.Text;
using Tulip.Tests.Transports;
using static Tulip.Tests.Tls.TlsPeers;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Tls;

/// <summary>
/// Tulip's TLS (client and server, in this process, on the suite's loop) against real peers: openssl
/// s_server/s_client at TLS 1.2 and 1.3, and Python's ssl with asyncio; 1 MiB byte-exact each way,
/// close_notify, and renegotiation asked for by a TLS 1.2 peer on either side (never a hang). Every
/// peer is killed in a finally (PeerProcess.Dispose). In the fd collection: child processes.
/// </summary>
[Collection(NativeFdCollection.Name)]
public abstract class TlsPeerInteropTests : LoopSuite, IDisposable
{
    private const int Size = (1 << 20) + 5;

    private readonly PemDirectory _pem = new();

    protected TlsPeerInteropTests(LoopKind kind) : base(kind)
    {
    }

    public void Dispose() => _pem.Dispose();

    private TestCertificates.PemFiles Pem => _pem.Files;

    private static SslProtocols Expected(string version) => version == "-tls1_2" ? SslProtocols.Tls12 : SslProtocols.Tls13;

    [Theory]
    [InlineData("-tls1_2")]
    [InlineData("-tls1_3")]
    public void TulipClient_OpensslServer_OneMebibyteEachWay(string version)
    {
        int port = FreePort();
        // -quiet: standard input is data, never a command; what the client sends goes to stdout as is.
        using var peer = SServer(port, Pem.LocalhostCert, Pem.LocalhostKey, version, "-quiet", "-naccept", "1");
        Run(Kind, async loop =>
        {
            await WaitListeningAsync(peer, port);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port,
                new ConnectionOptions { Ssl = TestCertificates.ClientOptions() });
            Assert.Equal(Expected(version), ((SslStream)transport.GetExtraInfo("ssl_object")!).SslProtocol);

            var up = Pattern(Size);
            transport.Write(up);
            Assert.True(await peer.WaitUntilAsync(p => p.OutputLength >= Size), $"s_server got {peer.OutputLength} of {Size} bytes: {peer}");
            Assert.True(up.AsSpan().SequenceEqual(peer.Output), "s_server received other bytes than were sent");

            var down = Pattern(Size - 1);
            await peer.FeedAsync(down, close: false);
            Assert.True(await client.WaitBytes(loop, down.Length), $"the client got {client.ReceivedCount} of {down.Length} bytes");
            Assert.True(down.AsSpan().SequenceEqual(client.Received), "the client received other bytes than s_server sent");

            // Our close_notify: s_server stops reading and closes its socket without answering with its
            // own (it frees the connection with the shutdown flags set), so the end is reported, never a hang.
            transport.Close();
            var lost = await client.Lost;
            Assert.True(lost is null or SslTruncationException or TimeoutError, $"unexpected end: {lost}");
            Assert.Empty(client.Errors);
        }, timeoutSeconds: Patience);
    }

    [Theory]
    [InlineData("-tls1_2")]
    [InlineData("-tls1_3")]
    public void OpensslClient_TulipServer_OneMebibyteEchoed(string version)
    {
        Run(Kind, async loop =>
        {
            var lost = loop.CreateFuture<Exception?>();
            SslProtocols negotiated = SslProtocols.None;
            await using var server = await loop.CreateServerAsync(() => new EchoThenClose(Size, lost, p => negotiated = p), ["127.0.0.1"], 0,
                new ServerOptions { Ssl = TestCertificates.ServerOptions() });
            // -quiet: data only, and it keeps reading after its input ends; our close_notify ends it.
            using var peer = SClient(PortOf(server), Pem.CaCert, version, "-quiet");
            var data = Pattern(Size);
            _ = peer.FeedAsync(data, close: false);
            Assert.True(await peer.WaitForExitAsync(), $"s_client did not end after our close_notify: {peer}");
            Assert.True(data.AsSpan().SequenceEqual(peer.Output), $"s_client got {peer.OutputLength} of {Size} bytes back: {peer}");
            Assert.Equal(0, peer.ExitCode);
            Assert.Equal(Expected(version), negotiated);
            var end = await lost;
            Assert.True(end is null or SslTruncationException, $"unexpected end on the server: {end}");
        }, timeoutSeconds: Patience);
    }

    [Fact]
    public void TulipClient_PythonSslServer_EchoAndCleanClose()
    {
        using var peer = PythonPeer(PythonServer, Pem.LocalhostCert, Pem.LocalhostKey, "echo");
        Run(Kind, async loop =>
        {
            int port = await peer.ReadPortAsync();
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port,
                new ConnectionOptions { Ssl = TestCertificates.ClientOptions() });
            var data = Pattern(Size);
            transport.Write(data);
            Assert.True(await client.WaitBytes(loop, Size), $"got {client.ReceivedCount} of {Size} bytes: {peer}");
            Assert.True(data.AsSpan().SequenceEqual(client.Received));
            transport.Close();
            Assert.Null(await client.Lost); // close_notify both ways: asyncio's sslproto answers ours
            Assert.Empty(client.Errors);
        }, timeoutSeconds: Patience);
    }

    [Fact]
    public void PythonSslClient_TulipServer_EchoAndCleanClose()
    {
        Run(Kind, async loop =>
        {
            await using var server = await loop.CreateServerAsync(static () => new EchoProtocol(), ["127.0.0.1"], 0,
                new ServerOptions { Ssl = TestCertificates.ServerOptions() });
            using var peer = PythonPeer(PythonClient, Text(PortOf(server)), Pem.CaCert, Text(Size));
            Assert.True(await peer.WaitForExitAsync(), $"the Python client hung: {peer}");
            Assert.True(peer.ExitCode == 0, $"the Python client failed: {peer}");
        }, timeoutSeconds: Patience);
    }

    /// <summary>
    /// s_server (TLS 1.2) sends a HelloRequest ('r' on its standard input). SslStream as a client
    /// renegotiates inside its read (AllowRenegotiation is true by default for clients): data sent
    /// after it still arrives.
    /// </summary>
    [Fact]
    public void Renegotiation_AskedByTheServer_IsHandledByTheClient()
    {
        int port = FreePort();
        using var peer = SServer(port, Pem.LocalhostCert, Pem.LocalhostKey, "-tls1_2", "-naccept", "1");
        Run(Kind, async loop =>
        {
            await WaitListeningAsync(peer, port);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port,
                new ConnectionOptions { Ssl = TestCertificates.ClientOptions() });
            transport.Write("before\n"u8);
            Assert.True(await peer.WaitUntilAsync(p => p.OutputText.Contains("before\n", StringComparison.Ordinal)), peer.ToString());
            await peer.FeedAsync("r\n"u8.ToArray(), close: false);
            Assert.True(await peer.WaitUntilAsync(p => p.OutputText.Contains("SSL_do_handshake", StringComparison.Ordinal)), peer.ToString());
            await peer.FeedAsync("after\n"u8.ToArray(), close: false);
            Assert.True(await client.WaitBytes(loop, "after\n".Length), $"nothing after the renegotiation: {peer}");
            Assert.Equal("after\n", Encoding.ASCII.GetString(client.Received));
            transport.Write("again\n"u8);
            Assert.True(await peer.WaitUntilAsync(p => p.OutputText.Contains("again\n", StringComparison.Ordinal)), peer.ToString());
            Assert.False(client.Lost.Done);
            transport.Abort();
            await client.Lost;
        }, timeoutSeconds: Patience);
    }

    /// <summary>
    /// s_client (TLS 1.2) asks to renegotiate ('R' on its standard input). SslStream as a server
    /// refuses it: the connection fails at once (ConnectionLost with an error, s_client sees the
    /// connection reset), no hang, and the server goes on serving the next client.
    /// </summary>
    [Fact]
    public void Renegotiation_AskedByTheClient_IsRefusedByTheServer_WhichKeepsServing()
    {
        Run(Kind, async loop =>
        {
            var lost = loop.CreateFuture<Exception?>();
            await using var server = await loop.CreateServerAsync(() => new EchoThenClose(int.MaxValue, lost, null), ["127.0.0.1"], 0,
                new ServerOptions { Ssl = TestCertificates.ServerOptions() });
            using (var peer = SClient(PortOf(server), Pem.CaCert, "-tls1_2"))
            {
                await peer.FeedAsync("hello\n"u8.ToArray(), close: false);
                Assert.True(await peer.WaitUntilAsync(p => p.OutputText.Contains("hello\n", StringComparison.Ordinal)), peer.ToString());
                await peer.FeedAsync("R\n"u8.ToArray(), close: false);
                Assert.True(await peer.WaitForExitAsync(), $"s_client still runs after asking to renegotiate: {peer}");
                Assert.Contains("RENEGOTIATING", peer.OutputText + peer.Error, StringComparison.Ordinal);
                Assert.NotEqual(0, peer.ExitCode);
                Assert.NotNull(await lost);
            }

            using var python = PythonPeer(PythonClient, Text(PortOf(server)), Pem.CaCert, Text(1000));
            Assert.True(await python.WaitForExitAsync(), python.ToString());
            Assert.True(python.ExitCode == 0, $"the server stopped serving: {python}");
        }, timeoutSeconds: Patience);
    }

    /// <summary>Echoes; once <c>size</c> bytes have been echoed it closes (close_notify). Reports its end and the protocol negotiated.</summary>
    private sealed class EchoThenClose(int size, Future<Exception?> lost, Action<SslProtocols>? negotiated) : Protocol
    {
        private ITransport _transport = null!;
        private long _echoed;

        public override void ConnectionMade(IBaseTransport transport)
        {
            _transport = (ITransport)transport;
            negotiated?.Invoke(((SslStream)transport.GetExtraInfo("ssl_object")!).SslProtocol);
        }

        public override void DataReceived(ReadOnlySpan<byte> data)
        {
            _transport.Write(data);
            _echoed += data.Length;
            if (_echoed >= size)
            {
                _transport.Close();
            }
        }

        public override bool EofReceived() => false;

        public override void PauseWriting() => _transport.PauseReading();

        public override void ResumeWriting() => _transport.ResumeReading();

        public override void ConnectionLost(Exception? exception) => lost.TrySetResult(exception);
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollTlsPeerInteropTests() : TlsPeerInteropTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollTlsPeerInteropTests() : TlsPeerInteropTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorTlsPeerInteropTests() : TlsPeerInteropTests(LoopKinds.Proactor);
