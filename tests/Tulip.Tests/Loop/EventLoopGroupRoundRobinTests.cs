using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Tulip.Testing;
using static Tulip.Tests.Loop.GroupTestPeers;

namespace Tulip.Tests.Loop;

/// <summary>
/// <see cref="EventLoopGroup"/>'s round-robin distribution on every loop kind: one acceptor hands the
/// connections to the loops in turn (exactly: with N loops and k*N connections made one after another,
/// each loop serves k), over TCP, a UNIX path and a socket of the caller's; a loop that has failed is
/// skipped, and so is one whose server was closed; a failed acceptor's listener is closed (clients are
/// refused, the connections on the other loops go on); the graceful shutdown drains, closes and aborts
/// them on every loop; and nothing is left open. In the native-fd collection: one
/// test counts the process's fds. The clients are blocking sockets on the test's thread.
/// </summary>
public abstract class EventLoopGroupRoundRobinTests : LoopSuite
{
    protected EventLoopGroupRoundRobinTests(LoopKind kind) : base(kind)
    {
    }

    [Theory]
    [InlineData(2, 3)]
    [InlineData(3, 2)]
    public async Task EachLoopServesItsExactShare_InTurn(int loops, int perLoop)
    {
        var served = new ConcurrentQueue<IEventLoop>();
        await using var group = new EventLoopGroup(loops, () => Kind.Create());
        var server = await group.StartServerAsync(() =>
        {
            served.Enqueue(EventLoop.GetRunningLoop());
            return new LineEcho();
        }, "127.0.0.1", 0, GroupDistribution.RoundRobin);
        Assert.Equal(GroupDistribution.RoundRobin, server.Distribution);
        Assert.Equal(loops, server.Servers.Count);
        Assert.Equal(server.Port, ((IPEndPoint)Assert.Single(server.LocalEndPoints)).Port);

        for (int i = 0; i < loops * perLoop; i++)
        {
            using var client = Connect(server.Port);
            Assert.Equal($"ping {i}", Exchange(client, $"ping {i}"));
        }

        // In turn, the acceptor's own loop first: connection i on loop i mod N.
        var order = served.ToArray();
        Assert.Equal(loops * perLoop, order.Length);
        for (int i = 0; i < order.Length; i++)
        {
            Assert.Same(group.Loops[i % loops], order[i]);
        }

        Assert.True(await group.ShutdownAsync(TimeSpan.FromMinutes(1)).WaitAsync(Patience));
        Assert.False(CanConnect(server.Port));
    }

    [Fact]
    public async Task AUnixPath_IsServedInTurn_AndItsFileRemovedAtTheEnd()
    {
        string path = Path.Combine(Path.GetTempPath(), $"tulip-rr-{Guid.NewGuid():N}.sock");
        var served = new ConcurrentQueue<IEventLoop>();
        var group = new EventLoopGroup(2, () => Kind.Create());
        var server = await group.StartUnixServerAsync(() =>
        {
            served.Enqueue(EventLoop.GetRunningLoop());
            return new LineEcho();
        }, path);
        Assert.Equal(0, server.Port);
        for (int i = 0; i < 4; i++)
        {
            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = (int)Patience.TotalMilliseconds };
            client.Connect(new UnixDomainSocketEndPoint(path));
            Assert.Equal($"unix {i}", Exchange(client, $"unix {i}"));
        }

