using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Tulip.Tests.Transports;

/// <summary>
/// scripts/echo-server and scripts/udp-echo-server take their loop from TULIP_LOOP when no loop
/// argument is given, and an explicit argument still wins. Each server reports its loop kind on
/// stderr once it serves; the test waits for that line (the first run builds the sample in Release,
/// which may take minutes under load), then kills the server. In the fd collection: child processes.
/// </summary>
[Collection(NativeFdCollection.Name)]
public sealed class ScriptLoopKindTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(400);

    private static string ScriptPath(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Tulip.slnx")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        return Path.Combine(dir!.FullName, "scripts", name);
    }

    private static int FreePort(SocketType type)
    {
        using var s = new Socket(AddressFamily.InterNetwork, type, type == SocketType.Dgram ? ProtocolType.Udp : ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    /// <summary>Runs the script until its stderr has a line starting with <paramref name="prefix"/> or it exits; returns that line (null if it exited first) and the exit code (null if still running, then killed).</summary>
    private static (string? Line, int? ExitCode, string Stderr) RunUntil(string script, string? tulipLoop, string prefix, params string[] args)
    {
        var psi = new ProcessStartInfo(ScriptPath(script)) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["TULIP_LOOP"] = tulipLoop;
        var lines = new BlockingCollection<string>();
        var all = new ConcurrentQueue<string>();
        using var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                lines.CompleteAdding();
                return;
            }

            all.Enqueue(e.Data);
            lines.Add(e.Data);
        };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            using var cts = new CancellationTokenSource(Patience);
            foreach (string line in lines.GetConsumingEnumerable(cts.Token))
            {
                if (line.StartsWith(prefix, StringComparison.Ordinal))
                {
                    return (line, null, string.Join('\n', all));
                }
            }

            Assert.True(p.WaitForExit(Patience));
            p.WaitForExit();
            return (null, p.ExitCode, string.Join('\n', all));
        }
        finally
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
            }

            p.WaitForExit();
            lines.Dispose();
        }
    }

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    [Theory]
    [InlineData("poll")]
    [InlineData("epoll")]
    [InlineData("proactor")]
    [InlineData("io_uring")]
    public void Udp_echo_server_without_a_loop_argument_uses_TULIP_LOOP(string kind)
    {
        int port = FreePort(SocketType.Dgram);
        var (line, _, stderr) = RunUntil("udp-echo-server", kind, "udp-echo-server: serving", Port(port));
        Assert.True(line is not null, stderr);
        Assert.Equal($"udp-echo-server: serving on 127.0.0.1:{port} ({kind})", line);
    }

    [Fact]
    public void Udp_echo_server_loop_argument_wins_over_TULIP_LOOP()
    {
        int port = FreePort(SocketType.Dgram);
        var (line, _, stderr) = RunUntil("udp-echo-server", "poll", "udp-echo-server: serving", Port(port), "epoll");
        Assert.True(line is not null, stderr);
        Assert.Equal($"udp-echo-server: serving on 127.0.0.1:{port} (epoll)", line);
    }

    [Fact]
    public void Udp_echo_server_with_an_unknown_TULIP_LOOP_exits_2_with_the_known_kinds()
    {
        var (line, exitCode, stderr) = RunUntil("udp-echo-server", "foo", "udp-echo-server: serving", Port(FreePort(SocketType.Dgram)));
        Assert.Null(line);
        Assert.Equal(2, exitCode);
        Assert.Contains("udp-echo-server: TULIP_LOOP='foo' is not a known loop kind; known: epoll, poll, io_uring, proactor", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Echo_server_without_a_loop_argument_uses_TULIP_LOOP()
    {
        int port = FreePort(SocketType.Stream);
        var (line, _, stderr) = RunUntil("echo-server", "poll", "echo-server: serving", Port(port), "protocol");
        Assert.True(line is not null, stderr);
        Assert.Equal($"echo-server: serving on 127.0.0.1:{port} (protocol, poll)", line);
    }
}
