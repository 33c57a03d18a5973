using System.Net;
using System.Net.Sockets;
using Tulip;
using static Tulip.Tests.Transports.DatagramTestUtil;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// The parts of the datagram contract that count descriptors: every way creating an endpoint can
/// fail or be cancelled leaves no fd behind, and closing releases the socket. They run alone
/// (<see cref="NativeFdCollection"/>) so no other test's fds disturb the counts.
/// </summary>
public abstract class DatagramResourceTests : LoopSuite
{
    protected DatagramResourceTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>Warms up what .NET opens lazily on a first endpoint (and a first name lookup), then returns the fd count.</summary>
    private static async LoopTask<FdSnapshot> Baseline(BaseEventLoop loop)
    {
        var (t, p) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), null,
            new DnsEndPoint("localhost", 9, AddressFamily.InterNetwork));
        t.Close();
        await p.Lost;
        // A failed connect too: .NET's Task-based socket calls (a completion loop's SockConnectAsync)
        // give a failure the current stack trace with file and line, which opens the pdbs once.
        await Assert.ThrowsAsync<SocketException>(async () =>
            await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), null, new UnixDomainSocketEndPoint("/nonexistent/dir/warm.sock")));
        await Eventually(() => false, 5);
        return TakeFds();
    }

    private static async LoopTask AssertFdsBackTo(FdSnapshot before) =>
        Assert.True(await Eventually(before.NoneAdded), before.Describe());

    [Fact]
    public void CloseAndAbort_ReleaseTheSocket()
    {
        Run(Kind, async loop =>
        {
            var before = await Baseline(loop);
            var (t1, p1) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, null);
            var (t2, p2) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, SockName(t1));
            Assert.True(before.Added().Count(fd => fd.Contains("socket", StringComparison.Ordinal)) >= 2, before.Describe()); // by fd, not count: other tests open and close fds meanwhile
            t1.Close();
            t2.Abort();
            await p1.Lost;
            await p2.Lost;
            await AssertFdsBackTo(before);
        });
    }

    [Fact]
    public void ClosedAndAbortedWithDatagramsInFlight_LeaveNoFd_AndEachProtocolSeesOneEnd()
    {
        using var dir = new TempDir();
        Run(Kind, async loop =>
        {
            var before = await Baseline(loop);
            // A UNIX datagram peer that never reads: senders to it end up with a backlog (and, on a
            // completion loop, a send in flight) when they are closed or aborted.
            var path = new UnixDomainSocketEndPoint(dir.File("sink.sock"));
            using var sink = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified) { Blocking = false };
            sink.Bind(path);
            before = TakeFds(); // the test's own socket joins the baseline
            var ends = new List<(IDatagramTransport Transport, RecordingDatagramProtocol Protocol)>();
            for (int round = 0; round < 20; round++)
            {
                // A UDP pair mid-exchange (a receive outstanding on each, datagrams on their way)...
                var (a, pa) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, null);
                var (b, pb) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, SockName(a));
                for (int i = 0; i < 10; i++)
                {
                    b.SendTo(Pattern(1000));
                    a.SendTo(Pattern(100), SockName(b));
                }

                // ... and a sender with a backlog.
                var (c, pc) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), null, path);
                while (c.GetWriteBufferSize() == 0)
                {
                    c.SendTo(Pattern(2000));
                }

                c.SendTo(Pattern(2000));
                if (round % 2 == 0)
                {
                    a.Close();
                    b.Abort();
                    c.Abort();
                }
                else
                {
                    a.Abort();
                    b.Close();
                    c.Abort();
                    Assert.Equal(0, c.GetWriteBufferSize());
                }

                ends.Add((a, pa));
                ends.Add((b, pb));
                ends.Add((c, pc));
                if (round % 3 == 0)
                {
                    await Tasks.Sleep(0); // let some completions land between the rounds
                }
            }

            foreach (var (t, p) in ends)
            {
                Assert.Null(await p.Lost);
                Assert.True(t.IsClosing);
                Assert.Null(t.GetExtraInfo("socket"));
                Assert.Empty(p.Errors);
            }

            await AssertFdsBackTo(before);
        });
    }

    [Fact]
    public void FailedBindsAndBadArguments_LeaveNoFd()
    {
        Run(Kind, async loop =>
        {
            var before = await Baseline(loop);
            using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            taken.Bind(AnyLoopback);
            before = TakeFds(); // the test's own socket joins the baseline
            var inUse = await Assert.ThrowsAsync<SocketException>(async () =>
                await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), taken.LocalEndPoint, null));
            Assert.Equal(SocketError.AddressAlreadyInUse, inUse.SocketErrorCode);
            await Assert.ThrowsAsync<SocketException>(async () =>
                await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), null, new UnixDomainSocketEndPoint("/nonexistent/dir/x.sock")));
            await Assert.ThrowsAsync<ArgumentException>(async () =>
                await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), AnyLoopback, new IPEndPoint(IPAddress.IPv6Loopback, 9)));
            await AssertFdsBackTo(before);
        });
    }

    [Fact]
    public void ProtocolFactoryThrowsOrReturnsNull_LeavesNoFd()
    {
        Run(Kind, async loop =>
        {
            var before = await Baseline(loop);
            await Assert.ThrowsAsync<FormatException>(async () =>
                await loop.CreateDatagramEndpointAsync<RecordingDatagramProtocol>(() => throw new FormatException("no"), AnyLoopback, null));
            await Assert.ThrowsAsync<InvalidOperationException>(async () =>
                await loop.CreateDatagramEndpointAsync<RecordingDatagramProtocol>(() => null!, AnyLoopback, null));
            await AssertFdsBackTo(before);
        });
    }

    [Fact]
    public void CancelledDuringResolution_LeavesNoFd()
    {
        Run(Kind, async loop =>
        {
            var before = await Baseline(loop);
            var task = loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), null, new DnsEndPoint("localhost", 9));
            task.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await task);

            using var cts = new CancellationTokenSource();
            var byToken = loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), new DnsEndPoint("localhost", 0), null,
                cancellationToken: cts.Token);
            cts.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await byToken);
            await AssertFdsBackTo(before);
        });
    }

    [Fact]
    public void CancelledBeforeTheEndpointIsReturned_LeavesNoFd_AndClosesTheProtocol()
    {
        Run(Kind, async loop =>
        {
            var before = await Baseline(loop);
            RecordingDatagramProtocol? made = null;
            var task = loop.CreateDatagramEndpointAsync(() =>
            {
                // The socket is bound and the transport about to be made: cancel now.
                Tasks.CurrentTask()!.Cancel();
                return made = new RecordingDatagramProtocol(loop);
            }, AnyLoopback, null);
            await Assert.ThrowsAsync<CancelledError>(async () => await task);
            await AssertFdsBackTo(before);
            Assert.NotNull(made);
            // ConnectionMade was already scheduled (as in asyncio); the cancelled create closes the
            // transport, so the protocol sees the whole lifecycle and nothing after it.
            Assert.True(!made!.Made.Done || made.Lost.Done);
            Assert.Empty(made.Errors);
        });
    }

    [Fact]
    public void ConnectionMadeThrows_SurfacesTheError_LeavesNoFd()
    {
        var reports = new List<ExceptionContext>();
        Run(Kind, async loop =>
        {
            var before = await Baseline(loop);
            await Assert.ThrowsAsync<InvalidTimeZoneException>(async () =>
                await loop.CreateDatagramEndpointAsync(() => new ThrowsOnMade(), AnyLoopback, null));
            await AssertFdsBackTo(before);
        }, errors: reports);
        var report = Assert.Single(reports);
        Assert.IsType<InvalidTimeZoneException>(report.Exception);
    }

    private sealed class ThrowsOnMade : DatagramProtocol
    {
        public override void ConnectionMade(IBaseTransport transport) => throw new InvalidTimeZoneException("made");
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollDatagramResourceTests() : DatagramResourceTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollDatagramResourceTests() : DatagramResourceTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorDatagramResourceTests() : DatagramResourceTests(LoopKinds.Proactor);
