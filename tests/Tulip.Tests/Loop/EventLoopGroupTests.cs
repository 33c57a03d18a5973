using System.Net;
using System.Net.Sockets;
using System.Text;
using Tulip.Testing;
using static Tulip.Tests.Loop.GroupTestPeers;

namespace Tulip.Tests.Loop;

/// <summary>
/// <see cref="EventLoopGroup"/> on every loop kind: connections spread over the loops, a graceful
/// shutdown lets a request in progress finish, then closes and aborts, a failing loop leaves the others
/// serving, and nothing is left behind (threads end, loops close). The clients are plain blocking
/// sockets on the test's thread: the group's loops are the only loops here.
/// </summary>
public abstract class EventLoopGroupTests : LoopSuite
{
    protected EventLoopGroupTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public async Task ConnectionsSpreadOverTheLoops_AndEachEchoes()
    {
        var served = new System.Collections.Concurrent.ConcurrentDictionary<IEventLoop, int>();
        await using var group = new EventLoopGroup(2, () => Kind.Create());
        var server = await group.StartServerAsync(() =>
        {
            served.AddOrUpdate(EventLoop.GetRunningLoop(), 1, static (_, n) => n + 1);
            return new LineEcho();
        }, "127.0.0.1", 0);
        Assert.Equal(2, server.Servers.Count);
        Assert.All(server.Servers, s => Assert.Equal(server.Port, ((IPEndPoint)s.Sockets[0].LocalEndPoint!).Port));

        // 64 connections: SO_REUSEPORT hashes each by its address, so with two listeners the chance that one
        // gets none is 2^-63.
        for (int i = 0; i < 64; i++)
        {
            using var client = Connect(server.Port);
            Assert.Equal($"ping {i}", Exchange(client, $"ping {i}"));
        }

        Assert.Equal(2, served.Count);
        Assert.All(served.Values, n => Assert.True(n > 0));
        Assert.Equal(64, served.Values.Sum());
        Assert.Empty(group.Failures);
    }

    [Fact]
    public async Task Shutdown_LetsARequestInProgressFinish_ThenStops()
    {
        var group = new EventLoopGroup(2, () => Kind.Create());
        var server = await group.StartServerAsync(() => new LineEcho(), "127.0.0.1", 0);
        using var client = Connect(server.Port);
        Assert.Equal("first", Exchange(client, "first"));
        client.Send("half a li"u8);

        var shutdown = group.ShutdownAsync(drain: TimeSpan.FromHours(1));
        // No more accepting. The shutdown posted each server's drain, which closes its listener first thing;
        // a call posted to each loop after it runs once that has happened.
        foreach (var loop in group.Loops)
        {
            Assert.True(await loop.RunCoroutineThreadSafe(static async () => true).WaitAsync(Patience));
        }

        Assert.False(CanConnect(server.Port), "the listeners should be closed before the connections are waited for");
        Assert.False(shutdown.IsCompleted, "the connection in progress should hold the shutdown");

        client.Send("ne\n"u8);
        Assert.Equal("half a line", ReadLine(client));
        client.Shutdown(SocketShutdown.Send); // the client is done: the server's side ends
        Assert.Equal(0, client.Receive(new byte[1]));
        Assert.True(await shutdown.WaitAsync(Patience), "every connection finished by itself");
        Assert.All(group.Loops, l => Assert.True(l.IsClosed));
    }

    [Fact]
    public async Task Shutdown_WithoutDrain_ClosesIdleConnections_AndAbortsOnesThatCannotFlush()
    {
        var group = new EventLoopGroup(1, () => Kind.Create());
        var server = await group.StartServerAsync(() => new Flooder(), "127.0.0.1", 0);
        using var idle = Connect(server.Port);
        Assert.Equal("idle", Exchange(idle, "idle"));
        using var stuck = Connect(server.Port);
        stuck.ReceiveBufferSize = 4096;
        stuck.Send("flood\n"u8); // the server writes 64 MiB that this client never reads

        bool clean = await group.ShutdownAsync(TimeSpan.Zero, closeGrace: TimeSpan.Zero).WaitAsync(Patience);
        Assert.False(clean);
        Assert.Equal(0, idle.Receive(new byte[16])); // closed: a clean EOF after what it was sent
        var reset = Assert.Throws<SocketException>(() =>
        {
            var sink = new byte[1 << 16];
            while (stuck.Receive(sink) > 0)
            {
            }
        });
        Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode); // aborted: what it held was dropped
        Assert.All(group.Loops, l => Assert.True(l.IsClosed));
    }

    [Fact]
    public async Task ALoopThatFails_EndsAlone_AndTheOthersServeOn()
    {
        FailingTestLoop? failing = null;
        int made = 0;
        var group = new EventLoopGroup(2, () => Interlocked.Increment(ref made) == 2 ? failing = new FailingTestLoop() : Kind.Create());
        try
        {
            Assert.NotNull(failing);
            failing.CallSoonThreadSafe(() => throw new InvalidOperationException("boom on loop 1"));
            await group.WhenLoopEnded(1).WaitAsync(Patience);
            var (loop, error) = Assert.Single(group.Failures);
            Assert.Same(failing, loop);
            Assert.Contains("boom on loop 1", error.ToString());

            // The first loop still serves: a server started now goes on the loops still running only.
            var server = await group.StartServerAsync(() => new LineEcho(), "127.0.0.1", 0);
            Assert.Same(group.Loops[0], Assert.Single(server.Servers).Loop);
            using var client = Connect(server.Port);
            Assert.Equal("still here", Exchange(client, "still here"));
        }
        finally
        {
            await group.DisposeAsync();
        }

        Assert.All(group.Loops, l => Assert.True(l.IsClosed));
    }

    [Fact]
    public async Task BadArguments_AreRefused_AndAShutDownGroupRefusesServers()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new EventLoopGroup(0, () => Kind.Create()));
        var group = new EventLoopGroup(1, () => Kind.Create());
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await Assert.ThrowsAsync<ArgumentException>(() => group.StartServerAsync(() => new LineEcho(), "127.0.0.1", 0, new ServerOptions { Socket = socket }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => group.ShutdownAsync(TimeSpan.FromSeconds(-1)));
        await group.DisposeAsync();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => group.StartServerAsync(() => new LineEcho(), "127.0.0.1", 0));
        Assert.Contains("shut", e.Message);
        Assert.True(await group.ShutdownAsync(TimeSpan.Zero)); // idempotent
    }

    [Fact]
    public async Task ShutdownFromOneOfItsOwnLoops_IsRefused_SayingWhereToCallIt()
    {
        await using var group = new EventLoopGroup(1, () => Kind.Create());
        var loop = group.Loops[0];
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => loop.RunCoroutineThreadSafe(async () =>
        {
            await group.ShutdownAsync(TimeSpan.Zero);
            return true;
        }));
        Assert.Contains("another thread", e.Message);
        Assert.False(loop.IsClosed); // refused, not half done: the group still runs
    }

    /// <summary>A virtual-clock loop whose unhandled callback error escapes its run: the failure the group must contain.</summary>
    private sealed class FailingTestLoop : TestEventLoop
    {
    }
}

public sealed class EpollEventLoopGroupTests() : EventLoopGroupTests(LoopKinds.Epoll);

public sealed class PollEventLoopGroupTests() : EventLoopGroupTests(LoopKinds.Poll);

public sealed class ProactorEventLoopGroupTests() : EventLoopGroupTests(LoopKinds.Proactor);