        Assert.Equal([group.Loops[0], group.Loops[1], group.Loops[0], group.Loops[1]], served.ToArray());
        Assert.True(await group.ShutdownAsync(TimeSpan.FromMinutes(1)).WaitAsync(Patience));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task ASocketOfTheCallers_IsServedInTurn_AndClosedAtTheEnd()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16); // as systemd passes it: listening already
        int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var served = new ConcurrentQueue<IEventLoop>();
        var group = new EventLoopGroup(2, () => Kind.Create());
        var server = await group.StartServerAsync(() =>
        {
            served.Enqueue(EventLoop.GetRunningLoop());
            return new LineEcho();
        }, listener);
        Assert.Equal(port, server.Port);
        for (int i = 0; i < 4; i++)
        {
            using var client = Connect(port);
            Assert.Equal($"given {i}", Exchange(client, $"given {i}"));
        }

        Assert.Equal([group.Loops[0], group.Loops[1], group.Loops[0], group.Loops[1]], served.ToArray());
        Assert.True(await group.ShutdownAsync(TimeSpan.FromMinutes(1)).WaitAsync(Patience));
        Assert.True(listener.SafeHandle.IsClosed);
    }

    [Fact]
    public async Task ALoopThatFailed_IsSkipped_AndTheOthersShareItsTurns()
    {
        FailingTestLoop? failing = null;
        int made = 0;
        var served = new ConcurrentQueue<IEventLoop>();
        // Loop 0 (the acceptor) and 1 are real; loop 2 fails once the server is up.
        var group = new EventLoopGroup(3, () => Interlocked.Increment(ref made) == 3 ? failing = new FailingTestLoop() : Kind.Create());
        try
        {
            var server = await group.StartServerAsync(() =>
            {
                served.Enqueue(EventLoop.GetRunningLoop());
                return new LineEcho();
            }, "127.0.0.1", 0, GroupDistribution.RoundRobin);
            Assert.Equal(3, server.Servers.Count);
            failing!.CallSoonThreadSafe(() => throw new InvalidOperationException("boom on loop 2"));
            await group.WhenLoopEnded(2).WaitAsync(Patience);
            Assert.Same(failing, Assert.Single(group.Failures).Loop);

            for (int i = 0; i < 4; i++)
            {
                using var client = Connect(server.Port);
                Assert.Equal($"two left {i}", Exchange(client, $"two left {i}"));
            }

            Assert.Equal([group.Loops[0], group.Loops[1], group.Loops[0], group.Loops[1]], served.ToArray());
        }
        finally
        {
            await group.DisposeAsync();
        }

        Assert.All(group.Loops, l => Assert.True(l.IsClosed));
    }

    [Fact]
    public async Task WhenTheAcceptorsLoopFails_ItsListenerCloses_AndTheConnectionsOnTheOtherLoopsGoOn()
    {
        // A real loop fails when an error escapes its run: here its logger throws on the error it is given
        // to log (a callback that threw), which nothing catches.
        int made = 0;
        var group = new EventLoopGroup(2, () => Interlocked.Increment(ref made) == 1 ? Kind.Create(new ThrowingLoggerFactory("acceptor boom")) : Kind.Create());
        try
        {
            var server = await group.StartServerAsync(() => new LineEcho(), "127.0.0.1", 0, GroupDistribution.RoundRobin);
            using var onAcceptor = Connect(server.Port);
            Assert.Equal("on loop 0", Exchange(onAcceptor, "on loop 0"));
            using var onOther = Connect(server.Port);
            Assert.Equal("on loop 1", Exchange(onOther, "on loop 1"));

            group.Loops[0].CallSoonThreadSafe(() => throw new InvalidOperationException("acceptor boom"));
            await group.WhenLoopEnded(0).WaitAsync(Patience);
            Assert.Same(group.Loops[0], Assert.Single(group.Failures).Loop);

            // Nobody accepts any more: the listener is closed, so a client is refused, not left in a backlog.
            Assert.False(CanConnect(server.Port));
            Assert.Equal("still served", Exchange(onOther, "still served"));

            // The group goes on with what it has: a new server is accepted for by the first loop still running.
            var again = await group.StartServerAsync(() => new LineEcho(), "127.0.0.1", 0, GroupDistribution.RoundRobin);
            Assert.Same(group.Loops[1], Assert.Single(again.Servers).Loop);
            using var client = Connect(again.Port);
            Assert.Equal("new server", Exchange(client, "new server"));
            onOther.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, onOther.Receive(new byte[1]));
        }
        finally
        {
            await group.DisposeAsync();
        }
    }

    [Fact]
    public async Task Shutdown_LetsRequestsInProgressOnEveryLoopFinish()
    {
        var group = new EventLoopGroup(2, () => Kind.Create());
        var server = await group.StartServerAsync(() => new LineEcho(), "127.0.0.1", 0, GroupDistribution.RoundRobin);
        using var first = Connect(server.Port);
        Assert.Equal("first", Exchange(first, "first")); // on loop 0
        using var second = Connect(server.Port);
        Assert.Equal("second", Exchange(second, "second")); // on loop 1
        first.Send("half a li"u8);
        second.Send("half a li"u8);

        var shutdown = group.ShutdownAsync(drain: TimeSpan.FromHours(1));
        first.Send("ne\n"u8);
        Assert.Equal("half a line", ReadLine(first));
        first.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, first.Receive(new byte[1]));
        // One loop's connection is still open: the shutdown waits for it.
        foreach (var loop in group.Loops)
        {
            Assert.True(await loop.RunCoroutineThreadSafe(static async () => true).WaitAsync(Patience));
        }

        Assert.False(shutdown.IsCompleted, "the connection in progress on the other loop should hold the shutdown");
        second.Send("ne\n"u8);
        Assert.Equal("half a line", ReadLine(second));
        second.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, second.Receive(new byte[1]));
        Assert.True(await shutdown.WaitAsync(Patience), "every connection finished by itself");
        Assert.False(CanConnect(server.Port));
        Assert.All(group.Loops, l => Assert.True(l.IsClosed));
    }

    [Fact]
    public async Task Shutdown_WithoutDrain_ClosesIdleConnections_AndAbortsOnesThatCannotFlush_OnEveryLoop()
    {
        var group = new EventLoopGroup(2, () => Kind.Create());
        var server = await group.StartServerAsync(() => new Flooder(), "127.0.0.1", 0, GroupDistribution.RoundRobin);
        using var idle = Connect(server.Port); // loop 0
        Assert.Equal("idle", Exchange(idle, "idle"));
        using var stuck = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = (int)Patience.TotalMilliseconds };
        stuck.ReceiveBufferSize = 4096;
        stuck.Connect(IPAddress.Loopback, server.Port); // loop 1
        Assert.Equal("stuck", Exchange(stuck, "stuck"));
        stuck.Send("flood\n"u8); // 64 MiB that this client never reads
        Assert.Equal(1, stuck.Receive(new byte[1])); // the server is writing it: the shutdown finds it buffered

        bool clean = await group.ShutdownAsync(TimeSpan.Zero, closeGrace: TimeSpan.Zero).WaitAsync(Patience);
        Assert.False(clean);
        Assert.Equal(0, idle.Receive(new byte[16]));
        var reset = Assert.Throws<SocketException>(() =>
        {
            var sink = new byte[1 << 16];
            while (stuck.Receive(sink) > 0)
            {
            }
        });
        Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
        Assert.All(group.Loops, l => Assert.True(l.IsClosed));
    }

    [Fact]
    public async Task ALoopWhoseServerIsClosed_IsSkipped_AndTheShutdownStillEnds()
    {
        var served = new ConcurrentQueue<IEventLoop>();
        var group = new EventLoopGroup(2, () => Kind.Create());
        var server = await group.StartServerAsync(() =>
        {
            served.Enqueue(EventLoop.GetRunningLoop());
            return new LineEcho();
        }, "127.0.0.1", 0, GroupDistribution.RoundRobin);
        var closing = server.Servers[1];
        await closing.Loop.RunCoroutineThreadSafe(async () =>
        {
            closing.Close();
            await Tasks.Yield();
            return closing.IsServing;
        }).WaitAsync(Patience);

        for (int i = 0; i < 3; i++)
        {
            using var client = Connect(server.Port);
            Assert.Equal($"loop 0 serves {i}", Exchange(client, $"loop 0 serves {i}"));
        }

        Assert.Equal([group.Loops[0], group.Loops[0], group.Loops[0]], served.ToArray());
        // The closed server waits for the acceptor to hand nothing more; the shutdown closes the acceptor.
        Assert.True(await group.ShutdownAsync(TimeSpan.FromMinutes(1)).WaitAsync(Patience));
    }

    [Fact]
    public async Task AConnectionOnItsWayToALoopWhoseServerClosesMeanwhile_IsStillServed()
    {
        await using var group = new EventLoopGroup(2, () => Kind.Create());
        var server = await group.StartServerAsync(() => new LineEcho(), "127.0.0.1", 0, GroupDistribution.RoundRobin);
        var target = server.Servers[1];
        using var blocked = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        // Loop 1 is held; behind the hold, its server's Close is queued.
        target.Loop.CallSoonThreadSafe(() =>
        {
            blocked.Set();
            release.Wait(Patience);
        });
        Assert.True(blocked.Wait(Patience));
        target.Loop.CallSoonThreadSafe(target.Close);

        using var first = Connect(server.Port);
        Assert.Equal("loop 0", Exchange(first, "loop 0"));
        using var onItsWay = Connect(server.Port); // handed to loop 1: queued behind the Close
        using var third = Connect(server.Port);
        Assert.Equal("loop 0 again", Exchange(third, "loop 0 again")); // accepted after it: so it has been handed over

        release.Set(); // the Close runs, then the connection arrives: accepted while the group server was open, it is served
        Assert.Equal("still served", Exchange(onItsWay, "still served"));
        foreach (var client in new[] { first, onItsWay, third })
        {
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, client.Receive(new byte[1]));
        }

        Assert.True(await group.ShutdownAsync(TimeSpan.FromMinutes(1)).WaitAsync(Patience));
    }

    [Fact]
    public async Task NothingIsLeftOpen()
    {
        await RunOnce(); // the first run opens what the runtime keeps for the process (the proactor's engine)
        GC.Collect();
        GC.WaitForPendingFinalizers();
        int before = LoopHarness.OpenFdCount();
        var fdsBefore = LoopHarness.OpenFds();
        await RunOnce();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        int after = LoopHarness.OpenFdCount();
        // Not more (the run's own fds are closed); fewer is a finalizer of an earlier test's socket that ran meanwhile.
        Assert.True(after <= before, $"fds before {before}, after {after}: new {string.Join(", ", LoopHarness.OpenFds().Where(kv => !fdsBefore.ContainsKey(kv.Key)).Select(kv => $"{kv.Key}->{kv.Value}"))}");

        async Task RunOnce()
        {
            var group = new EventLoopGroup(2, () => Kind.Create());
            var server = await group.StartServerAsync(() => new LineEcho(), "127.0.0.1", 0, GroupDistribution.RoundRobin);
            var closing = server.Servers[1];
            using var open = Connect(server.Port);
            Assert.Equal("kept", Exchange(open, "kept"));
            using var done = Connect(server.Port);
            Assert.Equal("done", Exchange(done, "done"));
            done.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, done.Receive(new byte[1]));
            await group.ShutdownAsync(TimeSpan.Zero).WaitAsync(Patience);
            Assert.Equal(0, open.Receive(new byte[1]));
        }
    }

    [Fact]
    public async Task BadArguments_AreRefused_SayingWhatToDo()
    {
        await using var group = new EventLoopGroup(1, () => Kind.Create());
        Func<IBaseProtocol> echo = () => new LineEcho();
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => group.StartServerAsync(echo, "127.0.0.1", 0, (GroupDistribution)42));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => group.StartServerAsync(echo, "127.0.0.1", -1, GroupDistribution.RoundRobin));
        await Assert.ThrowsAsync<ArgumentNullException>(() => group.StartServerAsync(null!, "127.0.0.1", 0, GroupDistribution.RoundRobin));
        var e = await Assert.ThrowsAsync<ArgumentException>(() => group.StartServerAsync(echo, "127.0.0.1", 0, GroupDistribution.RoundRobin, new ServerOptions { StartServing = false }));
        Assert.Contains("StartServing", e.Message);
        using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        e = await Assert.ThrowsAsync<ArgumentException>(() => group.StartServerAsync(echo, "127.0.0.1", 0, GroupDistribution.RoundRobin, new ServerOptions { Socket = tcp }));
        Assert.Contains("overload", e.Message);
        await Assert.ThrowsAsync<ArgumentNullException>(() => group.StartServerAsync(echo, (Socket)null!));
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        e = await Assert.ThrowsAsync<ArgumentException>(() => group.StartServerAsync(echo, udp));
        Assert.Contains("stream socket", e.Message);
        Assert.False(udp.SafeHandle.IsClosed); // refused at once: still the caller's
        await Assert.ThrowsAsync<ArgumentException>(() => group.StartUnixServerAsync(echo, ""));

        await group.ShutdownAsync(TimeSpan.Zero);
        var shut = await Assert.ThrowsAsync<InvalidOperationException>(() => group.StartServerAsync(echo, "127.0.0.1", 0, GroupDistribution.RoundRobin));
        Assert.Contains("shut", shut.Message);
        shut = await Assert.ThrowsAsync<InvalidOperationException>(() => group.StartServerAsync(echo, tcp));
        Assert.False(tcp.SafeHandle.IsClosed);
    }

    [Fact]
    public async Task AProtocolFactoryThatMakesNoStreamProtocol_IsReportedOnTheLoop_AndTheServerGoesOn()
    {
        var errors = new ConcurrentQueue<ExceptionContext>();
        int made = 0;
        await using var group = new EventLoopGroup(1, () =>
        {
            var loop = Kind.Create();
            loop.SetExceptionHandler((_, context) => errors.Enqueue(context));
            return loop;
        });
        var server = await group.StartServerAsync(() => Interlocked.Increment(ref made) == 1 ? new NotAStreamProtocol() : new LineEcho(),
            "127.0.0.1", 0, GroupDistribution.RoundRobin);
        using (var first = Connect(server.Port))
        {
            try
            {
                Assert.Equal(0, first.Receive(new byte[1])); // closed
            }
            catch (SocketException e)
            {
                Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
            }
        }

        using var second = Connect(server.Port);
        Assert.Equal("after", Exchange(second, "after"));
        Assert.Contains(errors, c => c.Exception?.ToString().Contains(nameof(IProtocol)) == true);
    }

    /// <summary>A protocol of neither stream kind: a factory's mistake the server must report, not crash on.</summary>
    private sealed class NotAStreamProtocol : IBaseProtocol
    {
        public void ConnectionMade(IBaseTransport transport)
        {
        }

        public void ConnectionLost(Exception? exception)
        {
        }

        public void PauseWriting()
        {
        }

        public void ResumeWriting()
        {
        }
    }

    /// <summary>A virtual-clock loop whose unhandled callback error escapes its run.</summary>
    private sealed class FailingTestLoop : TestEventLoop
    {
    }

    /// <summary>Loggers that throw when asked to log an error whose exception says <paramref name="trigger"/>: an error escaping a real loop's run.</summary>
    private sealed class ThrowingLoggerFactory(string trigger) : ILoggerFactory, ILogger
    {
        public ILogger CreateLogger(string categoryName) => this;

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public void Dispose()
        {
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (exception?.Message.Contains(trigger, StringComparison.Ordinal) == true)
            {
                throw new InvalidOperationException($"the logger failed on: {exception.Message}");
            }
        }
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollEventLoopGroupRoundRobinTests() : EventLoopGroupRoundRobinTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollEventLoopGroupRoundRobinTests() : EventLoopGroupRoundRobinTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorEventLoopGroupRoundRobinTests() : EventLoopGroupRoundRobinTests(LoopKinds.Proactor);
