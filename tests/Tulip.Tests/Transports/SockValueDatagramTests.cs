using System.Net;
using System.Net.Sockets;
using Tulip;
using Xunit.Abstractions;
using static Tulip.Tests.Transports.SockValueSupport;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// SockRecvFromValueAsync and SockSendToValueAsync, the ValueTask forms of sock_recvfrom and
/// sock_sendto in the shape of Socket's SocketAddress overloads, on every loop: the sender's address
/// written back, cancellation at the await, bad calls, and what a round trip allocates.
/// </summary>
public abstract class SockValueDatagramTests : LoopSuite
{
    private readonly ITestOutputHelper _output;

    protected SockValueDatagramTests(LoopKind kind, ITestOutputHelper output) : base(kind) => _output = output;

    private static Socket Udp()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Blocking = false;
        return socket;
    }

    [Fact]
    public void AWaitingReceive_GetsTheDatagram_AndTheSendersAddress()
    {
        Run(Kind, async loop =>
        {
            using var a = Udp();
            using var b = Udp();
            var from = new SocketAddress(AddressFamily.InterNetwork);
            var buffer = new byte[100];
            // Started first, so it waits: the pooled path.
            var receiving = loop.SockRecvFromValueAsync(b, buffer, from);
            Assert.False(receiving.IsCompleted);
            Assert.Equal(5, await loop.SockSendToValueAsync(a, "hello"u8.ToArray(), b.LocalEndPoint!.Serialize()));
            Assert.Equal(5, await receiving);
            Assert.Equal("hello"u8.ToArray(), buffer.AsSpan(0, 5).ToArray());
            Assert.Equal(a.LocalEndPoint, new IPEndPoint(IPAddress.Any, 0).Create(from));

            // One already waiting: taken at once.
            await loop.SockSendToValueAsync(b, "back"u8.ToArray(), a.LocalEndPoint!.Serialize());
            Assert.True(await Eventually(() => a.Available > 0));
            var now = loop.SockRecvFromValueAsync(a, buffer, from);
            Assert.True(now.IsCompleted);
            Assert.Equal(4, await now);
            Assert.Equal(b.LocalEndPoint, new IPEndPoint(IPAddress.Any, 0).Create(from));
        });
    }

    [Fact]
    public void RecvCancelledByToken_IsWithdrawn_TheNextRecvGetsTheDatagram()
    {
        Run(Kind, async loop =>
        {
            using var a = Udp();
            using var b = Udp();
            int registrations = Kind.Registrations(loop);
            var from = new SocketAddress(AddressFamily.InterNetwork);
            var buffer = new byte[16];
            using var cts = new CancellationTokenSource();
            var receiving = loop.SockRecvFromValueAsync(b, buffer, from, cts.Token);
            Assert.False(receiving.IsCompleted);
            cts.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await receiving);
            Assert.Equal(registrations, Kind.Registrations(loop));

            await loop.SockSendToValueAsync(a, "after"u8.ToArray(), b.LocalEndPoint!.Serialize());
            Assert.Equal(5, await loop.SockRecvFromValueAsync(b, buffer, from));
            Assert.Equal("after"u8.ToArray(), buffer.AsSpan(0, 5).ToArray());
        });
    }

    [Fact]
    public void TaskCancelled_AtTheRecvAwait_TheDatagramWaitsForTheNextRecv()
    {
        Run(Kind, async loop =>
        {
            using var a = Udp();
            using var b = Udp();
            var from = new SocketAddress(AddressFamily.InterNetwork);
            var buffer = new byte[16];
            var waiter = loop.CreateTask(async () => await loop.SockRecvFromValueAsync(b, buffer, from));
            await Tasks.Sleep(0);
            Assert.False(waiter.Done);
            waiter.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await waiter);

            await loop.SockSendToValueAsync(a, "kept"u8.ToArray(), b.LocalEndPoint!.Serialize());
            Assert.Equal(4, await loop.SockRecvFromValueAsync(b, buffer, from));
        });
    }

    [Fact]
    public void AnAlreadyCancelledToken_FailsAtOnce_AndSendsNothing()
    {
        Run(Kind, async loop =>
        {
            using var a = Udp();
            using var b = Udp();
            var sending = loop.SockSendToValueAsync(a, "no"u8.ToArray(), b.LocalEndPoint!.Serialize(), new CancellationToken(canceled: true));
            Assert.True(sending.IsCompleted);
            await Assert.ThrowsAsync<CancelledError>(async () => await sending);
            await Tasks.Sleep(0);
            Assert.Equal(0, b.Available); // a loopback datagram arrives inside sendto(2): none was sent
        });
    }

    // CA2012: these calls throw before making a ValueTask; there is nothing to await.
