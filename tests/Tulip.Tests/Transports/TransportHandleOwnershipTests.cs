using System.Net;
using System.Net.Sockets;
using Tulip;
using static Tulip.Tests.Transports.DatagramTestUtil;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// A transport holds its fd: what <c>GetExtraInfo("socket")</c> hands out cannot close it. Once,
/// disposing that socket freed the number, the next connection got it, and the first transport's
/// writes went to the second connection's peer while its Close removed the second one's registration.
/// These depend on the kernel handing out the lowest free fd number, so they run alone
/// (<see cref="NativeFdCollection"/>).
/// </summary>
public abstract class TransportHandleOwnershipTests : LoopSuite
{
    protected TransportHandleOwnershipTests(LoopKind kind) : base(kind)
    {
    }

    private static readonly string[] s_loopback = ["127.0.0.1"];

    [Fact]
    public void Stream_DisposingTheExtraInfoSocket_LeavesTheConnectionAlone()
    {
        Run(Kind, async loop =>
        {
            var peers = new List<RecordingProtocol>();
            await using var server = await loop.CreateServerAsync(() =>
            {
                var p = new RecordingProtocol(loop);
                peers.Add(p);
                return p;
            }, s_loopback, 0);
            // Warm up what .NET opens lazily on a first connection, so the fd count below is steady.
            var (warm, warmProtocol) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            warm.Close();
            await warmProtocol.Lost;
            Assert.True(await Eventually(() => peers.Count == 1 && peers[0].Lost.Done));
            var fdsBefore = TakeFds();
            int registrations = Kind.Registrations(loop);

            var (first, firstProtocol) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            var view = Assert.IsType<Socket>(first.GetExtraInfo("socket"));
            Assert.Same(view, first.GetExtraInfo("socket"));
            Assert.False(view.Blocking);
            int firstFd = (int)view.Handle;
            view.Dispose();
            Assert.Same(view, first.GetExtraInfo("socket"));

            var (second, secondProtocol) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            Assert.True(await Eventually(() => peers.Count == 3 && peers[2].Made.Done));
            var firstPeer = peers[1];
            var secondPeer = peers[2];
            Assert.NotEqual(firstFd, (int)((Socket)second.GetExtraInfo("socket")!).Handle); // the number was never freed

            first.Write("first's data"u8);
            second.Write("second's"u8);
            Assert.True(await firstPeer.WaitBytes(loop, "first's data".Length));
            Assert.True(await secondPeer.WaitBytes(loop, "second's".Length));
            Assert.Equal("first's data"u8.ToArray(), firstPeer.Received);
            Assert.Equal("second's"u8.ToArray(), secondPeer.Received);

            first.Close();
            Assert.Null(await firstProtocol.Lost);
            Assert.Null(await firstPeer.Lost);
            Assert.Null(first.GetExtraInfo("socket"));

            // The second connection's registration survived the first's Close: it still reads.
            secondPeer.Transport.Write("still there"u8);
            Assert.True(await secondProtocol.WaitBytes(loop, "still there".Length));
            Assert.Equal("still there"u8.ToArray(), secondProtocol.Received);
            Assert.False(secondProtocol.Lost.Done);
            Assert.Equal("first's data".Length, firstPeer.ReceivedCount);
            Assert.Equal("second's"u8.ToArray(), secondPeer.Received);

            second.Close();
            await secondProtocol.Lost;
            await secondPeer.Lost;
            Assert.True(await Eventually(fdsBefore.NoneAdded), fdsBefore.Describe());
            // Eventually: on a completion loop the closed transport's receive comes back (aborted) a moment after ConnectionLost.
            Assert.True(await Eventually(() => Kind.Registrations(loop) == registrations), $"{Kind.Registrations(loop)} registrations, {registrations} before");
            Assert.Empty(firstProtocol.Errors);
            Assert.Empty(secondProtocol.Errors);
        });
    }

