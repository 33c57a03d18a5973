using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tulip.Hosting;
using Tulip.Streams;
using static Tulip.Hosting.Tests.HostingTestSupport;

namespace Tulip.Hosting.Tests;

/// <summary>
/// AddTulip in a real Generic Host, on every loop kind: serving, the graceful shutdown's phases (each decided
/// by events: a drain of 0 or of a very long time, a connection that finishes on a signal), the host's
/// shutdown timeout, start failures, and what is left behind.
/// </summary>
public sealed class HostedLoopTests
{
    private static async LoopTask EchoLines(LoopStreamReader reader, LoopStreamWriter writer)
    {
        while (await reader.ReadLineAsync() is { Length: > 0 } line)
        {
            writer.Write(line);
            await writer.DrainAsync();
        }

        writer.Close();
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public async Task Serves_tcp_echo_with_a_streams_handler_and_leaves_nothing_behind(string kind)
    {
        var logs = new RecordingLoggerProvider();
        using var host = BuildHost(kind, o => o.ListenTcp("127.0.0.1", 0).UseStreams(EchoLines), logs);
        await host.StartAsync().WaitAsync(Patience);
        var tulip = host.Tulip();
        Assert.Equal(kind, EventLoopKinds.NameOf(tulip.Loop));
        Assert.Contains(tulip.ThreadName, ThreadNames());
        var endPoint = host.FirstEndPoint();
        Assert.NotEqual(0, ((IPEndPoint)endPoint).Port);
        using (var client = await ConnectAsync(endPoint))
        {
            await SendAsync(client, "hello\nworld\n");
            Assert.Equal("hello", await ReadLineAsync(client));
            Assert.Equal("world", await ReadLineAsync(client));
            client.Shutdown(SocketShutdown.Send);
            Assert.True(await ReadToEndAsync(client));
        }

        await host.StopAsync().WaitAsync(Patience);
        Assert.Equal(new TulipShutdownReport(TulipShutdownOutcome.Drained, false, 0, 0), tulip.ShutdownReport);
        Assert.True(tulip.Loop.IsClosed);
        Assert.True(await IsRefusedAsync(endPoint));
        AssertThreadGone(tulip);
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning);
        Assert.Contains(logs.Entries, e => e.Category == "Tulip.Hosting" && e.Message.Contains($"on a {kind} loop", StringComparison.Ordinal));
        // The start and the shutdown phases carry their event ids (docs/LOGGING.md, 2000s).
        var ids = logs.Entries.Where(static e => e.Category == "Tulip.Hosting").Select(static e => e.Id).ToList();
        Assert.Equal([new EventId(2001, "Serving"), new EventId(2011, "StoppedAccepting"), new EventId(2016, "Stopped")], ids);
    }

    private sealed class EchoProtocol : Protocol
    {
        private ITransport? _transport;

        public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;

        public override void DataReceived(ReadOnlySpan<byte> data) => _transport!.Write(data);

