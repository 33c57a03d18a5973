using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Tulip.Samples.TcpProxy;
using Tulip.Streams;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Streams;

/// <summary>The Python asyncio peers of the proxy tests: an upstream with several behaviours, and a client.</summary>
internal static class ProxyPeers
{
    /// <summary>
    /// An asyncio upstream on a free port, which it prints first. Modes: <c>echo-end</c> echoes until the
    /// client's EOF, then sends <c>END</c> and closes (so the reply proves the half-close was passed on);
    /// <c>flood N</c> sends N bytes of a pattern (byte at offset o: (o % 65536) % 251), draining, then
    /// closes; <c>reset</c> reads one byte, then resets the connection (SO_LINGER 0).
    /// </summary>
    public const string Upstream = """
        import asyncio, socket, struct, sys
        mode = sys.argv[1]
        async def handle(r, w):
            if mode == 'echo-end':
                while True:
                    d = await r.read(65536)
                    if not d:
                        break
                    w.write(d)
                    await w.drain()
                w.write(b'END')
                await w.drain()
                w.close()
            elif mode == 'flood':
                n = int(sys.argv[2])
                chunk = bytes(i % 251 for i in range(65536))
                sent = 0
                while sent < n:
                    k = min(len(chunk), n - sent)
                    w.write(chunk[:k])
                    await w.drain()
                    sent += k
                w.close()
            elif mode == 'reset':
                await r.read(1)
                w.get_extra_info('socket').setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                w.transport.abort()
        async def main():
            srv = await asyncio.start_server(handle, '127.0.0.1', 0)
            print(srv.sockets[0].getsockname()[1], flush=True)
            async with srv:
                await srv.serve_forever()
        asyncio.run(main())
        """;

    /// <summary>An asyncio client: sends N random bytes, writes EOF, reads to the end; exit 0 when it got them back followed by END.</summary>
    public const string Client = """
        import asyncio, os, sys
        async def main():
            r, w = await asyncio.open_connection('127.0.0.1', int(sys.argv[1]))
            data = os.urandom(int(sys.argv[2]))
            w.write(data)
            await w.drain()
            w.write_eof()
            got = await r.read()
            w.close()
            if got != data + b'END':
                print(f'got {len(got)} bytes, expected {len(data) + 3}', file=sys.stderr)
                return 1
            return 0
        sys.exit(asyncio.run(main()))
        """;

    public static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Starts an upstream; returns it with its port (read from its first line).</summary>
    public static async Task<(Process Peer, int Port)> StartUpstream(params string[] args)
    {
        var peer = PythonPeer.Start(Upstream, args);
        string? line = await peer.StandardOutput.ReadLineAsync();
        if (line is null || !int.TryParse(line, CultureInfo.InvariantCulture, out int port))
        {
            string error = await peer.StandardError.ReadToEndAsync();
            Stop(peer);
            throw new InvalidOperationException($"the Python upstream did not start: {error}");
        }

        return (peer, port);
    }

    /// <summary>Runs the Python client against <paramref name="port"/>; returns its exit code and stderr.</summary>
    public static async Task<(int ExitCode, string Stderr)> RunClient(int port, int size)
    {
        using var client = PythonPeer.Start(Client, Text(port), Text(size));
        var stderr = client.StandardError.ReadToEndAsync();
        await client.WaitForExitAsync();
        return (client.ExitCode, await stderr);
    }

    /// <summary>Kills and reaps <paramref name="peer"/>.</summary>
    public static void Stop(Process peer)
    {
        if (!peer.HasExited)
        {
            peer.Kill(entireProcessTree: true);
        }

        peer.WaitForExit();
        peer.Dispose();
    }
}

/// <summary>
/// samples/TcpProxy's relay, run in-process on each loop kind, between Python asyncio peers (client and
/// upstream) and Tulip clients: relay both ways, half-close passed on, a refusing upstream, a reset,
/// and a slow reader whose other side the proxy pauses (measured by the write buffers the proxy holds).
/// In the fd collection: child processes.
/// </summary>
[Collection(NativeFdCollection.Name)]
public abstract class TcpProxyTests : LoopSuite
{
    protected TcpProxyTests(LoopKind kind) : base(kind)
    {
    }

