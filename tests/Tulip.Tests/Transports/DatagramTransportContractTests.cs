using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Tulip;
using Xunit.Abstractions;
using static Tulip.Tests.Transports.DatagramTestUtil;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// The datagram-transport contract (issue 6), written once and bound to every backend: UDP and UNIX
/// datagram endpoints, boundaries and sizes, many datagrams, ICMP errors, broadcast, flow control,
/// close and abort, and bad input. Each test runs its own loop.
/// </summary>
public abstract class DatagramTransportContractTests : LoopSuite
{
    protected DatagramTransportContractTests(LoopKind kind, ITestOutputHelper output) : base(kind)
    {
        Output = output;
    }

    protected ITestOutputHelper Output { get; }

    private static LoopTask<(IDatagramTransport Transport, RecordingDatagramProtocol Protocol)> Endpoint(BaseEventLoop loop,
        EndPoint? local, EndPoint? remote = null, DatagramOptions? options = null) =>
        loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), local, remote, options);

    /// <summary>An endpoint that sends every datagram back to its sender.</summary>
    private static LoopTask<(IDatagramTransport Transport, RecordingDatagramProtocol Protocol)> EchoEndpoint(BaseEventLoop loop, EndPoint local) =>
        loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop) { OnDatagram = static (p, d, from) => p.Transport.SendTo(d, from) }, local, null);

    [Fact]
    public void LocalEndpoint_HasExtraInfoAndDefaults()
    {
        Run(Kind, async loop =>
        {
            var (transport, protocol) = await Endpoint(loop, AnyLoopback);
            Assert.Same(transport, protocol.Transport);
            var socket = Assert.IsType<Socket>(transport.GetExtraInfo("socket"));
            Assert.Equal(SocketType.Dgram, socket.SocketType);
            Assert.False(socket.Blocking);
            var name = SockName(transport);
            Assert.Equal(IPAddress.Loopback, name.Address);
            Assert.NotEqual(0, name.Port);
            Assert.Null(transport.GetExtraInfo("peername"));
            Assert.Equal("x", transport.GetExtraInfo("nope", "x"));
            Assert.Equal((16 * 1024, 64 * 1024), transport.GetWriteBufferLimits());
            Assert.Equal(0, transport.GetWriteBufferSize());
            Assert.False(socket.EnableBroadcast);
            Assert.False(transport.IsClosing);
            transport.Close();
            Assert.True(transport.IsClosing);
            Assert.Null(await protocol.Lost);
            Assert.Throws<ObjectDisposedException>(() => socket.LocalEndPoint);
            Assert.Empty(protocol.Errors);
        });
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(1472)]
    [InlineData(1473)]
    [InlineData(9000)]
    [InlineData(32 * 1024)]
    [InlineData(60 * 1024)]
    [InlineData(65507)]
    public void Datagram_ArrivesWhole_WithItsSender(int size)
    {
        Run(Kind, async loop =>
        {
            var (a, pa) = await Endpoint(loop, AnyLoopback);
            var (b, pb) = await Endpoint(loop, AnyLoopback);
            var data = Pattern(size);
            a.SendTo(data, SockName(b));
            a.SendTo(data.AsSpan(0, size / 2), SockName(b));
            Assert.True(await pb.WaitDatagrams(2));
            Assert.Equal(data, pb.Datagrams[0].Data);
            Assert.Equal(data.AsSpan(0, size / 2).ToArray(), pb.Datagrams[1].Data);
            Assert.Equal(SockName(a), pb.Datagrams[0].From);
            Assert.Empty(pb.ErrorsReceived);
            a.Close();
            b.Close();
            await pa.Lost;
            await pb.Lost;
            Assert.Empty(pa.Errors);
            Assert.Empty(pb.Errors);
        });
    }

    [Fact]
    public void ManySizes_OneDatagramPerSend_NeverMergedOrSplit()
    {
        Run(Kind, async loop =>
        {
            var (server, ps) = await EchoEndpoint(loop, AnyLoopback);
            var (client, pc) = await Endpoint(loop, AnyLoopback, SockName(server));
            // Ping-pong, one in flight at a time: a full receive buffer cannot drop any.
            int[] sizes = [0, 1, 2, 3, 100, 511, 512, 1000, 4096, 8191, 20000, 40000, 61440];
            for (int i = 0; i < sizes.Length; i++)
            {
                client.SendTo(Pattern(sizes[i]));
                Assert.True(await pc.WaitDatagrams(i + 1));
                Assert.Equal(Pattern(sizes[i]), pc.Datagrams[i].Data);
            }

            Assert.Equal(sizes.Length, ps.Datagrams.Count);
            Assert.Equal(sizes, ps.Datagrams.Select(d => d.Data.Length));
            // Every datagram from the one client is handed the same cached address object.
            Assert.All(ps.Datagrams, d => Assert.Same(ps.Datagrams[0].From, d.From));
            client.Close();
            server.Close();
            await pc.Lost;
            await ps.Lost;
        });
    }

    [Fact]
    public void TenThousandDatagrams_LossesCountedNoneCorrupted()
    {
        const int count = 10_000;
        const int size = 64;
        int received = 0, duplicates = 0;
        Run(Kind, async loop =>
        {
            var (receiver, pr) = await Endpoint(loop, AnyLoopback);
            var (sender, psender) = await Endpoint(loop, AnyLoopback, SockName(receiver));
            var seen = new bool[count];
            var buffer = new byte[size];
            for (int i = 0; i < count; i++)
            {
                Fill(buffer, i);
                sender.SendTo(buffer);
                if (i % 16 == 15)
                {
                    await Tasks.Sleep(0); // let the receiver read: the test is about integrity, not about overrunning it
                }
            }

            // A marker after the last one: once it arrives, everything sent before it has arrived or been dropped.
            var marker = new byte[1];
            Assert.True(await Eventually(() =>
            {
                sender.SendTo(marker);
                return pr.Datagrams.Count > 0 && pr.Datagrams[^1].Data.Length == 1;
            }, 5000), "the marker datagram never arrived");
            foreach (var (data, from) in pr.Datagrams)
            {
                if (data.Length == 1)
                {
                    continue;
                }

                Assert.Equal(size, data.Length); // never merged, never split
                int seq = BinaryPrimitives.ReadInt32LittleEndian(data);
                Assert.InRange(seq, 0, count - 1);
                Fill(buffer, seq);
                Assert.Equal(buffer, data); // never corrupted
                Assert.Equal(SockName(sender), from);
                if (seen[seq])
                {
                    duplicates++;
                }

                seen[seq] = true;
                received++;
            }

            sender.Close();
            receiver.Close();
            await pr.Lost;
            await psender.Lost;
        });
        Output.WriteLine($"{Backend}: {received} of {count} datagrams received, {count - received} lost, {duplicates} duplicated");
        Assert.True(received > 0, "no datagram arrived");
        Assert.Equal(0, duplicates);

        static void Fill(byte[] buffer, int seq)
        {
            BinaryPrimitives.WriteInt32LittleEndian(buffer, seq);
            for (int k = 4; k < buffer.Length; k++)
            {
                buffer[k] = (byte)(seq * 31 + k);
            }
        }
    }

    [Fact]
    public void RemoteEndpoint_IsConnected_AndSendsWithoutAddress()
    {
        Run(Kind, async loop =>
        {
            var (server, ps) = await EchoEndpoint(loop, AnyLoopback);
            // A name to resolve, for the IPv4 family: the loop's getaddrinfo, never a blocking lookup.
            var remote = new DnsEndPoint("localhost", SockName(server).Port, AddressFamily.InterNetwork);
            var (client, pc) = await Endpoint(loop, null, remote);
            Assert.Equal(SockName(server), Assert.IsType<IPEndPoint>(client.GetExtraInfo("peername")));
            client.SendTo("one"u8);
            client.SendTo("two"u8, SockName(server)); // the remote address itself is allowed
            client.SendTo("three"u8, remote);         // and so is the address as given
            Assert.True(await pc.WaitDatagrams(3));
            Assert.Equal(["one", "two", "three"], pc.Datagrams.Select(d => System.Text.Encoding.ASCII.GetString(d.Data)));
            Assert.All(pc.Datagrams, d => Assert.Equal(SockName(server), d.From));
            client.Close();
            server.Close();
            await pc.Lost;
            await ps.Lost;
        });
    }

    [Fact]
    public void PortUnreachable_ErrorReceived_AndTheEndpointStillWorks()
    {
        Run(Kind, async loop =>
        {
            int port = FreeUdpPort();
            var (client, pc) = await Endpoint(loop, AnyLoopback, new IPEndPoint(IPAddress.Loopback, port));
            var error = pc.NextError();
            // The ICMP error surfaces on the next receive (or send) of the connected socket.
            Assert.True(await Eventually(() =>
            {
                client.SendTo("anyone?"u8);
                return error.Done;
            }), "no ErrorReceived for a datagram to a closed port");
            var refused = Assert.IsType<SocketException>(error.Result());
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
            Assert.False(client.IsClosing);
            Assert.False(pc.Lost.Done);

            // Something listens there now: the same endpoint sends and receives again.
            using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { Blocking = false };
            peer.Bind(new IPEndPoint(IPAddress.Loopback, port));
            // The ICMP errors of earlier sends may still be pending on the socket: the next send then
            // reports one (ErrorReceived) instead of sending. Send until one arrives.
            var buffer = new byte[100];
            int n = 0;
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            Assert.True(await Eventually(() =>
            {
                client.SendTo("hello again"u8);
                try
                {
                    n = peer.ReceiveFrom(buffer, SocketFlags.None, ref from);
                    return true;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock)
                {
                    return false;
                }
            }), "the endpoint did not send after the ICMP error");
            Assert.Equal("hello again"u8.ToArray(), buffer.AsSpan(0, n).ToArray());
            Assert.All(pc.ErrorsReceived, e => Assert.Equal(SocketError.ConnectionRefused, ((SocketException)e).SocketErrorCode));
            await loop.SockSendToAsync(peer, "reply"u8.ToArray(), from);
            Assert.True(await pc.WaitDatagrams(1));
            Assert.Equal("reply"u8.ToArray(), pc.Datagrams[0].Data);
            client.Close();
            Assert.Null(await pc.Lost);
            Assert.Empty(pc.Errors);
        });
    }

    [Fact]
    public void AllowBroadcast_SetsTheOption_AndBroadcastSendsAreNotRefused()
    {
        Run(Kind, async loop =>
        {
            // The receiver binds the wildcard: broadcasts are delivered to sockets bound to INADDR_ANY.
            var (receiver, pr) = await Endpoint(loop, new IPEndPoint(IPAddress.Any, 0));
            int port = SockName(receiver).Port;
            // The loopback network's broadcast address: nothing leaves the machine.
            var broadcast = new IPEndPoint(IPAddress.Parse("127.255.255.255"), port);

            var (plain, pp) = await Endpoint(loop, AnyLoopback);
            Assert.False(((Socket)plain.GetExtraInfo("socket")!).EnableBroadcast);
            var refused = pp.NextError();
            plain.SendTo("no"u8, broadcast);
            var denied = Assert.IsType<SocketException>(await refused);
            Assert.Equal(SocketError.AccessDenied, denied.SocketErrorCode); // EACCES: SO_BROADCAST is off
            Assert.Contains("EACCES", denied.Message);

            var (caster, pc) = await Endpoint(loop, AnyLoopback, null, new DatagramOptions { AllowBroadcast = true });
            Assert.True(((Socket)caster.GetExtraInfo("socket")!).EnableBroadcast);
            caster.SendTo("yes"u8, broadcast);
            Assert.DoesNotContain(pc.ErrorsReceived, e => e is SocketException { SocketErrorCode: SocketError.AccessDenied });
            // Where the network delivers loopback broadcasts (Linux does), the receiver gets it.
            Assert.True(await pr.WaitDatagrams(1));
            Assert.Equal("yes"u8.ToArray(), pr.Datagrams[0].Data);

            // With a remote address and AllowBroadcast, the socket is not connected, but sends go there by default.
            var (bcRemote, pbr) = await Endpoint(loop, AnyLoopback, broadcast, new DatagramOptions { AllowBroadcast = true });
            Assert.Null(bcRemote.GetExtraInfo("peername"));
            bcRemote.SendTo("to the remote"u8);
            Assert.True(await pr.WaitDatagrams(2));
            Assert.Equal("to the remote"u8.ToArray(), pr.Datagrams[1].Data);
            Assert.Throws<ArgumentException>(() => bcRemote.SendTo("x"u8, SockName(receiver)));

            foreach (var t in new[] { receiver, plain, caster, bcRemote })
            {
                t.Close();
            }

            await pr.Lost;
            await pp.Lost;
            await pc.Lost;
            await pbr.Lost;
        });
    }

    [Fact]
    public void ReusePort_LetsTwoEndpointsBindOnePort()
    {
        Run(Kind, async loop =>
        {
            var reuse = new DatagramOptions { ReusePort = true };
            var (first, p1) = await Endpoint(loop, AnyLoopback, null, reuse);
            var port = SockName(first);
            var (second, p2) = await Endpoint(loop, port, null, reuse);
            Assert.Equal(port, SockName(second));
            var ex = await Assert.ThrowsAsync<SocketException>(async () => await Endpoint(loop, port));
            Assert.Equal(SocketError.AddressAlreadyInUse, ex.SocketErrorCode);
            Assert.Contains($"bind to {port}", ex.Message);
            first.Close();
            second.Close();
            await p1.Lost;
            await p2.Lost;
        });
    }

    [Fact]
    public void ExistingSocket_IsUsed_AndClosedWithTheTransport()
    {
        Run(Kind, async loop =>
        {
            var (server, ps) = await EchoEndpoint(loop, AnyLoopback);
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(AnyLoopback);
            socket.Connect(SockName(server));
            var (client, pc) = await Endpoint(loop, null, null, new DatagramOptions { Socket = socket });
            Assert.False(socket.Blocking);
            // The transport owns the socket now; what it hands out is a view of the same fd that cannot close it.
            Assert.Equal(socket.Handle, Assert.IsType<Socket>(client.GetExtraInfo("socket")).Handle);
            // A connected socket's peer is the remote address: another is refused.
            Assert.Throws<ArgumentException>(() => client.SendTo("x"u8, new IPEndPoint(IPAddress.Loopback, 9)));
            client.SendTo("wrapped"u8);
            Assert.True(await pc.WaitDatagrams(1));
            Assert.Equal("wrapped"u8.ToArray(), pc.Datagrams[0].Data);
            client.Close();
            await pc.Lost;
            Assert.Throws<ObjectDisposedException>(() => socket.Send(new byte[1]));
            server.Close();
            await ps.Lost;
        });
    }

    [Fact]
    public void ExtraInfoSocket_IsAView_DisposingItLeavesTheEndpointAlone()
    {
        Run(Kind, async loop =>
        {
            var (a, pa) = await Endpoint(loop, AnyLoopback);
            var (b, pb) = await Endpoint(loop, AnyLoopback, SockName(a));
            var view = Assert.IsType<Socket>(b.GetExtraInfo("socket"));
            Assert.Same(view, b.GetExtraInfo("socket"));
            Assert.Equal(SockName(b), view.LocalEndPoint);
            view.Dispose();
            // The endpoint still sends and receives: the view did not own the socket.
            b.SendTo("after the view"u8);
            Assert.True(await pa.WaitDatagrams(1));
            a.SendTo("back"u8, SockName(b));
            Assert.True(await pb.WaitDatagrams(1));
            Assert.Equal("back"u8.ToArray(), pb.Datagrams[0].Data);
            Assert.Empty(pb.ErrorsReceived);
            a.Close();
            b.Close();
            Assert.Null(await pa.Lost);
            Assert.Null(await pb.Lost);
            Assert.Null(b.GetExtraInfo("socket"));
        });
    }

    [Fact]
    public void UnboundEndpoint_ReceivesOnceItsFirstSendBoundIt()
    {
        Run(Kind, async loop =>
        {
            var (server, ps) = await EchoEndpoint(loop, AnyLoopback);
            var (client, pc) = await Endpoint(loop, null, null, new DatagramOptions { Family = AddressFamily.InterNetwork });
            Assert.Null(client.GetExtraInfo("sockname"));
            client.SendTo("bind me"u8, SockName(server));
            Assert.True(await pc.WaitDatagrams(1));
            Assert.Equal("bind me"u8.ToArray(), pc.Datagrams[0].Data);
            Assert.Equal(SockName(server), pc.Datagrams[0].From);
            client.Close();
            server.Close();
            Assert.Null(await pc.Lost);
            Assert.Null(await ps.Lost);
            Assert.Empty(pc.ErrorsReceived);
        });
    }

    [Fact]
    public void Ipv6Endpoints_ExchangeDatagrams()
    {
        Run(Kind, async loop =>
        {
            var local = new IPEndPoint(IPAddress.IPv6Loopback, 0);
            var (server, ps) = await EchoEndpoint(loop, local);
            var serverName = Assert.IsType<IPEndPoint>(server.GetExtraInfo("sockname"));
            Assert.Equal(AddressFamily.InterNetworkV6, serverName.AddressFamily);
            var (client, pc) = await Endpoint(loop, local, serverName);
            var clientName = Assert.IsType<IPEndPoint>(client.GetExtraInfo("sockname"));
            client.SendTo(Pattern(60_000));
            Assert.True(await pc.WaitDatagrams(1));
            Assert.Equal(Pattern(60_000), pc.Datagrams[0].Data);
            Assert.Equal(serverName, pc.Datagrams[0].From);
            Assert.Equal(clientName, ps.Datagrams[0].From);
            Assert.Throws<ArgumentException>(() => server.SendTo("x"u8, new IPEndPoint(IPAddress.Loopback, 9)));
            client.Close();
            server.Close();
            await pc.Lost;
            await ps.Lost;
        });
    }

    [Fact]
    public void UnixDatagrams_BothWays_LargeOnesWhole_WithSenderPaths()
    {
        using var dir = new TempDir();
        Run(Kind, async loop =>
        {
            var aPath = new UnixDomainSocketEndPoint(dir.File("a.sock"));
            var bPath = new UnixDomainSocketEndPoint(dir.File("b.sock"));
            var (a, pa) = await Endpoint(loop, aPath);
            var (b, pb) = await Endpoint(loop, bPath);
            Assert.Equal(AddressFamily.Unix, ((Socket)a.GetExtraInfo("socket")!).AddressFamily);
            a.SendTo("hi b"u8, bPath);
            var big = Pattern(150_000); // more than 64 KiB: UNIX datagrams may be, and must still arrive whole
            a.SendTo(big, bPath);
            Assert.True(await pb.WaitDatagrams(2));
            Assert.Equal("hi b"u8.ToArray(), pb.Datagrams[0].Data);
            Assert.Equal(big, pb.Datagrams[1].Data);
            Assert.Equal(aPath.ToString(), pb.Datagrams[0].From.ToString());
            Assert.Same(pb.Datagrams[0].From, pb.Datagrams[1].From); // the sender's address is cached, not made per datagram
            b.SendTo("hi a"u8, pb.Datagrams[0].From); // reply to the address as received
            Assert.True(await pa.WaitDatagrams(1));
            Assert.Equal("hi a"u8.ToArray(), pa.Datagrams[0].Data);

            // A connected, unbound sender: its datagrams come from an unnamed address.
            var (c, pcl) = await Endpoint(loop, null, bPath);
            Assert.Equal(bPath.ToString(), c.GetExtraInfo("peername")!.ToString());
            c.SendTo("anonymous"u8);
            Assert.True(await pb.WaitDatagrams(3));
            Assert.Equal(string.Empty, pb.Datagrams[2].From.ToString());

            foreach (var t in new[] { a, b, c })
            {
                t.Close();
            }

            await pa.Lost;
            await pb.Lost;
            await pcl.Lost;
            Assert.Empty(pb.ErrorsReceived);
        });
    }

    [Fact]
    public void UnixDatagram_StaleSocketFileIsReplaced_OtherFilesAreKept()
    {
        using var dir = new TempDir();
        Run(Kind, async loop =>
        {
            string stale = dir.File("stale.sock");
            using (var dead = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified))
            {
                // .NET unlinks the path it bound when the socket is disposed; moved away, the socket
                // file stays behind with nothing bound to it, as a crashed process leaves it.
                dead.Bind(new UnixDomainSocketEndPoint(dir.File("dead.sock")));
                File.Move(dir.File("dead.sock"), stale);
            }

            Assert.True(File.Exists(stale));
            var (t, p) = await Endpoint(loop, new UnixDomainSocketEndPoint(stale));
            t.Close();
            await p.Lost;

            string regular = dir.File("data.txt");
            File.WriteAllText(regular, "keep me");
            var ex = await Assert.ThrowsAsync<SocketException>(async () => await Endpoint(loop, new UnixDomainSocketEndPoint(regular)));
            Assert.Equal(SocketError.AddressAlreadyInUse, ex.SocketErrorCode);
            Assert.Equal("keep me", File.ReadAllText(regular));

            var missing = await Assert.ThrowsAsync<SocketException>(async () => await Endpoint(loop, null, new UnixDomainSocketEndPoint(dir.File("nobody.sock"))));
            Assert.Contains("connect to", missing.Message);
        });
    }

    [Fact]
    public void FlowControl_PausesAtHighMark_ResumesAtLow_AndDeliversEverythingInOrder()
    {
        using var dir = new TempDir();
        Run(Kind, async loop =>
        {
            // A UNIX datagram peer that does not read: its queue fills (net.unix.max_dgram_qlen), sends
            // would block, and the transport buffers. Unlike UDP, nothing is dropped.
            var path = new UnixDomainSocketEndPoint(dir.File("slow.sock"));
            using var slow = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified) { Blocking = false };
            slow.Bind(path);
            var (sender, ps) = await Endpoint(loop, null, path);
            sender.SetWriteBufferLimits(high: 8 * 1024, low: 2 * 1024);
            Assert.Equal((2 * 1024, 8 * 1024), sender.GetWriteBufferLimits());
            int sent = 0;
            while (!ps.Paused.Done && sent < 100_000)
            {
                var d = new byte[1000];
                BinaryPrimitives.WriteInt32LittleEndian(d, sent++);
                sender.SendTo(d);
            }

            Assert.True(ps.Paused.Done, "PauseWriting never called");
            Assert.True(sender.GetWriteBufferSize() > 8 * 1024);
            Assert.Equal(1, ps.PauseCount);
            Assert.False(ps.Resumed.Done);

            // Drain the peer: the backlog goes out, ResumeWriting comes at the low mark.
            var buffer = new byte[2000];
            int received = 0;
            while (received < sent)
            {
                var (n, _) = await loop.SockRecvFromAsync(slow, buffer);
                Assert.Equal(1000, n);
                Assert.Equal(received, BinaryPrimitives.ReadInt32LittleEndian(buffer));
                received++;
            }

            // The peer holds the last datagram once the kernel took it; a completion loop learns that
            // its send completed a moment later (on a selector loop the send itself was the moment).
            Assert.True(await Eventually(() => sender.GetWriteBufferSize() == 0, 10_000), "the backlog never drained");
            Assert.True(ps.Resumed.Done);
            Assert.Equal(1, ps.ResumeCount);
            sender.Close();
            Assert.Null(await ps.Lost);
            Assert.Empty(ps.Errors);
            Assert.Empty(ps.ErrorsReceived);
        });
    }

    [Fact]
    public void Close_SendsBufferedDatagramsFirst_Abort_DropsThem()
    {
        using var dir = new TempDir();
        Run(Kind, async loop =>
        {
            var path = new UnixDomainSocketEndPoint(dir.File("slow.sock"));
            using var slow = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified) { Blocking = false };
            slow.Bind(path);
            var buffer = new byte[100];

            // Close: what is buffered still goes out, then ConnectionLost(null).
            var (closing, pc) = await Endpoint(loop, null, path);
            int sent = 0;
            while (closing.GetWriteBufferSize() == 0)
            {
                closing.SendTo(BitConverter.GetBytes(sent++));
            }

            closing.SendTo(BitConverter.GetBytes(sent++));
            closing.Close();
            Assert.True(closing.IsClosing);
            Assert.Throws<InvalidOperationException>(() => closing.SendTo("late"u8));
            await Tasks.Sleep(0);
            Assert.False(pc.Lost.Done, "ConnectionLost came before the buffer was sent");
            for (int i = 0; i < sent; i++)
            {
                var (n, _) = await loop.SockRecvFromAsync(slow, buffer);
                Assert.Equal(i, BitConverter.ToInt32(buffer, 0));
                Assert.Equal(4, n);
            }

            Assert.Null(await pc.Lost);

            // Abort: the buffer is dropped at once; only what the kernel already took arrives.
            var (aborting, pa) = await Endpoint(loop, null, path);
            int queued = 0;
            while (aborting.GetWriteBufferSize() == 0)
            {
                aborting.SendTo(BitConverter.GetBytes(queued++));
            }

            aborting.Abort();
            Assert.Equal(0, aborting.GetWriteBufferSize());
            Assert.Throws<InvalidOperationException>(() => aborting.SendTo("late"u8));
            Assert.Null(await pa.Lost);
            // UNIX datagram sends are synchronous: what the kernel took is queued at the peer already.
            int got = 0;
            while (slow.Receive(buffer, SocketFlags.None, out SocketError error) >= 0 && error == SocketError.Success)
            {
                got++;
            }

            Assert.Equal(queued - 1, got); // the last one was buffered, and dropped
        });
    }

    [Fact]
    public void BadInput_ClearExceptions_AndTheLoopGoesOn()
    {
        Run(Kind, async loop =>
        {
            var (open, po) = await Endpoint(loop, AnyLoopback);
            var (connected, pcn) = await Endpoint(loop, AnyLoopback, SockName(open));

            var other = Assert.Throws<ArgumentException>(() => connected.SendTo("x"u8, new IPEndPoint(IPAddress.Loopback, 9)));
            Assert.Contains("remote address", other.Message);
            var none = Assert.Throws<ArgumentNullException>(() => open.SendTo("x"u8));
            Assert.Contains("no remote address", none.Message);
            var family = Assert.Throws<ArgumentException>(() => open.SendTo("x"u8, new IPEndPoint(IPAddress.IPv6Loopback, 9)));
            Assert.Contains("InterNetworkV6", family.Message);
            Assert.Throws<ArgumentException>(() => open.SendTo("x"u8, new UnixDomainSocketEndPoint("/tmp/nope")));
            var name = Assert.Throws<ArgumentException>(() => open.SendTo("x"u8, new DnsEndPoint("localhost", 9)));
            Assert.Contains("GetAddrInfoAsync", name.Message);

            var noFamily = await Assert.ThrowsAsync<ArgumentException>(async () => await Endpoint(loop, null, null));
            Assert.Contains("Family", noFamily.Message);
            var mixed = await Assert.ThrowsAsync<ArgumentException>(async () =>
                await Endpoint(loop, AnyLoopback, new IPEndPoint(IPAddress.IPv6Loopback, 9)));
            Assert.Contains("no address family in common", mixed.Message);
            await Assert.ThrowsAsync<ArgumentException>(async () => await Endpoint(loop, new UnixDomainSocketEndPoint("/tmp/x.sock"), SockName(open)));
            await Assert.ThrowsAsync<ArgumentException>(async () => await Endpoint(loop, AnyLoopback, null, new DatagramOptions { Family = AddressFamily.InterNetworkV6 }));
            await Assert.ThrowsAsync<ArgumentException>(async () =>
                await Endpoint(loop, null, null, new DatagramOptions { Family = AddressFamily.Unix, ReusePort = true }));
            using (var stream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                var notDgram = await Assert.ThrowsAsync<ArgumentException>(async () => await Endpoint(loop, null, null, new DatagramOptions { Socket = stream }));
                Assert.Contains("datagram socket", notDgram.Message);
            }

            using (var dgram = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
            {
                var both = await Assert.ThrowsAsync<ArgumentException>(async () =>
                    await Endpoint(loop, AnyLoopback, null, new DatagramOptions { Socket = dgram, AllowBroadcast = true }));
                Assert.Contains("localAddress=", both.Message);
                Assert.Contains("AllowBroadcast=true", both.Message);
            }

            Assert.Throws<ArgumentOutOfRangeException>(() => open.SetWriteBufferLimits(high: 10, low: 20));

            // Too large for UDP: the kernel refuses it (EMSGSIZE), the protocol hears of it, nothing is buffered.
            var tooLarge = po.NextError();
            open.SendTo(new byte[70_000], SockName(connected));
            Assert.Equal(SocketError.MessageSize, Assert.IsType<SocketException>(await tooLarge).SocketErrorCode);
            Assert.Equal(0, open.GetWriteBufferSize());

            // After all that, both endpoints still work.
            connected.SendTo("still fine"u8);
            Assert.True(await po.WaitDatagrams(1));
            open.Close();
            connected.Close();
            Assert.Throws<InvalidOperationException>(() => open.SendTo("x"u8, SockName(connected)));
            Assert.Null(await po.Lost);
            Assert.Null(await pcn.Lost);
        });
    }

    [Fact]
    public void ProtocolErrors_AreReported_AndTheEndpointGoesOn()
    {
        var reports = new List<ExceptionContext>();
        Run(Kind, async loop =>
        {
            var (receiver, pr) = await Endpoint(loop, AnyLoopback);
            var (sender, psd) = await Endpoint(loop, AnyLoopback, SockName(receiver));
            pr.ThrowOnce = new FormatException("bad datagram");
            sender.SendTo("first"u8);
            sender.SendTo("second"u8);
            Assert.True(await pr.WaitDatagrams(1));
            Assert.Equal("second"u8.ToArray(), pr.Datagrams[0].Data);
            Assert.False(receiver.IsClosing);
            var report = Assert.Single(reports);
            Assert.IsType<FormatException>(report.Exception);
            Assert.Equal("Exception in protocol.DatagramReceived()", report.Message);

            var ex = await Assert.ThrowsAsync<InvalidTimeZoneException>(async () =>
                await loop.CreateDatagramEndpointAsync<RecordingDatagramProtocol>(() => throw new InvalidTimeZoneException("factory"), AnyLoopback, null));
            Assert.Equal("factory", ex.Message);
            sender.Close();
            receiver.Close();
            await pr.Lost;
            await psd.Lost;
        }, errors: reports);
        Assert.Single(reports);
    }
}

public sealed class EpollDatagramTransportTests(ITestOutputHelper output) : DatagramTransportContractTests(LoopKinds.Epoll, output);

public sealed class PollDatagramTransportTests(ITestOutputHelper output) : DatagramTransportContractTests(LoopKinds.Poll, output);

public sealed class ProactorDatagramTransportTests(ITestOutputHelper output) : DatagramTransportContractTests(LoopKinds.Proactor, output);