        public override bool EofReceived() => false; // close
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public async Task Serves_a_unix_socket_with_a_protocol_factory_and_removes_its_file(string kind)
    {
        string path = Path.Combine(Path.GetTempPath(), $"tulip-hosting-{Guid.NewGuid():N}.sock");
        using var host = BuildHost(kind, o => o.ListenUnix(path).UseProtocol(() => new EchoProtocol()));
        await host.StartAsync().WaitAsync(Patience);
        Assert.True(File.Exists(path));
        using (var client = await ConnectAsync(new UnixDomainSocketEndPoint(path)))
        {
            await SendAsync(client, "ping\n");
            Assert.Equal("ping", await ReadLineAsync(client));
            client.Shutdown(SocketShutdown.Send);
            Assert.True(await ReadToEndAsync(client));
        }

        await host.StopAsync().WaitAsync(Patience);
        Assert.Equal(TulipShutdownOutcome.Drained, host.Tulip().ShutdownReport!.Outcome);
        Assert.False(File.Exists(path));
        AssertThreadGone(host.Tulip());
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public async Task A_request_in_hand_when_the_host_stops_is_answered_within_the_drain_period(string kind)
    {
        var gotRequest = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var drainStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(kind, o =>
        {
            o.DrainTimeout = TimeSpan.FromHours(1); // the connection ends on the test's signal, long before
            o.ListenTcp("127.0.0.1", 0).UseStreams(async (reader, writer, context) =>
            {
                context.Stopping.Register(() => drainStarted.TrySetResult());
                byte[] request = await reader.ReadLineAsync();
                gotRequest.TrySetResult();
                await release.Task; // the request takes a while: until the host has begun to stop
                writer.Write(Encoding.ASCII.GetBytes("done:"));
                writer.Write(request);
                await writer.DrainAsync();
                writer.Close();
            });
        });
        await host.StartAsync().WaitAsync(Patience);
        var endPoint = host.FirstEndPoint();
        using var client = await ConnectAsync(endPoint);
        await SendAsync(client, "req\n");
        await gotRequest.Task.WaitAsync(Patience);

        var stop = host.StopAsync();
        await drainStarted.Task.WaitAsync(Patience);
        Assert.True(await IsRefusedAsync(endPoint)); // no longer accepting...
        Assert.False(stop.IsCompleted);              // ...while the accepted connection is still served
        release.SetResult();
        Assert.Equal("done:req", await ReadLineAsync(client));
        Assert.True(await ReadToEndAsync(client));
        await stop.WaitAsync(Patience);
        Assert.Equal(new TulipShutdownReport(TulipShutdownOutcome.Drained, false, 0, 0), host.Tulip().ShutdownReport);
        AssertThreadGone(host.Tulip());
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public async Task An_idle_connection_is_closed_after_the_drain_period(string kind)
    {
        var connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(kind, o =>
        {
            o.DrainTimeout = TimeSpan.Zero;
            o.CloseTimeout = TimeSpan.FromHours(1); // nothing is buffered: the close completes long before
            o.ListenTcp("127.0.0.1", 0).UseStreams(async (reader, writer) =>
            {
                connected.TrySetResult();
                await reader.ReadAsync(); // idle until the connection ends
            });
        });
        await host.StartAsync().WaitAsync(Patience);
        using var client = await ConnectAsync(host.FirstEndPoint());
        await connected.Task.WaitAsync(Patience);
        await host.StopAsync().WaitAsync(Patience);
        Assert.Equal(TulipShutdownOutcome.Closed, host.Tulip().ShutdownReport!.Outcome);
        Assert.False(host.Tulip().ShutdownReport!.HostTimeoutExpired);
        Assert.True(await ReadToEndAsync(client)); // a clean end, not a reset
        AssertThreadGone(host.Tulip());
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public async Task A_connection_that_cannot_flush_is_closed_then_aborted(string kind)
    {
        var buffered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(kind, o =>
        {
            o.DrainTimeout = TimeSpan.Zero;
            o.CloseTimeout = TimeSpan.Zero;
            o.ListenTcp("127.0.0.1", 0).UseStreams(async (reader, writer) =>
            {
                // Far more than the client's small receive buffer and both kernels' buffers can hold:
                // the close cannot finish sending it while the client reads nothing.
                writer.Write(new byte[32 << 20]);
                buffered.TrySetResult();
                await reader.ReadAsync();
            });
        });
        await host.StartAsync().WaitAsync(Patience);
        using var client = await ConnectAsync(host.FirstEndPoint(), receiveBuffer: 4096);
        await buffered.Task.WaitAsync(Patience);
        await host.StopAsync().WaitAsync(Patience);
        var report = host.Tulip().ShutdownReport!;
        Assert.Equal(TulipShutdownOutcome.Aborted, report.Outcome);
        Assert.False(report.HostTimeoutExpired);
        Assert.False(await ReadToEndAsync(client)); // what was buffered is dropped: a reset (the transports abort with unsent data by SO_LINGER 0), not the 32 MiB
        AssertThreadGone(host.Tulip());
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public async Task The_hosts_shutdown_timeout_aborts_at_once_and_does_not_wait_for_a_task_that_ignores_cancellation(string kind)
    {
        var drainStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var logs = new RecordingLoggerProvider();
        using var host = BuildHost(kind, o =>
        {
            o.DrainTimeout = Timeout.InfiniteTimeSpan; // only the host's timeout ends the drain
            o.CloseTimeout = Timeout.InfiniteTimeSpan;
            o.ListenTcp("127.0.0.1", 0).UseStreams(async (reader, writer, context) =>
            {
                _ = context.Loop.CreateTask(Stubborn);
                context.Stopping.Register(() => drainStarted.TrySetResult());
                await reader.ReadAsync();
            });
        }, logs);
        await host.StartAsync().WaitAsync(Patience);
        using var client = await ConnectAsync(host.FirstEndPoint());
        using var shutdownTimeout = new CancellationTokenSource();
        var stop = host.StopAsync(shutdownTimeout.Token);
        await drainStarted.Task.WaitAsync(Patience);
        Assert.False(stop.IsCompleted);
        shutdownTimeout.Cancel(); // the host's timeout expires mid-drain
        await stop.WaitAsync(Patience);
        var report = host.Tulip().ShutdownReport!;
        Assert.Equal(TulipShutdownOutcome.Aborted, report.Outcome);
        Assert.True(report.HostTimeoutExpired);
        Assert.Equal(1, report.TasksLeftRunning);
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("did not end after its cancellation", StringComparison.Ordinal));
        await ReadToEndAsync(client); // it ends (an abort with nothing buffered may end with a FIN on one loop, a reset on another)
        AssertThreadGone(host.Tulip());

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
                    // ignores every cancellation: only the host's timeout lets the loop close without it
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public async Task The_loop_logs_through_the_hosts_logger_factory(string kind)
    {
        var logs = new RecordingLoggerProvider();
        var failed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var host = BuildHost(kind, o => o.ListenTcp("127.0.0.1", 0).UseStreams(async (reader, writer) =>
        {
            await reader.ReadLineAsync();
            failed.TrySetResult();
            throw new InvalidOperationException("handler failure for the log");
        }), logs);
        await host.StartAsync().WaitAsync(Patience);
        using (var client = await ConnectAsync(host.FirstEndPoint()))
        {
            await SendAsync(client, "x\n");
            await failed.Task.WaitAsync(Patience);
            Assert.True(await ReadToEndAsync(client)); // the failing handler's connection is closed
        }

        await host.StopAsync().WaitAsync(Patience);
        Assert.Contains(logs.Entries, e => e.Category == "Tulip" && e.Level == LogLevel.Error &&
            e.Exception is InvalidOperationException { Message: "handler failure for the log" });
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public async Task A_port_in_use_fails_the_hosts_start_with_a_clear_exception(string kind)
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        int port = ((IPEndPoint)taken.LocalEndPoint!).Port;
        string path = Path.Combine(Path.GetTempPath(), $"tulip-hosting-{Guid.NewGuid():N}.sock");
        using var host = BuildHost(kind, o =>
        {
            o.ListenUnix(path).UseStreams(EchoLines); // starts first, and must be closed again
            o.ListenTcp("127.0.0.1", port).UseStreams(EchoLines);
        });
        var error = await Assert.ThrowsAsync<IOException>(() => host.StartAsync().WaitAsync(Patience));
        Assert.Contains($"tcp://127.0.0.1:{port}", error.Message, StringComparison.Ordinal);
        Assert.Contains("another socket listens there", error.Message, StringComparison.Ordinal);
        Assert.Equal(SocketError.AddressAlreadyInUse, Assert.IsType<SocketException>(error.InnerException).SocketErrorCode);
        Assert.False(File.Exists(path)); // the endpoint started before it was closed
        Assert.True(host.Tulip().Loop.IsClosed);
        AssertThreadGone(host.Tulip());
        await host.StopAsync().WaitAsync(Patience); // a host stops what failed to start: nothing to do
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public async Task A_loop_that_fails_after_the_start_is_logged_and_stops_the_host(string kind)
    {
        var logs = new RecordingLoggerProvider();
        using var host = BuildHost(kind, o => o.ListenTcp("127.0.0.1", 0).UseStreams(EchoLines), logs);
        await host.StartAsync().WaitAsync(Patience);
        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = lifetime.ApplicationStopping.Register(() => stopping.TrySetResult());
        var loop = host.Tulip().Loop;
        loop.CallSoonThreadSafe(loop.Stop); // the application stops the loop under the service's feet
        await stopping.Task.WaitAsync(Patience);
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Critical && e.Message.Contains("The Tulip loop failed", StringComparison.Ordinal));
        await host.StopAsync().WaitAsync(Patience);
        Assert.True(loop.IsClosed);
        Assert.True(await IsRefusedAsync(host.FirstEndPoint()));
        AssertThreadGone(host.Tulip());
    }

    [Fact]
    public async Task Disposing_a_host_that_was_not_stopped_stops_the_loop_at_once()
    {
        var host = BuildHost(EventLoopKinds.DefaultName, o => o.ListenTcp("127.0.0.1", 0).UseStreams(EchoLines));
        await host.StartAsync().WaitAsync(Patience);
        var tulip = host.Tulip();
        var endPoint = host.FirstEndPoint();
        using var client = await ConnectAsync(endPoint);
        host.Dispose();
        Assert.True(tulip.Loop.IsClosed);
        Assert.True(tulip.ShutdownReport!.HostTimeoutExpired);
        Assert.True(await IsRefusedAsync(endPoint));
        await ReadToEndAsync(client);
        AssertThreadGone(tulip);
    }

    [Fact]
    public async Task An_endpoint_without_a_handler_fails_the_start_and_says_what_to_call()
    {
        using var host = BuildHost(EventLoopKinds.DefaultName, o => o.ListenTcp("127.0.0.1", 0));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync().WaitAsync(Patience));
        Assert.Contains("tcp://127.0.0.1:0 has no handler", error.Message, StringComparison.Ordinal);
        Assert.Contains("UseProtocol(...) or UseStreams(...)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_loop_kind_fails_the_start_and_lists_the_known_ones()
    {
        using var host = BuildHost("kqueue", _ => { });
        var error = await Assert.ThrowsAsync<ArgumentException>(() => host.StartAsync().WaitAsync(Patience));
        Assert.Contains("'kqueue' is not a known loop kind", error.Message, StringComparison.Ordinal);
        Assert.Contains("epoll", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_negative_drain_period_fails_the_start()
    {
        using var host = BuildHost(EventLoopKinds.DefaultName, o => o.DrainTimeout = TimeSpan.FromSeconds(-1));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync().WaitAsync(Patience));
        Assert.Contains("TulipOptions.DrainTimeout", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_endpoint_takes_one_handler()
    {
        var options = new TulipOptions();
        var endpoint = options.ListenTcp(null, 80).UseStreams((_, _) => Task.CompletedTask is var _ ? Done() : Done());
        var error = Assert.Throws<InvalidOperationException>(() => endpoint.UseProtocol(() => new EchoProtocol()));
        Assert.Contains("tcp://*:80 has a handler already", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => options.ListenTcp(null, 70000));

        static async LoopTask Done() => await Tasks.Yield();
    }

    [Fact]
    public async Task Without_endpoints_the_loop_runs_tasks_for_the_application_and_cancels_them_at_stop()
    {
        using var host = BuildHost(EventLoopKinds.DefaultName, _ => { });
        await host.StartAsync().WaitAsync(Patience);
        var loop = host.Tulip().Loop;
        var started = await loop.RunCoroutineThreadSafe(async () =>
        {
            _ = loop.CreateTask(async () => await Tasks.Sleep(3600));
            await Tasks.Yield();
            return true;
        }).WaitAsync(Patience);
        Assert.True(started);
        await host.StopAsync().WaitAsync(Patience);
        Assert.Equal(new TulipShutdownReport(TulipShutdownOutcome.Drained, false, 1, 0), host.Tulip().ShutdownReport);
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public void CreateFactory_makes_the_kind_asked_for_logging_where_it_is_told(string kind)
    {
        var logs = new RecordingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));
        var loop = EventLoopKinds.CreateFactory(kind, factory)();
        try
        {
            Assert.Equal(kind, EventLoopKinds.NameOf(loop));
            loop.CallExceptionHandler(new ExceptionContext("probe of the logger"));
            Assert.Contains(logs.Entries, e => e.Category == "Tulip" && e.Message.Contains("probe of the logger", StringComparison.Ordinal));
        }
        finally
        {
            loop.Close();
        }
    }
}
