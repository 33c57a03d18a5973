using System.Net;
using System.Net.Sockets;
using Tulip;
using Tulip.Testing;

namespace Tulip.Tests.Testing;

public class MemoryEventLoopTests
{
    private sealed class Echo : Protocol
    {
        private ITransport? _transport;
        public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;
        public override void DataReceived(ReadOnlySpan<byte> data) => _transport!.Write(data);
    }

    /// <summary>Application code, written against IEventLoop only.</summary>
    private static async LoopTask<string> EchoRoundTrip(IEventLoop loop, int port)
    {
        var (transport, protocol) = await loop.CreateConnectionAsync(() => new RecordingProtocol(), "echo.example", port);
        transport.Write("ping"u8);
        while (protocol.ReceivedText.Length < 4)
        {
            await Tasks.Sleep(0.01);
        }

        transport.Close();
        return protocol.ReceivedText;
    }

    [Fact]
    public void ApplicationCodeConnectsToAServerInMemory()
    {
        using var loop = new MemoryEventLoop();
        string reply = loop.RunUntilComplete(async () =>
        {
            await using var server = await loop.CreateServerAsync(() => new Echo(), ["echo.example"], 7);
            return await EchoRoundTrip(loop, 7);
        });
        Assert.Equal("ping", reply);
        Assert.Single(loop.Connections);
        Assert.Equal(new DnsEndPoint("echo.example", 7), loop.Connections[0].ClientTransport.GetExtraInfo("peername"));
    }

    [Fact]
    public void NothingListeningMeansRefused()
    {
        using var loop = new MemoryEventLoop();
        var ex = Assert.Throws<SocketException>(() => loop.RunUntilComplete(() => EchoRoundTrip(loop, 9)));
        Assert.Equal(SocketError.ConnectionRefused, ex.SocketErrorCode);
    }

    [Fact]
    public void RefuseConnectionsInjectsARefusalWhileAServerListens()
    {
        using var loop = new MemoryEventLoop();
        loop.RefuseConnections("echo.example", 7);
        var ex = Assert.Throws<SocketException>(() => loop.RunUntilComplete(async () =>
        {
            await using var server = await loop.CreateServerAsync(() => new Echo(), null, 7);
            return await EchoRoundTrip(loop, 7);
        }));
        Assert.Equal(SocketError.ConnectionRefused, ex.SocketErrorCode);
    }

    [Fact]
    public void PortZeroPicksAPortAndAnyHostMatches()
    {
        using var loop = new MemoryEventLoop();
        string reply = loop.RunUntilComplete(async () =>
        {
            var server = (MemoryServer)await loop.CreateServerAsync(() => new Echo(), null, 0);
            Assert.NotEqual(0, server.Port);
            Assert.Empty(server.Sockets);
            string r = await EchoRoundTrip(loop, server.Port);
            server.Close();
            await server.WaitClosedAsync();
            return r;
        });
        Assert.Equal("ping", reply);
    }

    [Fact]
    public void TheSameAddressTwiceIsInUse()
    {
        using var loop = new MemoryEventLoop();
        var ex = Assert.Throws<SocketException>(() => loop.RunUntilComplete(async () =>
        {
            await loop.CreateServerAsync(() => new Echo(), null, 80);
            await loop.CreateServerAsync(() => new Echo(), null, 80);
        }));
        Assert.Equal(SocketError.AddressAlreadyInUse, ex.SocketErrorCode);
    }

    [Fact]
    public void FaultsCanBeSetOnEachNewConnection()
    {
        using var loop = new MemoryEventLoop { ConnectionCreated = pair => pair.ResetAt(PairSide.Client, 2) };
        var lost = loop.RunUntilComplete(async () =>
        {
            await loop.CreateServerAsync(() => new Echo(), null, 7);
            var (transport, protocol) = await loop.CreateConnectionAsync(() => new RecordingProtocol(), "h", 7);
            transport.Write("ping"u8);
            while (!protocol.IsConnectionLost)
            {
                await Tasks.Sleep(1);
            }

            return protocol.LostException;
        });
        Assert.IsType<SocketException>(lost);
    }

    [Fact]
    public void WaitClosedWaitsForTheAcceptedConnections()
    {
        using var loop = new MemoryEventLoop();
        var server = (MemoryServer)loop.RunUntilComplete(async () => await loop.CreateServerAsync(() => new Echo(), null, 7));
        var client = loop.RunUntilComplete(async () => (await loop.CreateConnectionAsync(() => new RecordingProtocol(), "h", 7)).Protocol);
        loop.RunUntilIdle();
        Assert.Single(server.Clients);

        server.Close();
        var closed = loop.CreateTask(() => server.WaitClosedAsync());
        loop.RunUntilIdle();
        Assert.False(closed.Done);
        server.CloseClients();
        loop.RunUntilIdle();
        Assert.True(closed.Done);
        Assert.True(client.IsConnectionLost);
    }

    [Fact]
    public void ServeForeverEndsWhenTheServerCloses()
    {
        using var loop = new MemoryEventLoop();
        var server = loop.RunUntilComplete(async () => await loop.CreateServerAsync(() => new Echo(), null, 7, new ServerOptions { StartServing = false }));
        Assert.False(server.IsServing);
        var serving = loop.CreateTask(() => server.ServeForeverAsync());
        loop.RunUntilIdle();
        Assert.True(server.IsServing);
        loop.CallLater(3600, server.Close);
        loop.Advance(3600);
        Assert.True(serving.Done);
    }
}
