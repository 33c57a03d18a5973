using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Tulip.Hosting;
using Tulip.Streams;
using static Tulip.Hosting.Tests.HostingTestSupport;

namespace Tulip.Hosting.Tests;

/// <summary>
/// AddTulip with <see cref="TulipOptions.LoopCount"/> 2 (an <see cref="EventLoopGroup"/> in the host), on every
/// loop kind: each endpoint kind served on both loops (TCP by either distribution; a UNIX path, a socket of the
/// application's and systemd's sockets round robin), and the graceful shutdown's phases, token and report over
/// both loops at once, the host's timeout included. Every wait is on an event; timeouts are hang guards.
/// </summary>
public sealed class HostedGroupTests
{
    public static TheoryData<string, GroupDistribution> KindsAndDistributions
    {
        get
        {
            var data = new TheoryData<string, GroupDistribution>();
            foreach (string name in EventLoopKinds.AvailableNames)
            {
                data.Add(name, GroupDistribution.ReusePort);
                data.Add(name, GroupDistribution.RoundRobin);
            }

            return data;
        }
    }

    /// <summary>Echoes what it gets; records the loop it runs on.</summary>
    private sealed class RecordingEcho(ConcurrentQueue<IEventLoop> served) : Protocol
    {
        private ITransport? _transport;

        public override void ConnectionMade(IBaseTransport transport)
        {
            served.Enqueue(EventLoop.GetRunningLoop());
            _transport = (ITransport)transport;
        }

        public override void DataReceived(ReadOnlySpan<byte> data) => _transport!.Write(data);

        public override bool EofReceived() => false;
    }

    private static async Task EchoOnce(EndPoint endPoint, string text)
    {
        using var client = await ConnectAsync(endPoint);
        await SendAsync(client, text + "\n");
        Assert.Equal(text, await ReadLineAsync(client));
        client.Shutdown(SocketShutdown.Send);
        Assert.True(await ReadToEndAsync(client));
    }

