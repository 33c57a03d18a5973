using System.Net;
using System.Net.Sockets;
using Tulip;
using static Tulip.Tests.Transports.DatagramTestUtil;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// Cancelling a connect at every stage leaves nothing behind: hundreds of tries, each cancelled k
/// loop iterations after it started (k running over every stage: resolving, connecting, making the
/// transport, ConnectionMade, the waiter, the return), for every path that makes a transport. After
/// each, the call either returned a transport (which the test closes) or ended cancelled; either
/// way every protocol that got ConnectionMade gets ConnectionLost, and no fd is left open.
/// Before the fix, a cancellation that came after the connection was made but before the call
/// returned dropped a live, connected transport (ConnectionMade, never ConnectionLost).
/// </summary>
public abstract class ConnectCancellationTests : LoopSuite
{
    private const int Tries = 300;

    // Stages to cancel at, at least: a loopback connect with its transport takes fewer loop iterations
    // than this on a selector loop, so the tries cover every stage and then some that complete before
    // the cancellation. More where a connect is measured to take more (a completion loop).
    private const int Stages = 15;

    private static readonly string[] s_loopback = ["127.0.0.1"];

    protected ConnectCancellationTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public void CreateConnection_CancelledAtEveryStage_ClosesWhatWasMade() => CancelAtEveryStage((loop, factory, port, _) =>
        loop.CreateConnectionAsync(factory, "127.0.0.1", port));

    [Fact]
    public void CreateConnection_HappyEyeballs_CancelledAtEveryStage_ClosesWhatWasMade() => CancelAtEveryStage((loop, factory, port, _) =>
        loop.CreateConnectionAsync(factory, "127.0.0.1", port, new ConnectionOptions { HappyEyeballsDelay = 0.25 }));

    [Fact]
    public void CreateConnection_ByToken_CancelledAtEveryStage_ClosesWhatWasMade()
    {
        // The token fires on the loop thread here; the call links it to its task.
        CancellationTokenSource? cts = null;
        CancelAtEveryStage((loop, factory, port, _) =>
        {
            cts?.Dispose();
            cts = new CancellationTokenSource();
            return loop.CreateConnectionAsync(factory, "127.0.0.1", port, cancellationToken: cts.Token);
        }, cancel: () => cts!.Cancel());
        cts?.Dispose();
    }

    [Fact]
    public void CreateUnixConnection_CancelledAtEveryStage_ClosesWhatWasMade() => CancelAtEveryStage((loop, factory, _, path) =>
        loop.CreateUnixConnectionAsync(factory, path));

