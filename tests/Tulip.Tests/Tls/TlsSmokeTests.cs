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
        // SslStream runs parts of the handshake on the thread pool and hands them back with
        // CallSoonThreadSafe: run the loop until the handshake is back (bounded: never a hang).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!clientWaiter.Done && DateTime.UtcNow < deadline)
        {
            loop.RunUntilIdle();
            Thread.Sleep(1);
        }

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