    [Fact]
    public void Stream_DisposingTheExtraInfoSocket_KeepsTheConnectionOpenAndTheViewGoesWithTheTransport()
    {
        Run(Kind, async loop =>
        {
            var peerMade = loop.CreateFuture<RecordingProtocol>();
            await using var server = await loop.CreateServerAsync(() =>
            {
                var p = new RecordingProtocol(loop);
                peerMade.TrySetResult(p);
                return p;
            }, s_loopback, 0);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            var peer = await peerMade;

            var view = Assert.IsType<Socket>(transport.GetExtraInfo("socket"));
            Assert.Equal(transport.GetExtraInfo("sockname"), view.LocalEndPoint); // a view of this connection
            view.Dispose();
            Assert.Throws<ObjectDisposedException>(() => view.Available);

            // Both directions still work, and the peer saw no end of the connection.
            transport.Write("after the view's dispose"u8);
            Assert.True(await peer.WaitBytes(loop, "after the view's dispose".Length));
            peer.Transport.Write("reply"u8);
            Assert.True(await client.WaitBytes(loop, 5));
            Assert.False(peer.Eof.Done);
            Assert.False(client.Lost.Done);
            Assert.Same(view, transport.GetExtraInfo("socket"));

            transport.Close();
            Assert.Null(await client.Lost);
            Assert.Null(await peer.Lost);
            Assert.Null(transport.GetExtraInfo("socket"));
            Assert.Equal("reply"u8.ToArray(), client.Received);
            Assert.Empty(client.Errors);
            Assert.Empty(peer.Errors);
        });
    }

    [Fact]
    public void Datagram_DisposingTheExtraInfoSocket_LeavesTheEndpointAlone()
    {
        Run(Kind, async loop =>
        {
            var (r1, p1) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, null);
            var (r2, p2) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, null);
            var (warm, warmProtocol) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), null, SockName(r1));
            warm.Close();
            await warmProtocol.Lost;
            await Eventually(() => false, 5);
            var fdsBefore = TakeFds();
            int registrations = Kind.Registrations(loop);

            var (first, firstProtocol) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), null, SockName(r1));
            var view = Assert.IsType<Socket>(first.GetExtraInfo("socket"));
            int firstFd = (int)view.Handle;
            view.Dispose();

            var (second, secondProtocol) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), null, SockName(r2));
            Assert.NotEqual(firstFd, (int)((Socket)second.GetExtraInfo("socket")!).Handle);

            first.SendTo("to r1"u8);
            second.SendTo("to r2"u8);
            Assert.True(await p1.WaitDatagrams(1));
            Assert.True(await p2.WaitDatagrams(1));
            Assert.Equal("to r1"u8.ToArray(), Assert.Single(p1.Datagrams).Data);
            Assert.Equal("to r2"u8.ToArray(), Assert.Single(p2.Datagrams).Data);

            first.Close();
            Assert.Null(await firstProtocol.Lost);

            // The second endpoint still receives: its registration survived the first's Close.
            r2.SendTo("back"u8, SockName(second));
            Assert.True(await secondProtocol.WaitDatagrams(1));
            Assert.Equal("back"u8.ToArray(), Assert.Single(secondProtocol.Datagrams).Data);
            Assert.Single(p1.Datagrams);

            second.Close();
            await secondProtocol.Lost;
            Assert.True(await Eventually(fdsBefore.NoneAdded), fdsBefore.Describe());
            // Eventually: on a completion loop the closed transport's receive comes back (aborted) a moment after ConnectionLost.
            Assert.True(await Eventually(() => Kind.Registrations(loop) == registrations), $"{Kind.Registrations(loop)} registrations, {registrations} before");
            r1.Close();
            r2.Close();
            await p1.Lost;
            await p2.Lost;
            Assert.Empty(firstProtocol.Errors);
            Assert.Empty(secondProtocol.Errors);
        });
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollTransportHandleOwnershipTests() : TransportHandleOwnershipTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollTransportHandleOwnershipTests() : TransportHandleOwnershipTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorTransportHandleOwnershipTests() : TransportHandleOwnershipTests(LoopKinds.Proactor);
