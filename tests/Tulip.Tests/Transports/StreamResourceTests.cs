using System.Net;
using System.Net.Sockets;
using Tulip;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// The parts of the stream contract that count descriptors or change RLIMIT_NOFILE: cancelled
/// connects leave no fd behind, and a full fd table pauses accepting instead of spinning. They run
/// alone (<see cref="NativeFdCollection"/>) so no other test's fds disturb the counts.
/// </summary>
public abstract class StreamResourceTests : LoopSuite
{
    protected StreamResourceTests(LoopKind kind) : base(kind)
    {
    }

    private static readonly string[] s_loopback = ["127.0.0.1"];

    /// <summary>
    /// Warms up what .NET opens lazily on a first connection, then returns the fd count once the
    /// server has closed its side too (under load that takes longer than a few iterations, and a
    /// count taken before it would drop by one later).
    /// </summary>
    private async LoopTask<FdSnapshot> Baseline(BaseEventLoop loop, Server server)
    {
        var (t, p) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
        t.Close();
        await p.Lost;
        Assert.True(await Eventually(() => Kind.ServerClients(server) == 0), "the server kept the warm-up connection");
        await Eventually(() => false, 5);
        return TakeFds();
    }

    [Fact]
    public void ConnectCancelledDuringResolution_LeavesNoFd()
    {
        Run(Kind, async loop =>
        {
            await using var server = await loop.CreateServerAsync(static () => new EchoProtocol(), s_loopback, 0);
            var before = await Baseline(loop, server);
            var task = loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "localhost", PortOf(server));
            task.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await task);
            Assert.True(await Eventually(before.NoneAdded), before.Describe());
        });
    }

    [Fact]
    public void ConnectCancelledWhileConnecting_ByToken_LeavesNoFd()
    {
        Run(Kind, async loop =>
        {
            await using var server = await loop.CreateServerAsync(static () => new EchoProtocol(), s_loopback, 0);
            var before = await Baseline(loop, server);
            // A listener whose accept queue is full drops SYNs: a connect to it stays in progress.
            using var full = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            full.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            full.Listen(0);
            var fillers = new List<Socket>();
            try
            {
                for (int i = 0; i < 4; i++)
                {
                    var f = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
                    fillers.Add(f);
                    try { f.Connect(full.LocalEndPoint!); } catch (SocketException) { }
                }

                // Compared by fd number and target, not by count: tests of other collections open and
                // close fds meanwhile (CI once saw the count drop by one, an fd of theirs closing).
                var beforeConnect = TakeFds();
                using var cts = new CancellationTokenSource();
                var task = loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", ((IPEndPoint)full.LocalEndPoint!).Port,
                    cancellationToken: cts.Token);
                await Tasks.Sleep(0.05);
                Assert.False(task.Done, "the connect should still be in progress");
                Assert.Contains(beforeConnect.Added(), fd => fd.Contains("socket", StringComparison.Ordinal)); // the connecting socket
                cts.Cancel();
                await Assert.ThrowsAsync<CancelledError>(async () => await task);
                Assert.True(await Eventually(beforeConnect.NoneAdded), beforeConnect.Describe());
            }
            finally
            {
                foreach (var f in fillers)
                {
                    f.Dispose();
                }
            }

            full.Dispose();
            Assert.True(await Eventually(before.NoneAdded), before.Describe());
        });
    }

    [Fact]
    public void ConnectCancelledBeforeConnectionMade_LeavesNoFd()
    {
        Run(Kind, async loop =>
        {
            await using var server = await loop.CreateServerAsync(static () => new EchoProtocol(), s_loopback, 0);
            var before = await Baseline(loop, server);
            RecordingProtocol? made = null;
            var task = loop.CreateConnectionAsync(() =>
            {
                // Connected, transport about to be made: cancel now.
                Tasks.CurrentTask()!.Cancel();
                return made = new RecordingProtocol(loop);
            }, "127.0.0.1", PortOf(server));
            await Assert.ThrowsAsync<CancelledError>(async () => await task);
            Assert.True(await Eventually(before.NoneAdded), before.Describe());
            Assert.NotNull(made);
            Assert.Empty(made!.Errors);
        });
    }

    [Fact]
    public void ProtocolFactoryThrows_LeavesNoFd()
    {
        Run(Kind, async loop =>
        {
            await using var server = await loop.CreateServerAsync(static () => new EchoProtocol(), s_loopback, 0);
            var before = await Baseline(loop, server);
            await Assert.ThrowsAsync<FormatException>(async () =>
                await loop.CreateConnectionAsync<RecordingProtocol>(() => throw new FormatException("no"), "127.0.0.1", PortOf(server)));
            Assert.True(await Eventually(before.NoneAdded), before.Describe());
        });
    }

    [Fact]
    public void ServerOutOfFds_PausesAcceptingThenResumesByItself()
    {
        const int clients = 20;
        var reports = new List<ExceptionContext>();
        Run(Kind, async loop =>
        {
            int made = 0;
            await using var server = await loop.CreateServerAsync(() => new CountingProtocol(() => made++), s_loopback, 0,
                new ServerOptions { StartServing = false });
            var sockets = new List<Socket>();
            var fillers = new List<Microsoft.Win32.SafeHandles.SafeFileHandle>();
            Assert.Equal(0, Interop.GetRLimit(Interop.RLIMIT_NOFILE, out var saved));
            try
            {
                // Listening starts here; nothing is accepted before this body's first await.
                server.StartServing();
                for (int i = 0; i < clients; i++)
                {
                    var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    sockets.Add(s);
                    s.Connect(server.Sockets[0].LocalEndPoint!); // completes from the backlog, before any accept
                }

                // Lower the limit to 3 above the highest fd in use, fill every free slot below it (holes
                // included; there may be none), then free exactly 3: the fd table is full but for 3 slots.
                // A completion loop's accept in flight may land meanwhile, on the runtime's thread, and take
                // a slot while the fillers are opened: it gets one slot more, so 3 are still left to free.
                int maxFd = Directory.GetFiles("/proc/self/fd").Select(f => int.Parse(Path.GetFileName(f))).Max();
                var lowered = new Interop.RLimit { Current = (ulong)maxFd + (Kind.Readiness ? 4UL : 5UL), Maximum = saved.Maximum };
                Assert.Equal(0, Interop.SetRLimit(Interop.RLIMIT_NOFILE, lowered));
                try
                {
                    while (true)
                    {
                        fillers.Add(File.OpenHandle("/dev/null"));
                    }
                }
                catch (IOException)
                {
                    // EMFILE: full.
                }

                Assert.True(fillers.Count >= 3, $"only {fillers.Count} fds could be opened under the lowered limit");
                for (int i = 0; i < 3; i++)
                {
                    fillers[^1].Dispose();
                    fillers.RemoveAt(fillers.Count - 1);
                }

                Assert.True(await Eventually(() => reports.Count > 0), "EMFILE was never reported");
                // 3 on a readiness loop. A completion loop has an accept in flight from StartServing on,
                // which may take the first connection (an fd) before the limit is lowered: then 4.
                int most = Kind.Readiness ? 3 : 4;
                Assert.InRange(made, 3, most);
                int madeWhenFull = made;
                // Paused, not spinning: more loop iterations bring no more reports or accepts.
                for (int i = 0; i < 20; i++)
                {
                    await Tasks.Sleep(0);
                }

                Assert.Single(reports);
                Assert.Equal("socket.accept() out of system resource", reports[0].Message);
                Assert.Equal(madeWhenFull, made);
            }
            finally
            {
                foreach (var f in fillers)
                {
                    f.Dispose();
                }

                Interop.SetRLimit(Interop.RLIMIT_NOFILE, saved);
            }

            // Accepting resumes by itself (after asyncio's 1 s) and drains the backlog.
            Assert.True(await Eventually(() => made == clients, 5000), $"accepted {made} of {clients}");
            Assert.Single(reports);
            foreach (var s in sockets)
            {
                s.Dispose();
            }

            server.Close();
            server.CloseClients();
        }, errors: reports);
    }

    private sealed class CountingProtocol(Action onMade) : Protocol
    {
        public override void ConnectionMade(IBaseTransport transport) => onMade();
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollStreamResourceTests() : StreamResourceTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollStreamResourceTests() : StreamResourceTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorStreamResourceTests() : StreamResourceTests(LoopKinds.Proactor);
