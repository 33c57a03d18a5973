using System.Net;
using System.Net.Sockets;
using System.Text;
using Tulip.Tests.Transports;
using static Tulip.Tests.Tls.TlsPeers;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Tls;

/// <summary>
/// scripts/tls-echo-server and scripts/tls-echo-client end to end, on the suite's loop (TULIP_LOOP),
/// against each other and against real peers (openssl s_client/s_server, Python's ssl): byte-exact
/// echoes up to 1 MiB, TLS 1.2 and 1.3, close_notify answered, a handshake that never finishes
/// dropped while others are served, certificates refused with what was wrong with them, and garbage
/// or silence ending the client with an error. Every process is killed in a finally.
/// In the fd collection: child processes.
/// </summary>
[Collection(NativeFdCollection.Name)]
public abstract class TlsEchoScriptTests : LoopSuite, IDisposable
{
    private const int MiB = 1 << 20;

    private readonly PemDirectory _pem = new();

    protected TlsEchoScriptTests(LoopKind kind) : base(kind)
    {
    }

    public void Dispose() => _pem.Dispose();

    private TestCertificates.PemFiles Pem => _pem.Files;

    /// <summary>Starts scripts/tls-echo-server and waits (bounded; the first run builds it) until it says it serves.</summary>
    private async Task<(PeerProcess Server, int Port)> StartServerAsync(params string[] extra)
    {
        int port = FreePort();
        var server = PeerProcess.Start(Script("tls-echo-server"), [Text(port), Pem.LocalhostCert, Pem.LocalhostKey, .. extra], Backend);
        try
        {
            Assert.True(await server.WaitUntilAsync(static p => p.Error.Contains("tls-echo-server: serving", StringComparison.Ordinal)),
                $"the server did not start: {server}");
            Assert.Contains($"serving TLS on 127.0.0.1:{port} ({Backend},", server.Error, StringComparison.Ordinal);
            return (server, port);
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    /// <summary>Runs scripts/tls-echo-client with <paramref name="input"/> on its standard input until it exits (bounded).</summary>
    private async Task<PeerProcess> RunClientAsync(byte[] input, params string[] args)
    {
        var client = PeerProcess.Start(Script("tls-echo-client"), args, Backend);
        try
        {
            await client.FeedAsync(input, close: true);
            Assert.True(await client.WaitForExitAsync(), $"the client hung: {client}");
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(16 * 1024 - 1)]
    [InlineData(16 * 1024 + 1)]
    [InlineData(MiB)]
    public async Task ScriptClient_ScriptServer_EchoIsByteExact(int size)
    {
        var (server, port) = await StartServerAsync();
        using (server)
        {
            var data = Pattern(size);
            using var client = await RunClientAsync(data, "localhost", Text(port), "--cafile", Pem.CaCert);
            Assert.True(client.ExitCode == 0, client.ToString());
            Assert.True(data.AsSpan().SequenceEqual(client.Output), $"{client.OutputLength} bytes came back of {size}");
            Assert.False(server.HasExited, server.ToString());
        }
    }

    [Theory]
    [InlineData("-tls1_2")]
    [InlineData("-tls1_3")]
    public async Task OpensslClient_ScriptServer_OneMebibyte(string version)
    {
        var (server, port) = await StartServerAsync();
        using (server)
        {
            // Data only (-quiet, -nocommands); it keeps its input open until the echo is back, then
            // its end of input makes it send close_notify and exit.
            using var peer = SClient(port, Pem.CaCert, version, "-quiet", "-no_ign_eof", "-nocommands");
            var data = Pattern(MiB);
            await peer.FeedAsync(data, close: false);
            Assert.True(await peer.WaitUntilAsync(p => p.OutputLength >= MiB), $"got {peer.OutputLength} of {MiB} bytes: {peer}");
            Assert.True(data.AsSpan().SequenceEqual(peer.Output), "s_client got other bytes back");
            peer.Stdin.Close();
            Assert.True(await peer.WaitForExitAsync(), peer.ToString());
            Assert.Equal(0, peer.ExitCode);
            Assert.False(server.HasExited, server.ToString());
        }
    }

    [Fact]
    public async Task PythonClient_ScriptServer_CloseNotifyIsAnswered()
    {
        var (server, port) = await StartServerAsync();
        using (server)
        {
            // unwrap(): our close_notify, then the server's; a server that only closed its socket fails it.
            using var peer = PythonPeer(PythonUnwrapClient, Text(port), Pem.CaCert, Text(MiB));
            Assert.True(await peer.WaitForExitAsync(), peer.ToString());
            Assert.True(peer.ExitCode == 0, peer.ToString());
            Assert.Contains("closed cleanly", peer.OutputText, StringComparison.Ordinal);

            using var asyncio = PythonPeer(PythonClient, Text(port), Pem.CaCert, Text(MiB));
            Assert.True(await asyncio.WaitForExitAsync(), asyncio.ToString());
            Assert.True(asyncio.ExitCode == 0, asyncio.ToString());
        }
    }

    [Fact]
    public async Task ScriptServer_DropsAHandshakeThatNeverFinishes_AndGarbage_AndKeepsServing()
    {
        var (server, port) = await StartServerAsync("--handshake-timeout", "1");
        using (server)
        {
            using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            using var garbage = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            using var gone = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await silent.ConnectAsync(IPAddress.Loopback, port);
            await garbage.ConnectAsync(IPAddress.Loopback, port);
            await gone.ConnectAsync(IPAddress.Loopback, port);
            await garbage.SendAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
            await gone.SendAsync(new byte[] { 0x16, 0x03, 0x01 }); // the start of a record, then away
            gone.Close();

            // Meanwhile a real client is served.
            var data = Pattern(100_000);
            using (var client = await RunClientAsync(data, "127.0.0.1", Text(port), "--cafile", Pem.CaCert))
            {
                Assert.True(client.ExitCode == 0, client.ToString());
                Assert.True(data.AsSpan().SequenceEqual(client.Output));
            }

            // The silent one is dropped once its handshake time is up, the garbage one at once (an alert, then the end).
            Assert.True(await EndsAsync(silent), "the silent client was never dropped");
            Assert.True(await EndsAsync(garbage), "the garbage client was never dropped");

            using (var after = await RunClientAsync(data, "localhost", Text(port), "--cafile", Pem.CaCert))
            {
                Assert.True(after.ExitCode == 0, after.ToString());
                Assert.True(data.AsSpan().SequenceEqual(after.Output));
            }

            Assert.False(server.HasExited, server.ToString());
        }
    }

    /// <summary>Reads until the server ends the connection (EOF or reset); false if it does not within the hang guard.</summary>
    private static async Task<bool> EndsAsync(Socket socket)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var buffer = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) > 0)
            {
                // an alert, perhaps: read on to the end
            }

            return true;
        }
        catch (SocketException)
        {
            return true; // reset: dropped
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    [Fact]
    public async Task ScriptClient_PythonSslServer_OneMebibyte()
    {
        using var peer = PythonPeer(PythonServer, Pem.LocalhostCert, Pem.LocalhostKey, "echo");
        int port = await peer.ReadPortAsync();
        var data = Pattern(MiB);
        using var client = await RunClientAsync(data, "localhost", Text(port), "--cafile", Pem.CaCert);
        Assert.True(client.ExitCode == 0, client.ToString());
        Assert.True(data.AsSpan().SequenceEqual(client.Output));
        Assert.DoesNotContain("note:", client.Error, StringComparison.Ordinal); // asyncio answers close_notify
    }

    public static TheoryData<string, string[], string> Refusals => new()
    {
        { "selfsigned", ["localhost", "--cafile", "ca"], "untrusted root: the certificate is self-signed" },
        { "expired", ["localhost", "--cafile", "ca"], "expired: the certificate was valid until" },
        { "localhost", ["localhost", "--cafile", "otherca"], "untrusted root" },
        { "localhost", ["localhost"], "untrusted root: no chain to the system trust store" },
        { "localhost", ["127.0.0.1", "--cafile", "ca", "--server-name", "example.org"], "name mismatch: the certificate is for localhost, 127.0.0.1, ::1, not example.org" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task ScriptClient_RefusesABadCertificate_SayingWhatIsWrong(string certificate, string[] args, string reason)
    {
        var (cert, key) = certificate switch
        {
            "selfsigned" => (Pem.SelfSignedCert, Pem.SelfSignedKey),
            "expired" => (Pem.ExpiredCert, Pem.ExpiredKey),
            _ => (Pem.LocalhostCert, Pem.LocalhostKey),
        };
        int port = FreePort();
        using var peer = SServer(port, cert, key, "-quiet");
        await WaitListeningAsync(peer, port);
        string host = args[0];
        var rest = args.Skip(1).Select(a => a switch { "ca" => Pem.CaCert, "otherca" => Pem.OtherCaCert, _ => a });
        using var client = await RunClientAsync("never sent"u8.ToArray(), [host, Text(port), .. rest]);
        Assert.True(client.ExitCode == 1, client.ToString());
        Assert.Empty(client.Output);
        Assert.Contains("certificate verification failed", client.Error, StringComparison.Ordinal);
        Assert.Contains(reason, client.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ScriptClient_GarbagePeer_EndsWithAHandshakeError()
    {
        using var peer = PythonPeer(PlainServer, "garbage");
        int port = await peer.ReadPortAsync();
        using var client = await RunClientAsync("hello"u8.ToArray(), "localhost", Text(port), "--timeout", "20");
        Assert.True(client.ExitCode == 1, client.ToString());
        Assert.Contains("TLS handshake failed", client.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ScriptClient_SilentPeer_EndsWithTheHandshakeTimeout()
    {
        using var peer = PythonPeer(PlainServer, "silent");
        int port = await peer.ReadPortAsync();
        using var client = await RunClientAsync("hello"u8.ToArray(), "localhost", Text(port), "--timeout", "1");
        Assert.True(client.ExitCode == 1, client.ToString());
        Assert.Contains("did not finish within 1 seconds", client.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ScriptClient_PeerThatNeverEchoes_EndsWithTheReadTimeout()
    {
        using var peer = PythonPeer(PythonServer, Pem.LocalhostCert, Pem.LocalhostKey, "mute");
        int port = await peer.ReadPortAsync();
        using var client = await RunClientAsync("hello"u8.ToArray(), "localhost", Text(port), "--cafile", Pem.CaCert, "--timeout", "1");
        Assert.True(client.ExitCode == 1, client.ToString());
        Assert.Contains("timed out: no data from the server for 1 s (0 of 5 bytes came back)", client.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ScriptClient_PeerThatClosesEarly_IsAnError()
    {
        using var peer = PythonPeer(PythonServer, Pem.LocalhostCert, Pem.LocalhostKey, "close-early");
        int port = await peer.ReadPortAsync();
        using var client = await RunClientAsync("hello"u8.ToArray(), "localhost", Text(port), "--cafile", Pem.CaCert);
        Assert.True(client.ExitCode == 1, client.ToString());
        Assert.Contains("the connection ended after 1 of 5 bytes came back", client.Error, StringComparison.Ordinal);
        Assert.Equal("h"u8.ToArray(), client.Output);
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollTlsEchoScriptTests() : TlsEchoScriptTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollTlsEchoScriptTests() : TlsEchoScriptTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorTlsEchoScriptTests() : TlsEchoScriptTests(LoopKinds.Proactor);
