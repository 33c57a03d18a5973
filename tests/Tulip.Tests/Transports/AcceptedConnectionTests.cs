using System.Net;
using System.Net.Sockets;
using Tulip;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// The server side of a connection, which the selector loop accepts with accept4(2) into a bare fd
/// (no <see cref="Socket"/> is made unless asked for): the same extra info, options and endings as
/// a connection made from a <see cref="Socket"/>, and a "socket" that does not own the fd.
/// </summary>
public abstract class AcceptedConnectionTests : LoopSuite
{
    protected AcceptedConnectionTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>Serves one connection on <paramref name="host"/> and returns both ends (server side first).</summary>
    private static async LoopTask<(Server Server, ITransport ServerSide, RecordingProtocol ServerProtocol, ITransport Client, RecordingProtocol ClientProtocol)> Pair(
        BaseEventLoop loop, string host)
    {
        RecordingProtocol? serverSide = null;
        var server = await loop.CreateServerAsync(() => serverSide = new RecordingProtocol(loop), [host], 0);
        var (client, clientProtocol) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
        Assert.True(await Eventually(() => serverSide is not null));
        var serverTransport = await serverSide!.Made;
        return (server, serverTransport, serverSide, client, clientProtocol);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("0.0.0.0")]
    public void ExtraInfo_IsTheClientsAddressesSwapped(string host)
    {
        Run(Kind, async loop =>
        {
            var (server, serverSide, _, client, _) = await Pair(loop, host);
            await using var _server = server;
            var clientSocket = (Socket)client.GetExtraInfo("socket")!;
            // A wildcard listener's connections name the address they came in on, not 0.0.0.0.
            Assert.Equal(clientSocket.RemoteEndPoint, Assert.IsType<IPEndPoint>(serverSide.GetExtraInfo("sockname")));
            Assert.Equal(clientSocket.LocalEndPoint, Assert.IsType<IPEndPoint>(serverSide.GetExtraInfo("peername")));
            var socket = Assert.IsType<Socket>(serverSide.GetExtraInfo("socket"));
            Assert.Same(socket, serverSide.GetExtraInfo("socket"));
            Assert.Equal(clientSocket.LocalEndPoint, socket.RemoteEndPoint);
            Assert.True(socket.NoDelay, "ServerOptions.NoDelay defaults to true");
            Assert.False(socket.Blocking);
            Assert.Equal("x", serverSide.GetExtraInfo("nope", "x"));
            client.Close();
        });
    }

    [Fact]
    public void PeerName_StaysAfterTheTransportCloses()
    {
        Run(Kind, async loop =>
        {
            var (server, serverSide, serverProtocol, client, _) = await Pair(loop, "127.0.0.1");
            await using var _server = server;
            var clientAddress = ((Socket)client.GetExtraInfo("socket")!).LocalEndPoint;
            client.Close();
            Assert.Null(await serverProtocol.Lost);
            // Asked for the first time after the fd is closed: kept from accept4, as asyncio keeps its extra info.
            var peer = Assert.IsType<IPEndPoint>(serverSide.GetExtraInfo("peername"));
            Assert.Equal(clientAddress, peer);
            Assert.Same(peer, serverSide.GetExtraInfo("peername"));
        });
    }

    [Fact]
    public void Fd_IsNonBlockingAndCloseOnExec()
    {
        Run(Kind, async loop =>
        {
            var (server, serverSide, _, client, _) = await Pair(loop, "127.0.0.1");
            await using var _server = server;
            int fd = (int)((Socket)serverSide.GetExtraInfo("socket")!).Handle;
            Assert.NotEqual(0, Interop.Fcntl(fd, Interop.F_GETFD) & Interop.FD_CLOEXEC);
            Assert.NotEqual(0, Interop.Fcntl(fd, Interop.F_GETFL) & 0x800); // O_NONBLOCK
            client.Close();
        });
    }

    [Fact]
    public void SocketFromExtraInfo_DisposedByTheCaller_LeavesTheConnectionOpen()
    {
        Run(Kind, async loop =>
        {
            var (server, serverSide, serverProtocol, client, clientProtocol) = await Pair(loop, "127.0.0.1");
            await using var _server = server;
            var socket = (Socket)serverSide.GetExtraInfo("socket")!;
            socket.Dispose();
            client.Write("ping"u8);
            Assert.True(await serverProtocol.WaitBytes(loop, 4));
            serverSide.Write("pong"u8);
            Assert.True(await clientProtocol.WaitBytes(loop, 4));
            Assert.Equal("pong"u8.ToArray(), clientProtocol.Received);
            serverSide.Close();
            Assert.Null(await serverProtocol.Lost);
            Assert.True(await clientProtocol.Eof);
            client.Close();
        });
    }

