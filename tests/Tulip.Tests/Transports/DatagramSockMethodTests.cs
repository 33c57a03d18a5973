using System.Net;
using System.Net.Sockets;
using Tulip;
using static Tulip.Tests.Transports.DatagramTestUtil;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// The PEP's datagram socket methods (<c>sock_recvfrom</c>, <c>sock_recvfrom_into</c>,
/// <c>sock_sendto</c>) on every loop: UDP and UNIX datagrams with their senders, cancellation at
/// the await (the socket then still receives what comes next), ICMP errors, and bad arguments.
/// </summary>
public abstract class DatagramSockMethodTests : LoopSuite
{
    protected DatagramSockMethodTests(LoopKind kind) : base(kind)
    {
    }

    private static Socket Udp(bool bind = true)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { Blocking = false };
        if (bind)
        {
            s.Bind(AnyLoopback);
        }

        return s;
    }

    [Fact]
    public void SendToAndRecvFrom_Udp_GiveTheDatagramAndItsSender()
    {
        Run(Kind, async loop =>
        {
            using var a = Udp();
            using var b = Udp();
            var receiving = loop.SockRecvFromAsync(b, new byte[100]);
            Assert.Equal(5, await loop.SockSendToAsync(a, "hello"u8.ToArray(), b.LocalEndPoint!));
            var (count, from) = await receiving;
            Assert.Equal(5, count);
            Assert.Equal(a.LocalEndPoint, from);

            // An empty datagram is a datagram.
            Assert.Equal(0, await loop.SockSendToAsync(a, ReadOnlyMemory<byte>.Empty, b.LocalEndPoint!));
            var (none, _) = await loop.SockRecvFromAsync(b, new byte[100]);
            Assert.Equal(0, none);

            // Into a slice of the caller's buffer, at most count bytes.
            var buffer = new byte[16];
            await loop.SockSendToAsync(a, "world"u8.ToArray(), b.LocalEndPoint!);
            var (cut, sender) = await loop.SockRecvFromIntoAsync(b, buffer.AsMemory(4), 3);
            Assert.Equal(3, cut);
            Assert.Equal(a.LocalEndPoint, sender);
            Assert.Equal("wor"u8.ToArray(), buffer[4..7]);
            Assert.Equal(0, buffer[7]);
        });
    }

    [Fact]
    public void SendToAndRecvFrom_Unix_GiveTheSendersPath()
    {
        using var dir = new TempDir();
        Run(Kind, async loop =>
        {
            var aPath = new UnixDomainSocketEndPoint(dir.File("a.sock"));
            var bPath = new UnixDomainSocketEndPoint(dir.File("b.sock"));
            using var a = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified) { Blocking = false };
            using var b = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified) { Blocking = false };
            a.Bind(aPath);
            b.Bind(bPath);
            var big = Pattern(100_000); // more than 64 KiB: a UNIX datagram may be
            var receiving = loop.SockRecvFromAsync(b, new byte[200_000]);
            Assert.Equal(big.Length, await loop.SockSendToAsync(a, big, bPath));
            var (count, from) = await receiving;
            Assert.Equal(big.Length, count);
            Assert.Equal(aPath.ToString(), from.ToString());
        });
    }

    [Fact]
    public void RecvFrom_CancelledAtTheAwait_ThrowsCancelledError_AndTheSocketStillReceives()
    {
        Run(Kind, async loop =>
        {
            using var a = Udp();
            using var b = Udp();
            var byTask = loop.SockRecvFromAsync(b, new byte[100]);
            await Tasks.Sleep(0);
            Assert.False(byTask.Done);
            byTask.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await byTask);

            using var cts = new CancellationTokenSource();
            var byToken = loop.SockRecvFromAsync(b, new byte[100], cts.Token);
            await Tasks.Sleep(0);
            cts.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await byToken);

            // Neither cancelled receive takes the next datagram.
            await loop.SockSendToAsync(a, "after"u8.ToArray(), b.LocalEndPoint!);
            var buffer = new byte[100];
            var (n, from) = await loop.SockRecvFromAsync(b, buffer);
            Assert.Equal("after"u8.ToArray(), buffer[..n]);
            Assert.Equal(a.LocalEndPoint, from);
        });
    }

    [Fact]
    public void RecvFrom_OnAConnectedSocket_ToAClosedPort_ThrowsConnectionRefused()
    {
        Run(Kind, async loop =>
        {
            var closed = new IPEndPoint(IPAddress.Loopback, FreeUdpPort());
            using var client = Udp();
            client.Connect(closed);
            var receiving = loop.SockRecvFromAsync(client, new byte[100]);
            await loop.SockSendToAsync(client, "anyone?"u8.ToArray(), closed);
            var refused = await Assert.ThrowsAsync<SocketException>(async () => await receiving);
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        });
    }

    [Fact]
    public void BadArguments_AreRefused()
    {
        Run(Kind, async loop =>
        {
            using var blocking = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            blocking.Bind(AnyLoopback);
            var recv = await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockRecvFromAsync(blocking, new byte[10]));
            Assert.Contains("non-blocking", recv.Message);
            var send = await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockSendToAsync(blocking, new byte[1], AnyLoopback));
            Assert.Contains("non-blocking", send.Message);

            using var open = Udp();
            await Assert.ThrowsAsync<ArgumentNullException>(async () => await loop.SockSendToAsync(open, new byte[1], null!));
            Assert.Throws<ArgumentOutOfRangeException>(() => loop.SockRecvFromIntoAsync(open, new byte[4], 5));
            Assert.Throws<ArgumentOutOfRangeException>(() => loop.SockRecvFromIntoAsync(open, new byte[4], -1));
        });
    }
}

public sealed class EpollDatagramSockMethodTests() : DatagramSockMethodTests(LoopKinds.Epoll);

public sealed class PollDatagramSockMethodTests() : DatagramSockMethodTests(LoopKinds.Poll);

public sealed class ProactorDatagramSockMethodTests() : DatagramSockMethodTests(LoopKinds.Proactor);
