using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Tulip.Tests.Selectors;
using Tulip.Tests.Transports;

namespace Tulip.Tests.Loop;

/// <summary>
/// An fd a transport watches belongs to it (issue 9, asyncio's <c>_ensure_fd_no_transport</c>):
/// AddReader, AddWriter, RemoveReader, RemoveWriter and the Sock* methods refuse it with an error
/// naming the transport, for stream, datagram and pipe transports, also while the transport has
/// paused reading; the transport keeps working. Before the fix AddReader took the transport's events.
/// </summary>
public abstract class TransportFdOwnershipTests : LoopSuite
{
    protected TransportFdOwnershipTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>Makes the loop under test.</summary>
    private BaseEventLoop CreateLoop(ILoggerFactory? loggerFactory) => Kind.Create(loggerFactory);

    [Fact]
    public void A_stream_transports_fd_is_refused_also_while_paused_and_the_transport_keeps_working()
    {
        using var h = new LoopHarness(CreateLoop);
        var loop = h.Loop;
        var (mine, peer) = PipeTestNative.StreamSocketPair();
        try
        {
            h.Run(async () =>
            {
                var socket = new Socket(new SafeSocketHandle(mine, ownsHandle: true)) { Blocking = false };
                var (transport, protocol) = await loop.ConnectAcceptedSocketAsync(() => new RecordingProtocol(loop), socket);
                int fd = checked((int)socket.Handle);

                AssertRefused(loop, fd, transport);
                await AssertSockCallRefused(fd, transport, () => loop.SockRecvAsync(socket, new byte[1]));
                await AssertSockCallRefused(fd, transport, () => loop.SockSendAllAsync(socket, new byte[1]));

                transport.PauseReading();
                AssertRefused(loop, fd, transport);
                await AssertSockCallRefused(fd, transport, () => loop.SockRecvAsync(socket, new byte[1]));
                transport.ResumeReading();

                PipeTestNative.WriteAll(peer, [1, 2, 3]);
                Assert.True(await protocol.WaitBytes(loop, 3));
                Assert.Equal([1, 2, 3], protocol.Received);

                transport.Close();
                if (Kind.Readiness)
                {
                    // Closing: the transport lets go, as asyncio's check only guards open transports.
                    Assert.False(loop.RemoveReader(fd));
                }

                await protocol.Lost;
            });
        }
        finally
        {
            Interop.Close(peer);
        }
    }

    [Fact]
    public void A_datagram_transports_fd_is_refused_and_the_transport_keeps_working()
    {
        using var h = new LoopHarness(CreateLoop);
        var loop = h.Loop;
        h.Run(async () =>
        {
            var (transport, protocol) = await loop.CreateDatagramEndpointAsync(
                () => new RecordingDatagramProtocol(loop), new IPEndPoint(IPAddress.Loopback, 0), null);
            var socket = (Socket)transport.GetExtraInfo("socket")!;
            int fd = checked((int)socket.Handle);

            AssertRefused(loop, fd, transport);
            // The view GetExtraInfo gives is refused as the transport's own socket is: same handle.
            await AssertSockCallRefused(fd, transport, () => loop.SockSendToAsync(socket, new byte[1], socket.LocalEndPoint!));

            using var sender = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            sender.SendTo(new byte[] { 9 }, socket.LocalEndPoint!);
            Assert.True(await protocol.WaitDatagrams(1));
            Assert.Equal([9], protocol.Datagrams[0].Data);

            transport.Close();
            await protocol.Lost;
        });
    }

    [Fact]
    public void A_pipe_transports_fd_is_refused_and_the_transport_keeps_working()
    {
        using var h = new LoopHarness(CreateLoop);
        var loop = h.Loop;
        using var pipe = new NativePipe();
        h.Run(async () =>
        {
            int fd = pipe.TakeRead();
            var (transport, protocol) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), fd);

            AssertRefused(loop, fd, transport);
            transport.PauseReading();
            AssertRefused(loop, fd, transport);
            transport.ResumeReading();

            pipe.WriteByte(5);
            Assert.True(await protocol.WaitBytes(loop, 1));
            Assert.Equal([5], protocol.Received);

            transport.Close();
            await protocol.Lost;
        });
    }

    /// <summary>The readiness calls refuse the fd (a loop without readiness refuses them for every fd, with NotSupportedException, so there is nothing to see).</summary>
    private void AssertRefused(BaseEventLoop loop, int fd, IBaseTransport transport)
    {
        if (!Kind.Readiness)
        {
            return;
        }

        foreach (var call in new Action[]
        {
            () => loop.AddReader(fd, () => { }),
            () => loop.AddWriter(fd, () => { }),
            () => loop.RemoveReader(fd),
            () => loop.RemoveWriter(fd),
        })
        {
            var ex = Assert.Throws<InvalidOperationException>(call);
            Assert.Contains($"File descriptor {fd} is used by transport {transport}", ex.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>A Sock* call on the transport's socket is refused, on every loop, naming the transport.</summary>
    private static async LoopTask AssertSockCallRefused(int fd, IBaseTransport transport, Func<Future> call)
    {
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(async () => await call());
        Assert.Contains($"File descriptor {fd} is used by transport {transport}", ex.Message, StringComparison.Ordinal);
    }
}

/// <summary>Transport fd ownership on the epoll loop.</summary>
[Collection(NativeFdCollection.Name)]
public sealed class EpollTransportFdOwnershipTests() : TransportFdOwnershipTests(LoopKinds.Epoll);

/// <summary>Transport fd ownership on the poll(2) loop.</summary>
[Collection(NativeFdCollection.Name)]
public sealed class PollTransportFdOwnershipTests() : TransportFdOwnershipTests(LoopKinds.Poll);

/// <summary>Transport fd ownership on the proactor loop (its Sock* methods; it has no readiness calls).</summary>
[Collection(NativeFdCollection.Name)]
public sealed class ProactorTransportFdOwnershipTests() : TransportFdOwnershipTests(LoopKinds.Proactor);
