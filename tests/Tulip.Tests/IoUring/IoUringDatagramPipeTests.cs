using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Tulip.Tests.Selectors;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.DatagramTestUtil;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.IoUring;

/// <summary>
/// The io_uring loop's datagram and pipe transports beyond the contract suites (which run on it as on every
/// loop): that they are the completion transports, with no readiness poll behind them (the ring's operation
/// counters move, the loop watches no fd), that a backlog sent through the ring arrives whole, and that a
/// thousand endpoints and pipes opened and closed leave no operation, buffer, registration or fd.
/// </summary>
[Collection(NativeFdCollection.Name)]
public sealed class IoUringDatagramPipeTests
{
    private static IoUringEventLoop NewLoop()
    {
        var loop = new IoUringEventLoop();
        Assert.True(loop.CompletionTransports, "this kernel has provided-buffer rings (5.19+): the completion transports must be in use");
        return loop;
    }

    /// <summary>UDP endpoints exchange datagrams through RECVMSG completions; the loop watches no fd for them.</summary>
    [Fact]
    public void DatagramEndpoints_AreCompletionTransports_ReceivingThroughTheRing()
    {
        using var loop = NewLoop();
        loop.RunUntilComplete(async () =>
        {
            var (a, pa) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, null);
            var (b, pb) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, SockName(a));
            Assert.IsType<IoUringDatagramTransport>(a);
            Assert.IsType<IoUringDatagramTransport>(b);
            long before = loop.DatagramOperationsSubmitted;
            for (int i = 0; i < 20; i++)
            {
                b.SendTo(Pattern(100 + i));
                Assert.True(await pa.WaitDatagrams(i + 1));
                a.SendTo(pa.Datagrams[i].Data, pa.Datagrams[i].From);
                Assert.True(await pb.WaitDatagrams(i + 1));
                Assert.Equal(Pattern(100 + i), pb.Datagrams[i].Data);
            }

            // Each datagram was received by a ring receive (re-armed after it), not by a readiness event.
            Assert.True(loop.DatagramOperationsSubmitted - before >= 40, $"only {loop.DatagramOperationsSubmitted - before} ring operations for 40 datagrams");
            Assert.Equal(0, loop.WatchingRegistrationCount);
            a.Close();
            b.Abort();
            Assert.Null(await pa.Lost);
            Assert.Null(await pb.Lost);
            Assert.Empty(pa.ErrorsReceived);
            Assert.Empty(pb.ErrorsReceived);
        });

        Assert.Equal(0, loop.OperationsInKernel);
    }

    /// <summary>
    /// A burst of datagrams queued at once is read on (non-blocking recvfrom after a completion) rather than
    /// one ring receive and one loop iteration per datagram: UDP does not report IORING_CQE_F_SOCK_NONEMPTY.
    /// </summary>
    [Fact]
    public void ABurstOfDatagrams_IsReadOnAfterACompletion_NotOneIterationEach()
    {
        using var loop = NewLoop();
        loop.RunUntilComplete(async () =>
        {
            var (a, pa) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, null);
            var (b, pb) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, SockName(a));
            // 100 small datagrams fit a loopback socket's receive buffer: none is dropped.
            for (int i = 0; i < 100; i++)
            {
                b.SendTo(Pattern(64 + i));
            }

            Assert.True(await pa.WaitDatagrams(100));
            Assert.Equal(Enumerable.Range(0, 100).Select(i => 64 + i), pa.Datagrams.Select(d => d.Data.Length));
            Assert.True(loop.DatagramsReadOn > 0, "every datagram of the burst took a ring receive of its own");
            a.Close();
            b.Close();
            await pa.Lost;
            await pb.Lost;
        });
    }

    /// <summary>
    /// A UNIX datagram peer that does not read: the sender's backlog goes out through ring SENDMSGs once the
    /// peer drains, each datagram whole and in order. (A plain ring SENDMSG retried by the kernel after EAGAIN
    /// sent the first such datagram empty; the transport's linked poll is why this holds.)
    /// </summary>
    [Fact]
    public void UnixDatagramBacklog_GoesOutThroughTheRing_EachDatagramWholeAndInOrder()
    {
        using var dir = new TempDir();
        using var loop = NewLoop();
        loop.RunUntilComplete(async () =>
        {
            var path = new UnixDomainSocketEndPoint(dir.File("slow.sock"));
            using var slow = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified) { Blocking = false };
            slow.Bind(path);
            var (sender, ps) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), null, path);
            int sent = 0;
            while (sender.GetWriteBufferSize() == 0)
            {
                sender.SendTo(Datagram(sent++));
            }

            for (int i = 0; i < 40; i++)
            {
                sender.SendTo(Datagram(sent++));
            }

            long before = loop.DatagramOperationsSubmitted;
            var buffer = new byte[4096];
            for (int i = 0; i < sent; i++)
            {
                var (n, _) = await loop.SockRecvFromAsync(slow, buffer);
                Assert.Equal(Datagram(i), buffer.AsSpan(0, n).ToArray());
            }

            Assert.True(await Eventually(() => sender.GetWriteBufferSize() == 0));
            Assert.True(loop.DatagramOperationsSubmitted - before >= 40, "the backlog did not go through ring sends");
            sender.Close();
            Assert.Null(await ps.Lost);
            Assert.Empty(ps.ErrorsReceived);
        });

        Assert.Equal(0, loop.OperationsInKernel);

        static byte[] Datagram(int seq)
        {
            var d = new byte[100 + (seq % 7) * 50];
            BinaryPrimitives.WriteInt32LittleEndian(d, seq);
            d.AsSpan(4).Fill((byte)seq);
            return d;
        }
    }

    /// <summary>Pipes read and write through READ and WRITE completions; the loop watches no fd for them, and a paused read pipe holds no buffer.</summary>
    [Fact]
    public void Pipes_AreCompletionTransports_AndAPausedReaderHoldsNoBuffer()
    {
        using var loop = NewLoop();
        loop.RunUntilComplete(async () =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var (rt, reader) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), pipe.TakeRead());
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.TakeWrite());
            Assert.IsType<IoUringReadPipeTransport>(rt);
            Assert.IsType<IoUringWritePipeTransport>(wt);
            Assert.Equal(0, loop.WatchingRegistrationCount);
            long before = loop.PipeOperationsSubmitted;

            // More than the pipe holds: the rest goes by ring writes as the reader's ring reads drain it.
            var data = Pattern(1 << 20);
            wt.Write(data);
            Assert.True(wt.GetWriteBufferSize() > 0);
            Assert.True(await reader.WaitBytes(loop, data.Length));
            Assert.Equal(data, reader.Received);
            Assert.True(loop.PipeOperationsSubmitted - before >= 2, "no ring reads or writes were submitted");

            // Paused with nothing held: the read is withdrawn and its buffer goes back.
            int held = WriteBacklog.HeldArraysOnThisThread;
            rt.PauseReading();
            Assert.True(await Eventually(() => WriteBacklog.HeldArraysOnThisThread == held - 1));
            wt.Write("after the pause"u8);
            for (int i = 0; i < 10; i++)
            {
                await Tasks.Sleep(0);
            }

            Assert.Equal(data.Length, reader.ReceivedCount);
            rt.ResumeReading();
            Assert.True(await reader.WaitBytes(loop, data.Length + 15));
            wt.Close();
            Assert.Null(await writer.Lost);
            Assert.Null(await reader.Lost);
            Assert.Equal(["made", "data", "eof", "lost"], reader.Calls);
            Assert.Empty(reader.Errors);
            Assert.Empty(writer.Errors);
        });

        Assert.Equal(0, loop.OperationsInKernel);
    }

    /// <summary>
    /// A thousand UDP endpoint pairs and a thousand pipes, each used once and then closed or aborted (some
    /// with a receive or write in flight): no kernel operation, operation slot, pinned buffer, registration
    /// or fd is left.
    /// </summary>
    [Fact]
    public void AThousandEndpointsAndPipes_OpenedAndClosed_LeaveNoOperationBufferOrFd()
    {
        using var loop = NewLoop();
        int slots = loop.RegisteredOperations;
        loop.RunUntilComplete(async () =>
        {
            // Warm up what .NET opens lazily on a first endpoint, then count.
            var (wa, wpa) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, null);
            wa.Close();
            await wpa.Lost;
            var fds = TakeFds();
            int held = WriteBacklog.HeldArraysOnThisThread;
            for (int i = 0; i < 1000; i++)
            {
                var (a, pa) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, null);
                var (b, pb) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, SockName(a));
                b.SendTo("ping"u8);
                Assert.True(await pa.WaitDatagrams(1));
                b.SendTo("in flight"u8); // may still be on its way, or held, when a closes
                if (i % 2 == 0)
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

                var pipe = new NativePipe(Interop.O_CLOEXEC);
                var (rt, reader) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), pipe.TakeRead());
                var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.TakeWrite());
                wt.Write("x"u8);
                Assert.True(await reader.WaitBytes(loop, 1));
                if (i % 3 == 0)
                {
                    wt.Write(Pattern(200_000)); // a ring write in flight when it is aborted
                    wt.Abort();
                    rt.Close();
                }
                else if (i % 3 == 1)
                {
                    rt.Close(); // a read armed when it closes; the writer then sees the reader go
                    Assert.Null(await reader.Lost);
                    wt.Close();
                }
                else
                {
                    wt.Close(); // the reader gets EOF
                }

                await writer.Lost;
                await reader.Lost;
                Assert.Empty(reader.Errors);
                Assert.Empty(writer.Errors);
            }

            Assert.True(await Eventually(() => loop.OperationsInKernel == 0 && loop.RegisteredOperations == slots),
                $"{loop.OperationsInKernel} operations in the kernel, {loop.RegisteredOperations - slots} slots still registered");
            Assert.Equal(held, WriteBacklog.HeldArraysOnThisThread);
            Assert.Equal(0, loop.RegistrationCount);
            Assert.True(await Eventually(fds.NoneAdded), fds.Describe());
        });

        Assert.Equal(0, loop.OperationsInKernel);
    }
}