#pragma warning disable CA2012
    [Fact]
    public void BadCalls_ClearErrors()
    {
        Run(Kind, async loop =>
        {
            using var udp = Udp();
            var v4 = new SocketAddress(AddressFamily.InterNetwork);
            Assert.Throws<ArgumentNullException>(() => { _ = loop.SockRecvFromValueAsync(udp, new byte[1], null!); });
            Assert.Throws<ArgumentNullException>(() => { _ = loop.SockSendToValueAsync(udp, new byte[1], null!); });
            Assert.Throws<ArgumentNullException>(() => { _ = loop.SockRecvFromValueAsync(null!, new byte[1], v4); });
            var wrongFamily = Assert.Throws<ArgumentException>(() => { _ = loop.SockRecvFromValueAsync(udp, new byte[1], new SocketAddress(AddressFamily.InterNetworkV6)); });
            Assert.Contains("InterNetworkV6", wrongFamily.Message, StringComparison.Ordinal);
            Assert.Equal("receivedAddress", wrongFamily.ParamName);
            Assert.Throws<ArgumentException>(() => { _ = loop.SockSendToValueAsync(udp, new byte[1], new SocketAddress(AddressFamily.InterNetworkV6)); });
            // Too little room for a sender's address: refused before anything is received.
            var small = Assert.Throws<ArgumentException>(() => { _ = loop.SockRecvFromValueAsync(udp, new byte[1], new SocketAddress(AddressFamily.InterNetwork, 8)); });
            Assert.Contains("room", small.Message, StringComparison.Ordinal);

            using var blocking = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            var ex = Assert.Throws<ArgumentException>(() => { _ = loop.SockRecvFromValueAsync(blocking, new byte[1], v4); });
            Assert.Contains("non-blocking", ex.Message, StringComparison.Ordinal);

            var offLoop = await Task.Run(() => Record.Exception(() => { _ = loop.SockRecvFromValueAsync(udp, new byte[1], v4); }));
            Assert.IsType<InvalidOperationException>(offLoop);
            Assert.Contains("loop thread", offLoop.Message, StringComparison.Ordinal);
        });
    }
#pragma warning restore CA2012

    /// <summary>
    /// A datagram and its answer, many times over, each receive started before its datagram is sent
    /// (so it waits: the pooled path), beside the LoopTask forms. On a readiness loop a receive that
    /// waits registers the fd and unregisters it when done, as asyncio's add_reader/remove_reader do,
    /// and that registration (about 80 B) is what remains; the bound catches a per-call future, task
    /// or closure coming back.
    /// </summary>
    [Fact]
    public void ARoundTripAllocatesLessThanWithTheLoopTaskForms()
    {
        const int Warmup = 200;
        const int RoundTrips = 2000;
        double valuePerTrip = 0, taskPerTrip = 0;
        Run(Kind, async loop =>
        {
            using var a = Udp();
            using var b = Udp();
            var toB = b.LocalEndPoint!.Serialize();
            var toA = a.LocalEndPoint!.Serialize();
            var fromA = new SocketAddress(AddressFamily.InterNetwork);
            var fromB = new SocketAddress(AddressFamily.InterNetwork);
            var request = new byte[64];
            var buffer = new byte[64];

            async LoopTask ValueTrips(int count)
            {
                for (int i = 0; i < count; i++)
                {
                    var atB = loop.SockRecvFromValueAsync(b, buffer, fromA);
                    await loop.SockSendToValueAsync(a, request, toB);
                    int n = await atB;
                    var atA = loop.SockRecvFromValueAsync(a, buffer, fromB);
                    await loop.SockSendToValueAsync(b, buffer.AsMemory(0, n), toA);
                    await atA;
                }
            }

            async LoopTask TaskTrips(int count)
            {
                var endB = b.LocalEndPoint!;
                var endA = a.LocalEndPoint!;
                for (int i = 0; i < count; i++)
                {
                    var atB = loop.SockRecvFromAsync(b, buffer);
                    await loop.SockSendToAsync(a, request, endB);
                    var (n, _) = await atB;
                    var atA = loop.SockRecvFromAsync(a, buffer);
                    await loop.SockSendToAsync(b, buffer.AsMemory(0, n), endA);
                    await atA;
                }
            }

            valuePerTrip = await AllocatedPerIterationAsync(ValueTrips, Warmup, RoundTrips);
            taskPerTrip = await AllocatedPerIterationAsync(TaskTrips, Warmup, RoundTrips);
        });

        _output.WriteLine($"{Backend}: a datagram and its answer allocate {valuePerTrip:F1} B on the loop thread with the ValueTask forms, {taskPerTrip:F1} B with the LoopTask forms");
        Assert.True(valuePerTrip <= 256, $"{Backend}: {valuePerTrip:F1} B per datagram round trip with SockSendToValueAsync + SockRecvFromValueAsync (bound 256 B; the LoopTask forms: {taskPerTrip:F1} B)");
        Assert.True(valuePerTrip < taskPerTrip / 2, $"{Backend}: the ValueTask forms allocate {valuePerTrip:F1} B per round trip, the LoopTask forms {taskPerTrip:F1} B");
    }
}

public sealed class EpollSockValueDatagramTests(ITestOutputHelper output) : SockValueDatagramTests(LoopKinds.Epoll, output);

public sealed class PollSockValueDatagramTests(ITestOutputHelper output) : SockValueDatagramTests(LoopKinds.Poll, output);

public sealed class ProactorSockValueDatagramTests(ITestOutputHelper output) : SockValueDatagramTests(LoopKinds.Proactor, output);