    [Fact]
    public void SocketFromExtraInfo_IsDisposedWhenTheTransportCloses()
    {
        Run(Kind, async loop =>
        {
            var (server, serverSide, serverProtocol, client, _) = await Pair(loop, "127.0.0.1");
            await using var _server = server;
            var socket = (Socket)serverSide.GetExtraInfo("socket")!;
            client.Close();
            Assert.Null(await serverProtocol.Lost);
            Assert.Throws<ObjectDisposedException>(() => socket.Available);
        });
    }

    [Fact]
    public void WriteEof_SendsEndOfStream_ReadingGoesOn()
    {
        Run(Kind, async loop =>
        {
            var (server, serverSide, serverProtocol, client, clientProtocol) = await Pair(loop, "127.0.0.1");
            await using var _server = server;
            clientProtocol.KeepOpenOnEof = true;
            serverSide.Write("bye"u8);
            serverSide.WriteEof();
            Assert.True(await clientProtocol.Eof);
            Assert.Equal("bye"u8.ToArray(), clientProtocol.Received);
            client.Write("still"u8);
            Assert.True(await serverProtocol.WaitBytes(loop, 5));
            client.Close();
            Assert.Null(await serverProtocol.Lost);
        });
    }

    [Fact]
    public void Abort_ResetsThePeer()
    {
        Run(Kind, async loop =>
        {
            var (server, serverSide, serverProtocol, _, clientProtocol) = await Pair(loop, "127.0.0.1");
            await using var _server = server;
            serverSide.Abort();
            Assert.Null(await serverProtocol.Lost);
            var ex = Assert.IsType<SocketException>(await clientProtocol.Lost);
            Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
        });
    }

    [Fact]
    public void UnixServer_ExtraInfo_NamesThePath()
    {
        string path = Path.Combine(Path.GetTempPath(), $"tulip-{Guid.NewGuid():N}.sock");
        Run(Kind, async loop =>
        {
            RecordingProtocol? serverSide = null;
            await using var server = await loop.CreateUnixServerAsync(() => serverSide = new RecordingProtocol(loop), path);
            var (client, _) = await loop.CreateUnixConnectionAsync(() => new RecordingProtocol(loop), path);
            Assert.True(await Eventually(() => serverSide is not null));
            var serverTransport = await serverSide!.Made;
            Assert.Equal(path, Assert.IsType<UnixDomainSocketEndPoint>(serverTransport.GetExtraInfo("sockname")).ToString());
            Assert.IsType<UnixDomainSocketEndPoint>(serverTransport.GetExtraInfo("peername"));
            Assert.Equal(AddressFamily.Unix, ((Socket)serverTransport.GetExtraInfo("socket")!).AddressFamily);
            client.Close();
            Assert.Null(await serverSide.Lost);
        });
    }

    [Fact]
    public void ServerClients_LeaveTheListFromAnyPlace_AndCloseClientsReachesTheRest()
    {
        Run(Kind, async loop =>
        {
            var made = new List<RecordingProtocol>();
            await using var server = await loop.CreateServerAsync(() =>
            {
                var p = new RecordingProtocol(loop);
                made.Add(p);
                return p;
            }, ["127.0.0.1"], 0);
            var clients = new List<ITransport>();
            for (int i = 0; i < 4; i++)
            {
                var (client, _) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
                clients.Add(client);
                Assert.True(await Eventually(() => made.Count == i + 1));
                await made[i].Made;
            }

            Assert.Equal(4, Kind.ServerClients(server));
            // The list is newest first: lose one from the middle, then the newest and the oldest.
            clients[1].Close();
            Assert.Null(await made[1].Lost);
            Assert.Equal(3, Kind.ServerClients(server));
            clients[3].Close();
            Assert.Null(await made[3].Lost);
            clients[0].Close();
            Assert.Null(await made[0].Lost);
            Assert.Equal(1, Kind.ServerClients(server));

            server.CloseClients();
            Assert.Null(await made[2].Lost);
            Assert.Equal(0, Kind.ServerClients(server));
            server.Close();
            await server.WaitClosedAsync();
            clients[2].Close();
        });
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollAcceptedConnectionTests() : AcceptedConnectionTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollAcceptedConnectionTests() : AcceptedConnectionTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorAcceptedConnectionTests() : AcceptedConnectionTests(LoopKinds.Proactor);
