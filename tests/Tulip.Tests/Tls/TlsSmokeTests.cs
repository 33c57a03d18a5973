using System.Text;
using Tulip.Streams;
using Tulip.Testing;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Tls;

/// <summary>
/// The first things TLS must do, the lead's checks beside the suites: a handshake and an exchange
/// over an in-memory pair on the virtual clock (no socket), and a TLS echo over real sockets.
/// </summary>
public sealed class TlsSmokeTests
{
    [Fact]
    public void ConnectedPair_Handshakes_Exchanges_AndClosesWithCloseNotify()
    {
        using var loop = new TestEventLoop();
        var client = new RecordingProtocol();
        var server = new RecordingProtocol();
        var clientWaiter = loop.CreateFuture<VoidResult>();
        var clientTls = new SslProtocol(loop, client, TestCertificates.ClientOptions(), clientWaiter);
        var serverTls = new SslProtocol(loop, server, TestCertificates.ServerOptions());
        _ = new ConnectedPair(loop, clientTls, serverTls);
        // SslStream takes the handshake's first step on the thread pool; the virtual-clock loop waits
        // for the loop's own off-loop work before it calls itself idle, so this is one deterministic run.
        loop.RunUntilIdle();
        Assert.True(clientWaiter.Done);
        clientWaiter.Result();
        Assert.Same(clientTls.AppTransport, client.Transport);
        client.Transport!.Write("hello over tls"u8);
        loop.RunUntilIdle();
        Assert.Equal("hello over tls", server.TakeReceivedText());
        server.Transport!.Write("and back"u8);
        loop.RunUntilIdle();
        Assert.Equal("and back", client.TakeReceivedText());
        client.Transport.Close();
        loop.RunUntilIdle();
        Assert.True(server.GotEof);
        Assert.True(server.IsConnectionLost);
        Assert.Null(server.LostException);
        Assert.True(client.IsConnectionLost);
        Assert.Null(client.LostException);
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void StreamsEcho_OverTls(string kind)
    {
        Run(kind, async loop =>
        {
            await using var server = await StreamConnections.StartServerAsync(async (reader, writer) =>
            {
                while (await reader.ReadLineAsync() is { Length: > 0 } line)
                {
                    writer.Write(line);
                    await writer.DrainAsync();
                }

                writer.Close();
            }, "127.0.0.1", 0, new ServerOptions { Ssl = TestCertificates.ServerOptions() });
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server),
                new ConnectionOptions { Ssl = TestCertificates.ClientOptions(targetHost: null) });
            Assert.IsType<System.Net.Security.SslStream>(writer.GetExtraInfo("ssl_object"));
            var big = Encoding.ASCII.GetBytes(new string((char)120, 50_000) + "\n");
            writer.Write("one\n"u8);
            writer.Write(big);
            await writer.DrainAsync();
            Assert.Equal("one\n", Encoding.ASCII.GetString(await reader.ReadLineAsync()));
            Assert.Equal(big, await reader.ReadLineAsync());
            writer.Close();
            await writer.WaitClosedAsync();
        });
    }
}

/// <summary>
/// Handshakes run inline on the loop thread (no thread hop), and ciphertext the stream writes from
/// another thread (an asynchronous TLS engine) still leaves from the loop thread, in order.
/// </summary>
public sealed class TlsThreadTests
{
    [Fact]
    public void Handshake_RunsOnTheLoopThread_WithNoWriteFromAnotherThread()
    {
        using var loop = new TestEventLoop();
        int loopThread = Environment.CurrentManagedThreadId;
        var clientTls = new SslProtocol(loop, new RecordingProtocol(), TestCertificates.ClientOptions(), loop.CreateFuture<VoidResult>());
        var serverTls = new SslProtocol(loop, new RecordingProtocol(), TestCertificates.ServerOptions());
        _ = new ConnectedPair(loop, clientTls, serverTls);
        loop.RunUntilIdle(); // one run: every step of the handshake ran inline here
        Assert.True(clientTls.AppTransport?.GetExtraInfo("ssl_object") is System.Net.Security.SslStream { IsAuthenticated: true });
        Assert.True(serverTls.AppTransport?.GetExtraInfo("ssl_object") is System.Net.Security.SslStream { IsAuthenticated: true });
        Assert.Equal(0, clientTls.WritesFromOtherThreads);
        Assert.Equal(0, serverTls.WritesFromOtherThreads);
        Assert.Equal(loopThread, Environment.CurrentManagedThreadId);
        clientTls.AppTransport!.Close();
        loop.RunUntilIdle();
    }

    [Fact]
    public void CiphertextWrittenOffTheLoopThread_IsSentByTheLoopThread_InOrder()
    {
        using var loop = new TestEventLoop();
        var tls = new SslProtocol(loop, new RecordingProtocol(), TestCertificates.ServerOptions());
        var wire = new MemoryTransport(loop, tls);
        loop.RunUntilIdle(); // ConnectionMade: the server handshake waits for a ClientHello
        var other = new Thread(() =>
        {
            tls.WriteBeneath("one "u8);
            tls.WriteBeneath("two "u8);
        });
        other.Start();
        other.Join();
        Assert.Equal("", wire.WrittenText); // held for the loop thread
        Assert.Equal(2, tls.WritesFromOtherThreads);
        tls.WriteBeneath("three"u8);        // a loop-thread write sends what came before it first
        Assert.Equal("one two three", wire.TakeWrittenText());
        loop.RunUntilIdle();                // the posted flush finds nothing left
        Assert.Equal("", wire.TakeWrittenText());
        wire.Abort();
        loop.RunUntilIdle();
    }
}