    [Fact]
    public void ConnectAcceptedSocket_CancelledAtEveryStage_ClosesWhatWasMade()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(8);
        var peers = new List<Socket>();
        try
        {
            CancelAtEveryStage((loop, factory, _, _) =>
            {
                // A connected pair made blocking on loopback: the connect completes from the backlog.
                var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                peers.Add(peer);
                peer.Connect(listener.LocalEndPoint!);
                var accepted = listener.Accept();
                return loop.ConnectAcceptedSocketAsync(factory, accepted);
            }, afterConnects: () =>
            {
                foreach (var p in peers)
                {
                    p.Dispose();
                }

                peers.Clear();
            });
        }
        finally
        {
            foreach (var p in peers)
            {
                p.Dispose();
            }
        }
    }

    [Fact]
    public void CreateDatagramEndpoint_CancelledAtEveryStage_ClosesWhatWasMade()
    {
        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        peer.Bind(AnyLoopback);
        var remote = (IPEndPoint)peer.LocalEndPoint!;
        CancelAtEveryStage((loop, factory, _, _) => loop.CreateDatagramEndpointAsync(factory, null, remote), streamServer: false);
    }

    [Fact]
    public void CreateDatagramEndpoint_ByName_CancelledAtEveryStage_ClosesWhatWasMade()
    {
        using var peer = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        peer.Bind(AnyLoopback);
        int port = ((IPEndPoint)peer.LocalEndPoint!).Port;
        CancelAtEveryStage((loop, factory, _, _) => loop.CreateDatagramEndpointAsync(factory, null, new DnsEndPoint("127.0.0.1", port)),
            streamServer: false);
    }

    /// <summary>
    /// Runs <see cref="Tries"/> connects, cancelling try i after i mod <see cref="Stages"/> loop
    /// iterations (in a callback of its own, as a timer or another task would), and checks that
    /// nothing made survives: each protocol that got ConnectionMade gets ConnectionLost, and the fd
    /// count comes back to what it was. It also checks that some tries were cancelled after
    /// ConnectionMade, the window of the original leak, so the test covers it.
    /// <paramref name="afterConnects"/> runs once the protocols are checked, before the fd count (and
    /// after the warm-up): peers it closes then cannot end a leaked transport before the check.
    /// </summary>
    /// <remarks>
    /// <paramref name="connect"/> returns the library's own task, not one of an async lambda: a
    /// wrapper task of the test's would have its own result to drop when cancelled.
    /// </remarks>
    private void CancelAtEveryStage<TTransport>(Func<BaseEventLoop, Func<LifeProtocol>, int, string, LoopTask<(TTransport Transport, LifeProtocol Protocol)>> connect,
        Action? cancel = null, bool streamServer = true, Action? afterConnects = null)
        where TTransport : IBaseTransport
    {
        using var dir = new TempDir();
        string path = dir.File("s.sock");
        Run(Kind, async loop =>
        {
            var tcp = streamServer ? await loop.CreateServerAsync(static () => new EchoProtocol(), s_loopback, 0) : null;
            var unix = streamServer ? await loop.CreateUnixServerAsync(static () => new EchoProtocol(), path) : null;
            int port = tcp is null ? 0 : PortOf(tcp);
            try
            {
                // One whole connect first, so that what .NET opens lazily is open before the count.
                // The stages span what a connect takes in loop iterations on this loop, counted over a few
                // whole connects: a completion loop spins through many iterations while the runtime
                // finishes the connect on its own thread, where a selector loop needs a few.
                var warm = new List<LifeProtocol>();
                int stages = Stages;
                for (int w = 0; w < 3; w++)
                {
                    var warmTask = connect(loop, () => Track(warm, new LifeProtocol()), port, path);
                    int iterations = 0;
                    while (!warmTask.Done)
                    {
                        await Tasks.Sleep(0);
                        iterations++;
                    }

                    var (t0, _) = await warmTask;
                    t0.Close();
                    stages = Math.Max(stages, iterations + 5);
                }

                afterConnects?.Invoke();
                Assert.True(await Eventually(() => warm.All(p => p.Lost)), "the warm-up connection was never lost");
                await Eventually(() => false, 5);
                var before = TakeFds();

                var protocols = new List<LifeProtocol>();
                int returned = 0, cancelled = 0, cancelledAfterMade = 0;
                for (int i = 0; i < Tries; i++)
                {
                    var mine = new List<LifeProtocol>();
                    LoopTask<(TTransport Transport, LifeProtocol Protocol)> task = null!;
                    void CancelIt()
                    {
                        if (cancel is null)
                        {
                            task.Cancel();
                        }
                        else if (!task.Done)
                        {
                            cancel();
                        }
                    }

                    // Every third try counts its stage from ConnectionMade (0 to 3 iterations after it),
                    // the window of the original leak, which iterations from the start hit only by
                    // chance on a loop whose connect takes a varying number of them (a completion loop).
                    bool fromMade = i % 3 == 2;
                    int stage = fromMade ? (i / 3) % 4 : i % stages;
                    task = connect(loop, () => Track(mine, new LifeProtocol(fromMade ? () => CancelAfter(loop, stage, CancelIt) : null)), port, path);
                    if (!fromMade)
                    {
                        CancelAfter(loop, stage, CancelIt);
                    }
                    try
                    {
                        var (t, _) = await task;
                        returned++;
                        t.Close();
                    }
                    catch (OperationCanceledException)
                    {
                        cancelled++;
                        if (mine.Any(p => p.Made))
                        {
                            cancelledAfterMade++;
                        }
                    }

                    protocols.AddRange(mine);
                }

                Assert.True(await Eventually(() => protocols.All(p => p.Made == p.Lost)),
                    $"{protocols.Count(p => p.Made && !p.Lost)} of {protocols.Count(p => p.Made)} protocols got ConnectionMade and never ConnectionLost " +
                    $"({returned} calls returned, {cancelled} were cancelled)");
                Assert.All(protocols, p => Assert.Empty(p.Errors));
                afterConnects?.Invoke();
                Assert.True(cancelled > 0 && returned > 0, $"{cancelled} cancelled, {returned} returned: the stages do not span the connect");
                Assert.True(cancelledAfterMade > 0, "no try was cancelled after ConnectionMade: the window of the leak was never hit");
                Assert.True(await Eventually(before.NoneAdded), before.Describe());
            }
            finally
            {
                tcp?.Close();
                tcp?.AbortClients();
                unix?.Close();
                unix?.AbortClients();
            }
        });
    }

    private static LifeProtocol Track(List<LifeProtocol> list, LifeProtocol protocol)
    {
        list.Add(protocol);
        return protocol;
    }

    /// <summary>Runs <paramref name="action"/> <paramref name="iterations"/> loop iterations from now (0: now).</summary>
    private static void CancelAfter(BaseEventLoop loop, int iterations, Action action)
    {
        if (iterations == 0)
        {
            action();
            return;
        }

        loop.CallSoon(() => CancelAfter(loop, iterations - 1, action));
    }

    /// <summary>Records the lifetime a transport gives it, stream or datagram, and checks its order.</summary>
    private sealed class LifeProtocol(Action? onMade = null) : IProtocol, IDatagramProtocol
    {
        public bool Made { get; private set; }

        public bool Lost { get; private set; }

        public List<string> Errors { get; } = new();

        public void ConnectionMade(IBaseTransport transport)
        {
            if (Made) Errors.Add("ConnectionMade twice");
            Made = true;
            onMade?.Invoke();
        }

        public void ConnectionLost(Exception? exception)
        {
            if (!Made) Errors.Add("ConnectionLost before ConnectionMade");
            if (Lost) Errors.Add("ConnectionLost twice");
            Lost = true;
        }

        public void DataReceived(ReadOnlySpan<byte> data)
        {
        }

        public bool EofReceived() => false;

        public void DatagramReceived(ReadOnlySpan<byte> data, EndPoint address)
        {
        }

        public void ErrorReceived(Exception exception)
        {
        }

        public void PauseWriting()
        {
        }

        public void ResumeWriting()
        {
        }
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollConnectCancellationTests() : ConnectCancellationTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollConnectCancellationTests() : ConnectCancellationTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorConnectCancellationTests() : ConnectCancellationTests(LoopKinds.Proactor);