    [Theory]
    [MemberData(nameof(KindsAndDistributions))]
    public async Task Tcp_is_served_on_every_loop_and_the_host_stops_them_all(string kind, GroupDistribution distribution)
    {
        var served = new ConcurrentQueue<IEventLoop>();
        var logs = new RecordingLoggerProvider();
        using var host = BuildHost(kind, o =>
        {
            o.LoopCount = 2;
            o.Distribution = distribution;
            o.ListenTcp("127.0.0.1", 0).UseProtocol(() => new RecordingEcho(served));
        }, logs);
        await host.StartAsync().WaitAsync(Patience);
        var tulip = host.Tulip();
        Assert.Equal(2, tulip.Loops.Count);
        Assert.Same(tulip.Loops[0], tulip.Loop);
        Assert.All(tulip.Loops, l => Assert.Equal(kind, EventLoopKinds.NameOf(l)));
        var listener = Assert.Single(tulip.Listeners);
        Assert.Equal(distribution, listener.Distribution);
        Assert.Equal([tulip.Loops[0], tulip.Loops[1]], listener.Servers.Select(static s => s.Loop));
        var endPoint = host.FirstEndPoint();

        // Round robin is exact: 4 connections, 2 each, in turn. SO_REUSEPORT hashes: with 64, the chance that
        // one loop gets none is 2^-63.
        int count = distribution == GroupDistribution.RoundRobin ? 4 : 64;
        for (int i = 0; i < count; i++)
        {
            await EchoOnce(endPoint, $"line {i}");
        }

        var order = served.ToArray();
        Assert.Equal(count, order.Length);
        if (distribution == GroupDistribution.RoundRobin)
        {
            Assert.Equal([tulip.Loops[0], tulip.Loops[1], tulip.Loops[0], tulip.Loops[1]], order);
        }
        else
        {
            Assert.All(tulip.Loops, l => Assert.Contains(l, order));
        }

        await host.StopAsync().WaitAsync(Patience);
        Assert.Equal(new TulipShutdownReport(TulipShutdownOutcome.Drained, false, 0, 0), tulip.ShutdownReport);
        Assert.All(tulip.Loops, l => Assert.True(l.IsClosed));
        Assert.True(await IsRefusedAsync(endPoint));
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning);
        Assert.Contains(logs.Entries, e => e.Category == "Tulip.Hosting" && e.Message.Contains($"on 2 {kind} loops", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public async Task Requests_in_hand_on_both_loops_are_answered_within_the_drain_period(string kind)
    {
        var gotRequests = new CountdownEvent(2);
        var stoppingSeen = new ConcurrentDictionary<IEventLoop, bool>();
        var allStopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(kind, o =>
        {
            o.LoopCount = 2;
            o.Distribution = GroupDistribution.RoundRobin; // one connection on each loop, for sure
            o.DrainTimeout = TimeSpan.FromHours(1);
            o.ListenTcp("127.0.0.1", 0).UseStreams(async (reader, writer, context) =>
            {
                Assert.Same(EventLoop.GetRunningLoop(), context.Loop); // each loop's handlers get its own context
                context.Stopping.Register(() =>
                {
                    Assert.Same(context.Loop, EventLoop.GetRunningLoop()); // on its loop's thread
                    stoppingSeen[context.Loop] = true;
                    if (stoppingSeen.Count == 2)
                    {
                        allStopping.TrySetResult();
                    }
                });
                byte[] request = await reader.ReadLineAsync();
                gotRequests.Signal();
                await release.Task;
                writer.Write(Encoding.ASCII.GetBytes("done:"));
                writer.Write(request);
                await writer.DrainAsync();
                writer.Close();
            });
        });
        await host.StartAsync().WaitAsync(Patience);
        var endPoint = host.FirstEndPoint();
        using var first = await ConnectAsync(endPoint);
        await SendAsync(first, "one\n");
        using var second = await ConnectAsync(endPoint);
        await SendAsync(second, "two\n");
        Assert.True(gotRequests.Wait(Patience));

        var stop = host.StopAsync();
        await allStopping.Task.WaitAsync(Patience);
        Assert.True(await IsRefusedAsync(endPoint));
        Assert.False(stop.IsCompleted);
        release.SetResult();
        Assert.Equal("done:one", await ReadLineAsync(first));
        Assert.Equal("done:two", await ReadLineAsync(second));
        Assert.True(await ReadToEndAsync(first));
        Assert.True(await ReadToEndAsync(second));
        await stop.WaitAsync(Patience);
        Assert.Equal(new TulipShutdownReport(TulipShutdownOutcome.Drained, false, 0, 0), host.Tulip().ShutdownReport);
        Assert.All(host.Tulip().Loops, l => Assert.True(l.IsClosed));
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public async Task Idle_connections_on_both_loops_are_closed_after_the_drain_period(string kind)
    {
        using var host = BuildHost(kind, o =>
        {
            o.LoopCount = 2;
            o.Distribution = GroupDistribution.RoundRobin;
            o.DrainTimeout = TimeSpan.Zero;
            o.ListenTcp("127.0.0.1", 0).UseProtocol(() => new RecordingEcho(new ConcurrentQueue<IEventLoop>()));
        });
        await host.StartAsync().WaitAsync(Patience);
        var endPoint = host.FirstEndPoint();
        using var first = await ConnectAsync(endPoint);
        await SendAsync(first, "a\n");
        Assert.Equal("a", await ReadLineAsync(first));
        using var second = await ConnectAsync(endPoint);
        await SendAsync(second, "b\n");
        Assert.Equal("b", await ReadLineAsync(second));

        await host.StopAsync().WaitAsync(Patience);
        Assert.True(await ReadToEndAsync(first));
        Assert.True(await ReadToEndAsync(second));
        Assert.Equal(new TulipShutdownReport(TulipShutdownOutcome.Closed, false, 0, 0), host.Tulip().ShutdownReport);
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public async Task The_hosts_shutdown_timeout_aborts_on_every_loop_and_leaves_a_stubborn_task_behind(string kind)
    {
        var stoppingSeen = new ConcurrentDictionary<IEventLoop, bool>();
        var allStopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var logs = new RecordingLoggerProvider();
        int connections = 0;
        var handlersRunning = new CountdownEvent(2);
        using var host = BuildHost(kind, o =>
        {
            o.LoopCount = 2;
            o.Distribution = GroupDistribution.RoundRobin;
            o.DrainTimeout = Timeout.InfiniteTimeSpan;
            o.CloseTimeout = Timeout.InfiniteTimeSpan;
            o.ListenTcp("127.0.0.1", 0).UseStreams(async (reader, writer, context) =>
            {
                if (Interlocked.Increment(ref connections) == 1)
                {
                    _ = context.Loop.CreateTask(Stubborn); // on the first loop only
                }

                context.Stopping.Register(() =>
                {
                    stoppingSeen[context.Loop] = true;
                    if (stoppingSeen.Count == 2)
                    {
                        allStopping.TrySetResult();
                    }
                });
                handlersRunning.Signal();
                await reader.ReadAsync();
            });
        }, logs);
        await host.StartAsync().WaitAsync(Patience);
        using var first = await ConnectAsync(host.FirstEndPoint());
        using var second = await ConnectAsync(host.FirstEndPoint());
        Assert.True(handlersRunning.Wait(Patience)); // one on each loop
        using var shutdownTimeout = new CancellationTokenSource();
        var stop = host.StopAsync(shutdownTimeout.Token);
        await allStopping.Task.WaitAsync(Patience);
        Assert.False(stop.IsCompleted);
        shutdownTimeout.Cancel();
        await stop.WaitAsync(Patience);
        var report = host.Tulip().ShutdownReport!;
        Assert.Equal(TulipShutdownOutcome.Aborted, report.Outcome);
        Assert.True(report.HostTimeoutExpired);
        Assert.Equal(1, report.TasksLeftRunning);
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("did not end after its cancellation", StringComparison.Ordinal));
        await ReadToEndAsync(first);
        await ReadToEndAsync(second);
        Assert.All(host.Tulip().Loops, l => Assert.True(l.IsClosed));

        static async LoopTask Stubborn()
        {
            while (true)
            {
                try
                {
                    await Tasks.Sleep(3600);
                }
                catch (CancelledError)
                {
                    // ignores every cancellation
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public async Task A_unix_path_and_a_socket_of_the_applications_are_served_round_robin(string kind)
    {
        string path = Path.Combine(Path.GetTempPath(), $"tulip-hosting-group-{Guid.NewGuid():N}.sock");
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var unixServed = new ConcurrentQueue<IEventLoop>();
        var socketServed = new ConcurrentQueue<IEventLoop>();
        using var host = BuildHost(kind, o =>
        {
            o.LoopCount = 2; // Distribution left at ReusePort: it is for TCP addresses only
            o.ListenUnix(path).UseProtocol(() => new RecordingEcho(unixServed));
            o.ListenSocket(listener).UseProtocol(() => new RecordingEcho(socketServed));
        });
        await host.StartAsync().WaitAsync(Patience);
        var tulip = host.Tulip();
        Assert.All(tulip.Listeners, l => Assert.Equal(GroupDistribution.RoundRobin, l.Distribution));
        var socketEndPoint = tulip.Listeners[1].LocalEndPoints[0];
        for (int i = 0; i < 2; i++)
        {
            await EchoOnce(new UnixDomainSocketEndPoint(path), $"unix {i}");
            await EchoOnce(socketEndPoint, $"socket {i}");
        }

        Assert.Equal([tulip.Loops[0], tulip.Loops[1]], unixServed.ToArray());
        Assert.Equal([tulip.Loops[0], tulip.Loops[1]], socketServed.ToArray());
        await host.StopAsync().WaitAsync(Patience);
        Assert.Equal(TulipShutdownOutcome.Drained, tulip.ShutdownReport!.Outcome);
        Assert.False(File.Exists(path));
        Assert.True(listener.SafeHandle.IsClosed);
    }

    [Fact]
    public async Task A_loop_count_below_one_or_an_unknown_distribution_fails_the_start_and_says_what_to_give()
    {
        using var none = BuildHost(EventLoopKinds.DefaultName, o => o.LoopCount = 0);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => none.StartAsync());
        Assert.Contains("LoopCount is 0", e.Message);
        using var odd = BuildHost(EventLoopKinds.DefaultName, o =>
        {
            o.LoopCount = 2;
            o.Distribution = (GroupDistribution)7;
        });
        e = await Assert.ThrowsAsync<InvalidOperationException>(() => odd.StartAsync());
        Assert.Contains("GroupDistribution.RoundRobin", e.Message);
    }

    [Fact]
    public async Task A_port_in_use_fails_a_group_start_with_a_clear_exception_and_leaves_no_loop_running()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen(1);
        int port = ((IPEndPoint)taken.LocalEndPoint!).Port;
        using var host = BuildHost(EventLoopKinds.DefaultName, o =>
        {
            o.LoopCount = 2;
            o.Distribution = GroupDistribution.RoundRobin;
            o.ListenTcp("127.0.0.1", port).UseProtocol(() => new RecordingEcho(new ConcurrentQueue<IEventLoop>()));
        });
        var e = await Assert.ThrowsAsync<IOException>(() => host.StartAsync());
        Assert.Contains($"tcp://127.0.0.1:{port}", e.Message);
        Assert.Contains("another socket listens there", e.Message);
        Assert.All(host.Tulip().Loops, l => Assert.True(l.IsClosed));
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public void A_service_on_two_loops_started_for_a_socket_unit_hands_fd_3s_connections_out_and_stops_gracefully_on_SIGTERM(string kind)
    {
        string program = Path.Combine(AppContext.BaseDirectory, "HostedEcho");
        Assert.True(File.Exists(program), $"{program} is missing: the tests reference samples/HostedEcho, which builds it there");
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        // As systemd does for a .socket unit (see SystemdSocketActivationTests): the socket as fd 3, LISTEN_PID the program's.
        const string Script = "exec 3<&0 0</dev/null; LISTEN_PID=$$; LISTEN_FDS=1; LISTEN_FDNAMES=echo; " +
                              "export LISTEN_PID LISTEN_FDS LISTEN_FDNAMES; exec \"$0\"";
        var output = new List<string>();
        int status = EventLoop.Run(async () =>
        {
            var child = await LoopProcess.CreateExecAsync("/bin/sh", ["-c", Script, program], new SubprocessOptions
            {
                StandardInput = SubprocessStdio.FromHandle(listener.SafeHandle),
                StandardError = SubprocessStdio.StandardOutput,
                EnvironmentUpdates = new Dictionary<string, string?> { [EventLoopKinds.EnvironmentVariable] = kind, ["TULIP_LOOPS"] = "2" },
            });
            await using (child)
            {
                async LoopTask<string> NextLine()
                {
                    byte[] line = await Tasks.WaitFor(child.StandardOutput!.ReadLineAsync(), Patience.TotalSeconds);
                    Assert.True(line.Length > 0, $"the child's output ended: {string.Join(" | ", output)}");
                    string text = Encoding.UTF8.GetString(line).TrimEnd('\n');
                    output.Add(text);
                    return text;
                }

                while (!(await NextLine()).StartsWith("HostedEcho listening on", StringComparison.Ordinal))
                {
                }

                Assert.Equal($"HostedEcho listening on 127.0.0.1:{port} (from systemd, 2 {kind} loops)", output[^1]);
                var clients = new List<(LoopStreamReader Reader, LoopStreamWriter Writer)>();
                for (int i = 0; i < 2; i++) // one on each loop
                {
                    var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", port);
                    writer.Write(Encoding.ASCII.GetBytes($"hello {i}\n"));
                    Assert.Equal(Encoding.ASCII.GetBytes($"hello {i}\n"), await Tasks.WaitFor(reader.ReadLineAsync(), Patience.TotalSeconds));
                    clients.Add((reader, writer));
                }

                child.SendSignal(15); // SIGTERM
                foreach (var (reader, writer) in clients)
                {
                    Assert.Empty(await Tasks.WaitFor(reader.ReadAsync(), Patience.TotalSeconds)); // idle: let go at the drain's start
                    writer.Close();
                }

                int code = await Tasks.WaitFor(child.WaitAsync(), Patience.TotalSeconds);
                while (await child.StandardOutput!.ReadLineAsync() is { Length: > 0 } rest)
                {
                    output.Add(Encoding.UTF8.GetString(rest).TrimEnd('\n'));
                }

                return code;
            }
        }, loopFactory: EventLoopKinds.GetFactory(EventLoopKinds.DefaultName));

        Assert.True(status == 0, $"exit status {status}; output: {string.Join(" | ", output)}");
        Assert.Contains(output, l => l.StartsWith("HostedEcho stopped: TulipShutdownReport { Outcome = Drained", StringComparison.Ordinal));
        // The child's copy of the socket is closed; the test's (systemd's) still listens for the next instance.
        using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        late.Connect(new IPEndPoint(IPAddress.Loopback, port));
        using var waiting = listener.Accept();
        Assert.NotNull(waiting);
    }
}