    [PythonPeerFact("asyncio")]
    public void PythonClientAndUpstream_RelayBothWays_HalfClosePassedOn_PairClosedAfter()
    {
        Run(Kind, async loop =>
        {
            var (upstream, upstreamPort) = await ProxyPeers.StartUpstream("echo-end");
            try
            {
                await using var proxy = await TcpProxy.StartAsync(0, "127.0.0.1", upstreamPort);
                var (exitCode, stderr) = await ProxyPeers.RunClient(proxy.Port, (1 << 20) + 13);
                Assert.True(exitCode == 0, $"the Python client failed ({exitCode}): {stderr}");
                Assert.True(await Eventually(() => proxy.Pairs.Count == 0), "the pair should be closed once both directions ended");
            }
            finally
            {
                ProxyPeers.Stop(upstream);
            }
        });
    }

    [Fact]
    public void UpstreamRefuses_ClientIsClosedAtOnce()
    {
        Run(Kind, async loop =>
        {
            var log = new List<string>();
            await using var proxy = await TcpProxy.StartAsync(0, "127.0.0.1", FreePort(), log: log.Add);
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", proxy.Port);
            await using var _ = writer;
            Assert.Empty(await reader.ReadAsync()); // EOF, without sending anything
            Assert.True(reader.AtEof);
            Assert.Empty(proxy.Pairs);
            Assert.Contains(log, line => line.Contains("unreachable", StringComparison.Ordinal));
        });
    }

    [PythonPeerFact("asyncio")]
    public void SlowReader_ProxyPausesTheUpstream_WriteBuffersStayBounded()
    {
        const int Total = 32 << 20; // far more than the kernel buffers of both connections hold
        Run(Kind, async loop =>
        {
            var (upstream, upstreamPort) = await ProxyPeers.StartUpstream("flood", ProxyPeers.Text(Total));
            try
            {
                await using var proxy = await TcpProxy.StartAsync(0, "127.0.0.1", upstreamPort);
                var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", proxy.Port);
                await using var _ = writer;
                // The client reads nothing yet: the proxy's writes to it back up, it stops reading the upstream.
                Assert.True(await Eventually(() => proxy.Pairs.Count == 1 && !proxy.Pairs[0].Upstream.IsReading, iterations: 30_000),
                    "the proxy should stop reading the upstream while its client does not read");
                int bound = WriteFlowControl.DefaultHighWater + TcpProxy.RelayBufferSize; // not paused, plus one read
                Assert.InRange(proxy.PeakWriteBufferSize, 1, bound);

                var buffer = new byte[64 * 1024];
                long received = 0;
                int n;
                while ((n = await reader.ReadAsync(buffer.AsMemory())) > 0)
                {
                    for (int i = 0; i < n; i++)
                    {
                        long offset = received + i;
                        if (buffer[i] != (byte)(offset % 65536 % 251))
                        {
                            Assert.Fail($"byte {offset} is {buffer[i]}, expected {offset % 65536 % 251}");
                        }
                    }

                    received += n;
                }

                Assert.Equal(Total, received);
                Assert.InRange(proxy.PeakWriteBufferSize, 1, bound); // over the whole transfer
            }
            finally
            {
                ProxyPeers.Stop(upstream);
            }
        });
    }

    [PythonPeerFact("asyncio")]
    public void UpstreamResets_TheClientIsReset()
    {
        Run(Kind, async loop =>
        {
            var (upstream, upstreamPort) = await ProxyPeers.StartUpstream("reset");
            try
            {
                await using var proxy = await TcpProxy.StartAsync(0, "127.0.0.1", upstreamPort);
                var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", proxy.Port);
                await using var _ = writer;
                writer.Write("x"u8);
                await writer.DrainAsync();
                var ex = await Assert.ThrowsAsync<SocketException>(async () => await reader.ReadAsync());
                Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
                Assert.True(await Eventually(() => proxy.Pairs.Count == 0));
            }
            finally
            {
                ProxyPeers.Stop(upstream);
            }
        });
    }

    [Fact]
    public void ClientResets_TheUpstreamIsReset()
    {
        Run(Kind, async loop =>
        {
            var upstreamError = loop.CreateFuture<Exception?>();
            await using var upstream = await StreamConnections.StartServerAsync(async (reader, writer) =>
            {
                try
                {
                    await reader.ReadAsync();
                    upstreamError.SetResult(null);
                }
                catch (Exception ex)
                {
                    upstreamError.SetResult(ex);
                }
            }, "127.0.0.1", 0);
            await using var proxy = await TcpProxy.StartAsync(0, "127.0.0.1", PortOf(upstream));
            var (_, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", proxy.Port);
            writer.Write("hello"u8);
            await writer.DrainAsync();
            Assert.True(await Eventually(() => proxy.Pairs.Count == 1));
            writer.Transport.Abort();
            var seen = await upstreamError;
            Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(seen).SocketErrorCode);
        });
    }
}

