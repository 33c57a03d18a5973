using System.Net;
using System.Net.Sockets;
using System.Text;
using Tulip.Hosting;
using Tulip.Streams;
using static Tulip.Hosting.Tests.HostingTestSupport;

namespace Tulip.Hosting.Tests;

/// <summary>
/// Socket activation: the protocol read from an injected environment (the test process's own is never
/// changed), and a real child (samples/HostedEcho) that gets a listening socket as fd 3 with LISTEN_PID naming
/// it, as systemd starts a service for a .socket unit.
/// </summary>
public sealed class SystemdSocketActivationTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] variables)
    {
        var map = variables.ToDictionary(v => v.Name, v => v.Value);
        return name => map.GetValueOrDefault(name);
    }

    [Fact]
    public void The_fds_are_those_from_3_named_by_LISTEN_FDNAMES_for_this_process_only()
    {
        var fds = SystemdSocketActivation.GetListenFds(Env(("LISTEN_PID", "42"), ("LISTEN_FDS", "2"), ("LISTEN_FDNAMES", "web:admin")), 42);
        Assert.Equal([new SystemdListenFd(3, "web"), new SystemdListenFd(4, "admin")], fds);
        Assert.Equal([new SystemdListenFd(3, "unknown")], SystemdSocketActivation.GetListenFds(Env(("LISTEN_PID", "42"), ("LISTEN_FDS", "1")), 42));
        Assert.Empty(SystemdSocketActivation.GetListenFds(Env(("LISTEN_PID", "41"), ("LISTEN_FDS", "2")), 42)); // another process's
        Assert.Empty(SystemdSocketActivation.GetListenFds(Env(), 42));
        Assert.Empty(SystemdSocketActivation.GetListenFds(Env(("LISTEN_FDS", "1")), 42));
    }

    [Theory]
    [InlineData("x", "1", null, "LISTEN_PID='x' is not a process id")]
    [InlineData("42", "-1", null, "LISTEN_FDS='-1' is not a count of fds")]
    [InlineData("42", "2", "one", "LISTEN_FDNAMES has 1 names for LISTEN_FDS=2 fds")]
    public void A_malformed_environment_is_refused_with_what_is_wrong(string pid, string fds, string? names, string message)
    {
        var environment = names is null
            ? Env(("LISTEN_PID", pid), ("LISTEN_FDS", fds))
            : Env(("LISTEN_PID", pid), ("LISTEN_FDS", fds), ("LISTEN_FDNAMES", names));
        var error = Assert.Throws<FormatException>(() => SystemdSocketActivation.GetListenFds(environment, 42));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListenSystemd_without_sockets_from_systemd_fails_the_start_and_says_why()
    {
        using var host = BuildHost(EventLoopKinds.DefaultName, o =>
        {
            o.EnvironmentReader = Env();
            o.ListenSystemd().UseStreams((_, writer) => Closed(writer));
        });
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync().WaitAsync(Patience));
        Assert.Contains("systemd:* found no socket from systemd", error.Message, StringComparison.Ordinal);
        AssertThreadGone(host.Tulip());
    }

    [Fact]
    public async Task ListenSystemd_with_a_name_not_passed_lists_the_names_passed()
    {
        using var host = BuildHost(EventLoopKinds.DefaultName, o =>
        {
            o.EnvironmentReader = Env(("LISTEN_PID", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                ("LISTEN_FDS", "1"), ("LISTEN_FDNAMES", "web"));
            o.ListenSystemd("admin").UseStreams((_, writer) => Closed(writer));
        });
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync().WaitAsync(Patience));
        Assert.Contains("no socket named 'admin'", error.Message, StringComparison.Ordinal);
        Assert.Contains("the names passed are: web", error.Message, StringComparison.Ordinal);
    }

    private static async LoopTask Closed(LoopStreamWriter writer)
    {
        writer.Close();
        await Tasks.Yield();
    }

    [Theory]
    [MemberData(nameof(Kinds), MemberType = typeof(HostingTestSupport))]
    public void A_service_started_for_a_socket_unit_serves_fd_3_and_stops_gracefully_on_SIGTERM(string kind)
    {
        string program = Path.Combine(AppContext.BaseDirectory, "HostedEcho");
        Assert.True(File.Exists(program), $"{program} is missing: the tests reference samples/HostedEcho, which builds it there");
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        int port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        // What systemd does for a .socket unit, by hand: the listening socket as fd 3 (it is the shell's stdin,
        // moved), and LISTEN_PID naming the program, which exec keeps in the shell's pid.
        const string Script = "exec 3<&0 0</dev/null; LISTEN_PID=$$; LISTEN_FDS=1; LISTEN_FDNAMES=echo; " +
                              "export LISTEN_PID LISTEN_FDS LISTEN_FDNAMES; exec \"$0\"";
        var output = new List<string>();
        int status = EventLoop.Run(async () =>
        {
            var child = await LoopProcess.CreateExecAsync("/bin/sh", ["-c", Script, program], new SubprocessOptions
            {
                StandardInput = SubprocessStdio.FromHandle(listener.SafeHandle),
                StandardError = SubprocessStdio.StandardOutput,
                EnvironmentUpdates = new Dictionary<string, string?> { [EventLoopKinds.EnvironmentVariable] = kind },
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

                Assert.Equal($"HostedEcho listening on 127.0.0.1:{port} (from systemd, {kind} loop)", output[^1]);
                var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", port);
                writer.Write("hello\n"u8.ToArray());
                Assert.Equal("hello\n"u8.ToArray(), await Tasks.WaitFor(reader.ReadLineAsync(), Patience.TotalSeconds));

                child.SendSignal(15); // SIGTERM, as systemctl stop sends
                // The client is idle: the sample lets it go when the drain starts (a clean end).
                Assert.Empty(await Tasks.WaitFor(reader.ReadAsync(), Patience.TotalSeconds));
                writer.Close();
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

        // The child closed its copy of the socket; the one systemd (here, the test) holds still listens, so a
        // connection that comes while the service restarts waits in the backlog for the next instance.
        using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        late.Connect(new IPEndPoint(IPAddress.Loopback, port));
        using var waiting = listener.Accept();
        Assert.NotNull(waiting);
    }
}
