using System.Net;
using System.Net.Sockets;
using Tulip.Tests.Selectors;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.DatagramTestUtil;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.IoUring;

/// <summary>
/// The io_uring loop's datagram endpoints receive into the loop's provided-buffer rings (IP: the stream
/// group; UNIX: a shared group of 256 KiB buffers), not into a buffer of their own: an idle endpoint holds
/// none, sizes up to the largest datagram arrive whole and a larger one is reported as on every loop, an
/// empty ring (ENOBUFS) is waited out with no datagram lost, and endpoints opened and closed leave no buffer.
/// </summary>
[Collection(NativeFdCollection.Name)]
public sealed class IoUringDatagramBufferTests
{
    private const int MaxUnix = 256 * 1024; // DatagramAddressing.MaxUnixDatagramSize

    private static IoUringEventLoop NewLoop(int receiveBuffers = IoUringEventLoop.ReceiveBufferCount, int unixBuffers = IoUringEventLoop.UnixDatagramBufferCount)
    {
        var loop = new IoUringEventLoop(receiveBuffers, unixBuffers);
        Assert.True(loop.CompletionTransports, "this kernel has provided-buffer rings (5.19+): the completion transports must be in use");
        return loop;
    }

    /// <summary>A UNIX datagram socket that can send the largest datagrams (its send buffer raised), bound in <paramref name="dir"/>.</summary>
    private static Socket BigUnixSender(TempDir dir)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified) { SendBufferSize = 1 << 20 };
        s.Bind(new UnixDomainSocketEndPoint(dir.File("sender.sock")));
        return s;
    }

    /// <summary>
    /// UDP and UNIX endpoints that have received and are idle hold no receive buffer: no pinned array is
    /// out (the old transports kept a 64 or 256 KiB one for their lifetime) and no ring buffer is held.
    /// </summary>
    [Fact]
    public void IdleEndpoints_HoldNoReceiveBuffer()
    {
        using var dir = new TempDir();
        using var loop = NewLoop();
        loop.RunUntilComplete(async () =>
        {
            int held = WriteBacklog.HeldArraysOnThisThread;
            var (a, pa) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, null);
            var (b, pb) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, SockName(a));
            var uPath = new UnixDomainSocketEndPoint(dir.File("u.sock"));
            var (u, pu) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), uPath, null);
            var (v, pv) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), null, uPath);
            b.SendTo("to a"u8);
            v.SendTo("to u"u8);
            Assert.True(await pa.WaitDatagrams(1));
            Assert.True(await pu.WaitDatagrams(1));
            a.SendTo("to b"u8, pa.Datagrams[0].From);
            Assert.True(await pb.WaitDatagrams(1));

            // Four endpoints armed and idle: nothing held by any of them.
            Assert.Equal(held, WriteBacklog.HeldArraysOnThisThread);
            Assert.Equal(0, loop.ReceiveBuffersHeld);
            Assert.Equal(0, loop.UnixDatagramBuffersHeld);
            Assert.True(loop.IpDatagramBuffers.TakenTotal > 0, "the UDP datagrams were not received into the ring's buffers");
            Assert.True(loop.UnixDatagramBuffers.TakenTotal > 0, "the UNIX datagram was not received into the UNIX group's buffers");
            Assert.Equal("to a"u8.ToArray(), pa.Datagrams[0].Data);
            Assert.Equal("to b"u8.ToArray(), pb.Datagrams[0].Data);
            Assert.Equal("to u"u8.ToArray(), pu.Datagrams[0].Data);
            foreach (var t in new[] { a, b, u, v })
            {
                t.Close();
            }

            await pa.Lost; await pb.Lost; await pu.Lost; await pv.Lost;
            Assert.Empty(pa.ErrorsReceived.Concat(pb.ErrorsReceived).Concat(pu.ErrorsReceived));
        });

        Assert.Equal(0, loop.OperationsInKernel);
    }

    /// <summary>
    /// One-byte and largest datagrams arrive whole on UDP (65,507 bytes) and UNIX (256 KiB): alone (through
    /// a ring receive) and in a burst (the rest read on into the completion's buffer).
    /// </summary>
    [Fact]
    public void OneByteAndLargestDatagrams_ArriveWhole_OnUdpAndUnix()
    {
        using var dir = new TempDir();
        using var loop = NewLoop();
        loop.RunUntilComplete(async () =>
        {
            var (a, pa) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, null);
            var (b, pb) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, SockName(a));
            var udpSizes = new[] { 1, 65507, 1, 65507, 65507, 1 };
            b.SendTo(Pattern(udpSizes[0]));
            Assert.True(await pa.WaitDatagrams(1));
            b.SendTo(Pattern(udpSizes[1]));
            Assert.True(await pa.WaitDatagrams(2));
            foreach (int size in udpSizes[2..])
            {
                b.SendTo(Pattern(size)); // a burst
            }

            Assert.True(await pa.WaitDatagrams(udpSizes.Length));
            for (int i = 0; i < udpSizes.Length; i++)
            {
                Assert.Equal(Pattern(udpSizes[i]), pa.Datagrams[i].Data);
            }

            var uPath = new UnixDomainSocketEndPoint(dir.File("u.sock"));
            var (u, pu) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), uPath, null);
            using var sender = BigUnixSender(dir);
            var unixSizes = new[] { 1, MaxUnix, 1, MaxUnix, MaxUnix, 1 };
            sender.SendTo(Pattern(unixSizes[0]), uPath);
            Assert.True(await pu.WaitDatagrams(1));
            sender.SendTo(Pattern(unixSizes[1]), uPath);
            Assert.True(await pu.WaitDatagrams(2));
            foreach (int size in unixSizes[2..])
            {
                sender.SendTo(Pattern(size), uPath);
            }

            Assert.True(await pu.WaitDatagrams(unixSizes.Length));
            for (int i = 0; i < unixSizes.Length; i++)
            {
                Assert.Equal(Pattern(unixSizes[i]), pu.Datagrams[i].Data);
            }

            Assert.Equal(sender.LocalEndPoint!.ToString(), pu.Datagrams[1].From.ToString());
            Assert.True(loop.DatagramsReadOn > 0, "no datagram of the bursts was read on");
            Assert.True(loop.IpDatagramBuffers.TakenTotal > 0 && loop.UnixDatagramBuffers.TakenTotal > 0, "the datagrams were not received into the rings' buffers");
            Assert.Empty(pa.ErrorsReceived);
            Assert.Empty(pu.ErrorsReceived);
            a.Close();
            b.Close();
            u.Close();
            await pa.Lost; await pb.Lost; await pu.Lost;
            Assert.Equal(0, loop.ReceiveBuffersHeld);
            Assert.Equal(0, loop.UnixDatagramBuffersHeld);
        });

        Assert.Equal(0, loop.OperationsInKernel);
    }

    /// <summary>
    /// A UNIX datagram larger than 256 KiB is reported (ErrorReceived, MessageSize, saying its size and the
    /// buffer's) and dropped, never delivered cut short, both through a ring receive and when read on; the
    /// datagrams around it arrive.
    /// </summary>
    [Fact]
    public void TooLargeUnixDatagram_IsReported_NotDeliveredCutShort()
    {
        using var dir = new TempDir();
        using var loop = NewLoop();
        loop.RunUntilComplete(async () =>
        {
            var uPath = new UnixDomainSocketEndPoint(dir.File("u.sock"));
            var (u, pu) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), uPath, null);
            using var sender = BigUnixSender(dir);

            // Alone: the ring receive's completion says 262,145 bytes into a 262,144-byte buffer.
            var error = pu.NextError();
            sender.SendTo(new byte[MaxUnix + 1], uPath);
            CheckTooLarge(await error);
            sender.SendTo("after"u8, uPath);
            Assert.True(await pu.WaitDatagrams(1));

            // In a burst: the first comes through the ring, the too-large one is read on.
            int errors = pu.ErrorsReceived.Count;
            sender.SendTo("one"u8, uPath);
            sender.SendTo(new byte[MaxUnix + 1], uPath);
            sender.SendTo("two"u8, uPath);
            Assert.True(await pu.WaitDatagrams(3));
            Assert.Equal(errors + 1, pu.ErrorsReceived.Count);
            CheckTooLarge(pu.ErrorsReceived[^1]);
            Assert.Equal(["after", "one", "two"], pu.Datagrams.Select(d => System.Text.Encoding.ASCII.GetString(d.Data)));
            Assert.True(loop.UnixDatagramBuffers.TakenTotal > 0, "the datagrams were not received into the UNIX group's buffers");
            u.Close();
            Assert.Null(await pu.Lost);
            Assert.Equal(0, loop.UnixDatagramBuffersHeld);
        });

        static void CheckTooLarge(Exception error)
        {
            var ex = Assert.IsType<SocketException>(error);
            Assert.Equal(SocketError.MessageSize, ex.SocketErrorCode);
            Assert.Contains("262145 bytes", ex.Message);
            Assert.Contains("262144-byte receive buffer", ex.Message);
        }
    }

    /// <summary>
    /// More endpoints receiving at once than the ring has buffers: the receives the kernel finds no buffer
    /// for end with ENOBUFS and are re-armed once a buffer comes back, so every datagram arrives (none is
    /// lost or reported as an error), round after round; and once idle, nothing is re-armed over and over.
    /// </summary>
    [Theory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.Unix)]
    public void RingRunDry_ReceivesWaitForABuffer_AndEveryDatagramArrives(AddressFamily family)
    {
        using var dir = new TempDir();
        using var loop = NewLoop(receiveBuffers: 2, unixBuffers: 2);
        loop.RunUntilComplete(async () =>
        {
            const int Endpoints = 12;
            const int Rounds = 10;
            var receivers = new List<(IDatagramTransport Transport, RecordingDatagramProtocol Protocol, EndPoint Address)>();
            for (int i = 0; i < Endpoints; i++)
            {
                EndPoint local = family == AddressFamily.Unix ? new UnixDomainSocketEndPoint(dir.File($"r{i}.sock")) : AnyLoopback;
                var (t, p) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), local, null);
                receivers.Add((t, p, family == AddressFamily.Unix ? local : SockName(t)));
            }

            var (sender, ps) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop),
                family == AddressFamily.Unix ? new UnixDomainSocketEndPoint(dir.File("s.sock")) : AnyLoopback, null);
            long exhaustions = loop.BufferExhaustions;
            for (int round = 1; round <= Rounds; round++)
            {
                // One datagram to every endpoint in one go: twelve receives complete together on two buffers.
                for (int i = 0; i < Endpoints; i++)
                {
                    sender.SendTo(Pattern(100 + round), receivers[i].Address);
                }

                foreach (var (_, p, _) in receivers)
                {
                    Assert.True(await p.WaitDatagrams(round));
                    Assert.Equal(Pattern(100 + round), p.Datagrams[round - 1].Data);
                }
            }

            Assert.True(loop.BufferExhaustions > exhaustions, "the ring never ran dry: the test did not test ENOBUFS");
            Assert.All(receivers, r => Assert.Empty(r.Protocol.ErrorsReceived));

            // Idle now: no receive goes back to the kernel again and again (no spin on an empty ring).
            long submitted = loop.DatagramOperationsSubmitted;
            for (int i = 0; i < 20; i++)
            {
                await Tasks.Sleep(0);
            }

            Assert.Equal(submitted, loop.DatagramOperationsSubmitted);
            Assert.Equal(0, loop.ReceiveBuffersHeld);
            Assert.Equal(0, loop.UnixDatagramBuffersHeld);

            // And the endpoints still receive.
            sender.SendTo("last"u8, receivers[0].Address);
            Assert.True(await receivers[0].Protocol.WaitDatagrams(Rounds + 1));
            foreach (var (t, p, _) in receivers)
            {
                t.Close();
                Assert.Null(await p.Lost);
            }

            sender.Close();
            Assert.Null(await ps.Lost);
        });

        Assert.Equal(0, loop.OperationsInKernel);
    }

    /// <summary>
    /// A thousand endpoint pairs, UDP and UNIX in turn, each used once and then closed or aborted (some with
    /// a datagram still on its way): no ring buffer is held, no pinned array out, no operation, slot or fd left.
    /// </summary>
    [Fact]
    public void AThousandEndpoints_OpenedAndClosed_LeaveNoBufferOrFd()
    {
        using var dir = new TempDir();
        using var loop = NewLoop();
        int slots = loop.RegisteredOperations;
        loop.RunUntilComplete(async () =>
        {
            // Warm up what .NET opens lazily on a first endpoint, and the UNIX group, then count.
            var (wa, wpa) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, null);
            var (wu, wpu) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), new UnixDomainSocketEndPoint(dir.File("w.sock")), null);
            wa.Close();
            wu.Close();
            await wpa.Lost;
            await wpu.Lost;
            var fds = TakeFds();
            int held = WriteBacklog.HeldArraysOnThisThread;
            int ipTouched = loop.IpDatagramBuffers.BuffersTouched;
            int unixTouched = loop.UnixDatagramBuffers.BuffersTouched;
            long ipTaken = loop.IpDatagramBuffers.TakenTotal;
            long unixTaken = loop.UnixDatagramBuffers.TakenTotal;
            for (int i = 0; i < 1000; i++)
            {
                bool unix = i % 2 == 1;
                var aPath = new UnixDomainSocketEndPoint(dir.File($"a{i}.sock"));
                var (a, pa) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), unix ? aPath : AnyLoopback, null);
                var (b, pb) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), null, unix ? aPath : SockName(a));
                b.SendTo("ping"u8);
                Assert.True(await pa.WaitDatagrams(1));
                b.SendTo("in flight"u8); // may be in a's socket, or taken into a ring buffer, when a closes
                if (i % 4 < 2)
                {
                    a.Close();
                    b.Abort();
                }
                else
                {
                    a.Abort();
                    b.Close();
                }

                Assert.Null(await pa.Lost);
                Assert.Null(await pb.Lost);
            }

            // Every endpoint's first datagram came through its group's ring (some of the others were read on).
            Assert.True(loop.IpDatagramBuffers.TakenTotal - ipTaken >= 500 && loop.UnixDatagramBuffers.TakenTotal - unixTaken >= 500,
                $"{loop.IpDatagramBuffers.TakenTotal - ipTaken} IP and {loop.UnixDatagramBuffers.TakenTotal - unixTaken} UNIX ring buffers taken for 500 endpoints of each");
            Assert.True(loop.IpDatagramBuffers.BuffersTouched - ipTouched <= 4 && loop.UnixDatagramBuffers.BuffersTouched - unixTouched <= 4,
                $"{loop.IpDatagramBuffers.BuffersTouched - ipTouched} IP and {loop.UnixDatagramBuffers.BuffersTouched - unixTouched} UNIX buffers newly touched by a thousand endpoints used one at a time");
            Assert.True(await Eventually(() => loop.OperationsInKernel == 0 && loop.RegisteredOperations == slots),
                $"{loop.OperationsInKernel} operations in the kernel, {loop.RegisteredOperations - slots} slots still registered");
            Assert.Equal(0, loop.ReceiveBuffersHeld);
            Assert.Equal(0, loop.UnixDatagramBuffersHeld);
            Assert.Equal(held, WriteBacklog.HeldArraysOnThisThread);
            Assert.True(loop.UnixDatagramBuffers.InRing <= global::Tulip.IoUring.IoUringBufferRing.Slack + 2,
                $"{loop.UnixDatagramBuffers.InRing} UNIX buffers in the ring with no receive armed");
            Assert.Equal(0, loop.RegistrationCount);
            Assert.True(await Eventually(fds.NoneAdded), fds.Describe());
        });

        Assert.Equal(0, loop.OperationsInKernel);
    }
}
