using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Tulip;
using static Tulip.Tests.Transports.DatagramTestUtil;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// scripts/udp-echo-server end to end: it builds the sample, serves on 127.0.0.1:PORT, echoes each
/// datagram to its sender, survives a client that went away, and is killed with nothing left behind.
/// In the fd collection: it spawns a child process.
/// </summary>
[Collection(NativeFdCollection.Name)]
public sealed class UdpEchoServerScriptTests
{
    private static string Script
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Tulip.slnx")))
            {
                dir = dir.Parent;
            }

            Assert.NotNull(dir);
            return Path.Combine(dir!.FullName, "scripts", "udp-echo-server");
        }
    }

    private static Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo(Script) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return Process.Start(psi)!;
    }

    [Theory]
    [InlineData("kqueue")]
    [InlineData("Proactor")]
    public void UnknownBackend_ExitsWith2_BeforeBuilding(string backend)
    {
        using var p = Start("9", backend);
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(2, p.ExitCode);
        Assert.Contains($"unknown backend '{backend}'", stderr);
        Assert.Contains("expected epoll, poll, io_uring or proactor", stderr);
    }

    [Fact]
    public void BadPort_ExitsWith2_WithTheUsage()
    {
        using var p = Start("not-a-port", "proactor");
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(2, p.ExitCode);
        Assert.Contains("usage: scripts/udp-echo-server PORT [epoll|poll|io_uring|proactor]", stderr);
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void Script_EchoesEachDatagramToItsSender_AndKeepsServing(string backend)
    {
        int port = FreeUdpPort();
        using var server = Start(port.ToString(System.Globalization.CultureInfo.InvariantCulture), backend);
        server.OutputDataReceived += (_, _) => { };
        server.ErrorDataReceived += (_, _) => { };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        try
        {
            var target = new IPEndPoint(IPAddress.Loopback, port);
            Run(LoopKinds.Named(backend), async loop =>
            {
                // The first run builds the sample: send until the server answers (the build may take minutes under load).
                var (client, pc) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, null);
                Assert.True(await Eventually(() =>
                {
                    Assert.False(server.HasExited, $"the server exited with {(server.HasExited ? server.ExitCode : 0)}");
                    client.SendTo("ping"u8, target);
                    return pc.Datagrams.Count > 0;
                }, 300_000), "no echo from scripts/udp-echo-server");
                Assert.All(pc.Datagrams, d => Assert.Equal("ping"u8.ToArray(), d.Data));
                Assert.All(pc.Datagrams, d => Assert.Equal(target, d.From));

                // A client that sends and goes away before the echo comes back.
                var (gone, pg) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, target);
                gone.SendTo(Pattern(1000));
                gone.Abort();
                await pg.Lost;

                // The server goes on: a large datagram comes back whole, to this client only.
                int before = pc.Datagrams.Count;
                var big = Pattern(60_000);
                Assert.True(await Eventually(() =>
                {
                    client.SendTo(big, target);
                    return pc.Datagrams.Count > before && pc.Datagrams.Skip(before).Any(d => d.Data.Length == big.Length);
                }, 20_000), "the server stopped echoing after a client went away");
                Assert.Equal(big, pc.Datagrams.Skip(before).First(d => d.Data.Length == big.Length).Data);
                client.Close();
                await pc.Lost;
            }, timeoutSeconds: 400);
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
            }

            server.WaitForExit();
        }

        Assert.True(server.HasExited);
    }
}