public sealed class EpollTcpProxyTests() : TcpProxyTests(LoopKinds.Epoll);

public sealed class PollTcpProxyTests() : TcpProxyTests(LoopKinds.Poll);

/// <summary>The completion loop (<see cref="ProactorEventLoop"/>).</summary>
public sealed class ProactorTcpProxyTests() : TcpProxyTests(LoopKinds.Proactor);

/// <summary>
/// scripts/tcp-proxy as a child process: bad arguments, and a relay between Python peers on the loop
/// TULIP_LOOP names; the proxy is then killed and reaped. The first run builds the sample in Release,
/// which may take minutes under load: the test waits for the proxy's "listening" line.
/// </summary>
[Collection(NativeFdCollection.Name)]
public sealed class TcpProxyScriptTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(400);

    private static string ScriptPath()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Tulip.slnx")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        return Path.Combine(dir!.FullName, "scripts", "tcp-proxy");
    }

    private static Process StartScript(string? tulipLoop, params string[] args)
    {
        var psi = new ProcessStartInfo(ScriptPath()) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["TULIP_LOOP"] = tulipLoop;
        return Process.Start(psi)!;
    }

    [Theory]
    [InlineData]
    [InlineData("8080")]
    [InlineData("8080", "localhost")]
    [InlineData("notaport", "localhost", "80")]
    [InlineData("8080", "localhost", "0")]
    [InlineData("8080", "localhost", "65536")]
    [InlineData("8080", "", "80")]
    [InlineData("1", "2", "3", "4")]
    public void BadArguments_PrintUsage_Exit2(params string[] args)
    {
        using var p = StartScript(null, args);
        string stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(Patience));
        Assert.Equal(2, p.ExitCode);
        Assert.Contains("usage: scripts/tcp-proxy LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT", stderr, StringComparison.Ordinal);
    }

    [PythonPeerFact("asyncio")]
    public void Script_RelaysBetweenPythonPeers_OnTheLoopTulipLoopNames_ThenIsKilledAndReaped()
    {
        var (upstream, upstreamPort) = ProxyPeers.StartUpstream("echo-end").GetAwaiter().GetResult();
        int listenPort = FreePort();
        Process? proxy = null;
        try
        {
            proxy = StartScript("poll", ProxyPeers.Text(listenPort), "127.0.0.1", ProxyPeers.Text(upstreamPort));
            var lines = new BlockingCollection<string>();
            var all = new ConcurrentQueue<string>();
            proxy.OutputDataReceived += (_, _) => { };
            proxy.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is null)
                {
                    lines.CompleteAdding();
                    return;
                }

                all.Enqueue(e.Data);
                lines.Add(e.Data);
            };
            proxy.BeginOutputReadLine();
            proxy.BeginErrorReadLine();
            string? listening = null;
            using (var cts = new CancellationTokenSource(Patience))
            {
                listening = lines.GetConsumingEnumerable(cts.Token).FirstOrDefault(l => l.StartsWith("tcp-proxy: listening", StringComparison.Ordinal));
            }

            Assert.True(listening is not null, "the proxy did not start: " + string.Join('\n', all));
            Assert.Equal($"tcp-proxy: listening on 127.0.0.1:{listenPort}, relaying to 127.0.0.1:{upstreamPort} (poll)", listening);

            var (exitCode, stderr) = ProxyPeers.RunClient(listenPort, 300_000).GetAwaiter().GetResult();
            Assert.True(exitCode == 0, $"the Python client failed through the script ({exitCode}): {stderr}\nproxy: {string.Join('\n', all)}");
            Assert.False(proxy.HasExited, "the proxy keeps serving after a client: " + string.Join('\n', all));
        }
        finally
        {
            if (proxy is not null)
            {
                int pid = proxy.Id;
                ProxyPeers.Stop(proxy);
                // Reaped, and nothing of it left: the script execs the program, so there is no other process.
                Assert.False(Directory.Exists($"/proc/{pid}"), $"process {pid} is still there");
            }

            ProxyPeers.Stop(upstream);
        }
    }
}
