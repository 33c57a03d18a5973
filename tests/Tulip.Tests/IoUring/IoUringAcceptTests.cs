using System.Net;
using System.Net.Sockets;
using Tulip.Selectors;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.IoUring;

/// <summary>
/// The io_uring loop's multishot accept (<c>IoUringAcceptor</c>) beyond the contract suites, which run
/// every server test on it as on every loop (out of fds: <c>IoUringStreamResourceTests</c>): a flood beyond
/// the listen backlog, made at most a backlog per iteration; a multishot the kernel ended re-armed; a close
/// with the accept armed, which refuses connections at once; connections the kernel accepted while the
/// server closed, closed and not leaked; and thousands of accepts leaving no operation slot.
/// </summary>
/// <remarks>In <see cref="NativeFdCollection"/>: the tests compare the fds open before and after, and one lowers RLIMIT_NOFILE.</remarks>
[Collection(NativeFdCollection.Name)]
public sealed class IoUringAcceptTests
{
    private static readonly string[] s_loopback = ["127.0.0.1"];

    private static IoUringEventLoop NewLoop(uint? entries = null)
    {
        var loop = entries is { } n ? new IoUringEventLoop(new IoUringSelector(n)) : new IoUringEventLoop();
        Assert.True(loop.CompletionTransports, "this kernel has provided-buffer rings (5.19+), and with them multishot accept");
        return loop;
    }

    private static void Run(IoUringEventLoop loop, Func<LoopTask> body, List<ExceptionContext>? errors = null)
    {
        var seen = errors ?? [];
        loop.SetExceptionHandler((_, ctx) => seen.Add(ctx));
        var watchdog = new Timer(_ => loop.CallSoonThreadSafe(() => loop.Stop()), null, TimeSpan.FromSeconds(120), Timeout.InfiniteTimeSpan);
        try
        {
            loop.RunUntilComplete(body);
        }
        finally
        {
            watchdog.Dispose();
        }

        if (errors is null)
        {
            Assert.Empty(seen.Select(c => $"{c.Message}: {c.Exception}"));
        }
    }

    /// <summary>
    /// 200 clients connect at once to a server listening with a backlog of 8: every one is accepted and
    /// echoed (those the full queue dropped retry their SYN), and no iteration makes more than 8 connections.
    /// </summary>
    [Fact]
    public void ManyConnectionsAtOnce_BeyondTheBacklog_AreAllAccepted_AtMostABacklogPerIteration()
    {
        const int Clients = 200;
        const int Backlog = 8;
        using var loop = NewLoop();
        int slots = loop.RegisteredOperations;
        Run(loop, async () =>
        {
            // An iteration counter: a callback that queues itself again runs once per iteration.
            long iteration = 0;
            bool counting = true;
            void Tick()
            {
                iteration++;
                if (counting)
                {
                    loop.CallSoon(Tick);
                }
            }

            loop.CallSoon(Tick);
            var madeAt = new List<long>();
            var server = await loop.CreateServerAsync(() =>
            {
                madeAt.Add(iteration);
                return new EchoProtocol();
            }, s_loopback, 0, new ServerOptions { Backlog = Backlog });
            int port = PortOf(server);
            var connecting = new List<LoopTask<(ITransport Transport, RecordingProtocol Protocol)>>();
            for (int i = 0; i < Clients; i++)
            {
                connecting.Add(loop.CreateTask(() => loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port)));
            }

            var clients = new List<(ITransport Transport, RecordingProtocol Protocol)>();
            foreach (var c in connecting)
            {
                clients.Add(await c);
            }

            foreach (var (transport, _) in clients)
            {
                transport.Write("ping"u8);
            }

            foreach (var (_, protocol) in clients)
            {
                Assert.True(await protocol.WaitBytes(loop, 4), "an echo never came back");
            }

            counting = false;
            Assert.Equal(Clients, madeAt.Count);
            int most = madeAt.GroupBy(i => i).Max(g => g.Count());
            Assert.InRange(most, 1, Backlog);
            foreach (var (transport, protocol) in clients)
            {
                transport.Close();
                await protocol.Lost;
            }

            server.Close();
            Assert.True(await Eventually(() => Kind.ServerClients(server) == 0));
            Assert.True(await Eventually(() => loop.OperationsInKernel == 0 && loop.RegisteredOperations == slots), "the accept's slot was not given back");
        });
    }

    /// <summary>
    /// A ring of 2 entries has a completion ring of 4: 40 connections waiting when the accept runs make the
    /// kernel end the multishot (a completion without IORING_CQE_F_MORE) rather than overflow. It is re-armed,
    /// and every connection is made.
    /// </summary>
    [Fact]
    public void AMultishotTheKernelEnded_IsRearmed_AndEveryConnectionIsMade()
    {
        const int Clients = 40;
        using var loop = NewLoop(entries: 2);
        Run(loop, async () =>
        {
            int made = 0;
            await using var server = await loop.CreateServerAsync(() =>
            {
                made++;
                return new EchoProtocol();
            }, s_loopback, 0);
            await Settle();
            long armed = loop.AcceptsArmed;
            var sockets = new List<Socket>();
            try
            {
                for (int i = 0; i < Clients; i++)
                {
                    // Non-blocking, so this thread (whose task work runs the accept) never waits in connect(2).
                    var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
                    sockets.Add(s);
                    try
                    {
                        s.Connect(server.Sockets[0].LocalEndPoint!);
                    }
                    catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
                    {
                    }
                }

                Assert.True(await Eventually(() => made == Clients, 30_000), $"made {made} of {Clients}");
                Assert.True(loop.AcceptsArmed > armed, "the kernel never ended the multishot: the test did not reach the re-arm");
                foreach (var s in sockets)
                {
                    Assert.Equal(1, s.Send("x"u8));
                }

                // Echoed by this loop: wait for it here, not in a blocking receive.
                Assert.True(await Eventually(() => sockets.All(s => s.Available == 1), 30_000), "an echo never came back");
            }
            finally
            {
                foreach (var s in sockets)
                {
                    s.Dispose();
                }
            }
        });
    }

    /// <summary>
    /// Closing a server whose accept is armed in the kernel cancels it before the listener closes: a connect
    /// right after the close is refused (the listener's file is gone), and no fd or operation slot is left.
    /// </summary>
    [Fact]
    public void CloseWithTheAcceptArmed_RefusesConnectsAtOnce_AndLeavesNoFdOrSlot()
    {
        using var loop = NewLoop();
        int slots = loop.RegisteredOperations;
        Run(loop, async () =>
        {
            await Settle();
            var before = TakeFds();
            for (int round = 0; round < 20; round++)
            {
                var server = await loop.CreateServerAsync(() => new EchoProtocol(), s_loopback, 0);
                var address = (IPEndPoint)server.Sockets[0].LocalEndPoint!;
                await Settle(); // the accept is in the kernel
                Assert.Equal(slots + 1, loop.RegisteredOperations);
                server.Close();
                using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                var refused = Assert.Throws<SocketException>(() => late.Connect(address));
                Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
                Assert.True(await Eventually(() => loop.OperationsInKernel == 0 && loop.RegisteredOperations == slots), $"round {round}: the accept's slot was not given back");
            }

            Assert.True(await Eventually(before.NoneAdded), before.Describe());
        });
    }

    /// <summary>
    /// Connections the kernel accepted while the server closed: those whose completions were read after the
    /// close, and those queued but not made when a protocol factory closed the server. Each is closed (its
    /// client sees the end) and none is made or leaked; every round, in both orders.
    /// </summary>
    [Fact]
    public void ConnectionsAcceptedWhileTheServerCloses_AreClosed_NotMadeOrLeaked()
    {
        const int Clients = 6;
        using var loop = NewLoop();
        int slots = loop.RegisteredOperations;
        Run(loop, async () =>
        {
            await Settle();
            var before = TakeFds();
            for (int round = 0; round < 30; round++)
            {
                bool closeFromFactory = round % 2 == 1;
                var made = new List<RecordingProtocol>();
                Server? server = null;
                server = await loop.CreateServerAsync(() =>
                {
                    var p = new RecordingProtocol(loop);
                    made.Add(p);
                    if (closeFromFactory)
                    {
                        server!.Close(); // the rest of what was accepted is closed, not made
                    }

                    return p;
                }, s_loopback, 0);
                await Settle();
                var sockets = new List<Socket>();
                try
                {
                    for (int i = 0; i < Clients; i++)
                    {
                        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                        sockets.Add(s);
                        // Completes from the backlog; the accept takes it in task work on this thread, so its
                        // completion is there before the next wait reads it.
                        s.Connect(server.Sockets[0].LocalEndPoint!);
                    }

                    if (!closeFromFactory)
                    {
                        server.Close();
                    }
                    else
                    {
                        Assert.True(await Eventually(() => made.Count > 0), $"round {round}: nothing was made");
                    }

                    Assert.InRange(made.Count, 0, closeFromFactory ? 1 : 0);
                    server.CloseClients();
                    foreach (var p in made)
                    {
                        await p.Lost;
                    }

                    // Every client sees its connection end: closed by the server, never left hanging.
                    Assert.True(await Eventually(() => sockets.All(s => s.Poll(0, SelectMode.SelectRead))), $"round {round}: a client's connection stayed open");
                    foreach (var s in sockets)
                    {
                        var buffer = new byte[1];
                        try
                        {
                            Assert.Equal(0, s.Receive(buffer));
                        }
                        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
                        {
                            // Closed before it was accepted (the listener's close resets its queue).
                        }
                    }

                    Assert.Equal(closeFromFactory ? 1 : 0, made.Count);
                }
                finally
                {
                    foreach (var s in sockets)
                    {
                        s.Dispose();
                    }
                }

                Assert.True(await Eventually(() => loop.OperationsInKernel == 0 && loop.RegisteredOperations == slots), $"round {round}: the accept's slot was not given back");
            }

            Assert.True(await Eventually(before.NoneAdded), before.Describe());
        });
    }

    /// <summary>
    /// The loop closes while a server still serves and the kernel has accepted connections nobody read yet:
    /// the loop's close cancels the accept and waits for it, and closes every fd its completions bring.
    /// </summary>
    [Fact]
    public void LoopClosedWhileServing_ClosesTheFdsOfConnectionsTheKernelAccepted()
    {
        var before = TakeFds();
        var sockets = new List<Socket>();
        Server? server = null;
        var loop = NewLoop();
        try
        {
            Run(loop, async () =>
            {
                server = await loop.CreateServerAsync(() => new EchoProtocol(), s_loopback, 0);
                await Settle(); // the accept is in the kernel
            });

            // With the loop stopped (no iteration reads a completion, none makes a connection; a transport
            // left open is the caller's on every loop): the kernel accepts these in this thread's task work,
            // and their completions wait for the loop's close.
            for (int i = 0; i < 5; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                sockets.Add(s);
                s.Connect(server!.Sockets[0].LocalEndPoint!);
            }

            loop.Close();
            Assert.Equal(0, loop.OperationsInKernel);
            foreach (var s in sockets)
            {
                // The server's end was closed: EOF (or a reset, for one the listener's close dropped).
                s.ReceiveTimeout = 30_000; // a hang guard
                try
                {
                    Assert.Equal(0, s.Receive(new byte[1]));
                }
                catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
                {
                }
            }
        }
        finally
        {
            foreach (var s in sockets)
            {
                s.Dispose();
            }

            server?.Close(); // after the loop's close: only the listener is left to close
            loop.Dispose();
        }

        Assert.True(before.NoneAdded(), before.Describe());
    }

    /// <summary>2,000 connections accepted (50 at a time), echoed and closed: the server holds one slot and one operation while it serves, none after.</summary>
    [Fact]
    public void TwoThousandAccepts_LeaveNoOperationSlot()
    {
        using var loop = NewLoop();
        int slots = loop.RegisteredOperations;
        Run(loop, async () =>
        {
            var server = await loop.CreateServerAsync(() => new EchoProtocol(), s_loopback, 0);
            int port = PortOf(server);
            int serving = loop.RegisteredOperations;
            int accepting = loop.OperationsInKernel;
            Assert.Equal(slots + 1, serving);
            for (int batch = 0; batch < 40; batch++)
            {
                var connecting = new List<LoopTask<(ITransport Transport, RecordingProtocol Protocol)>>();
                for (int i = 0; i < 50; i++)
                {
                    connecting.Add(loop.CreateTask(() => loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port)));
                }

                foreach (var c in connecting)
                {
                    var (transport, protocol) = await c;
                    transport.Write("ping"u8);
                    Assert.True(await protocol.WaitBytes(loop, 4));
                    transport.Close();
                    await protocol.Lost;
                }
            }

            Assert.True(await Eventually(() => Kind.ServerClients(server) == 0));
            Assert.True(await Eventually(() => loop.OperationsInKernel == accepting && loop.RegisteredOperations == serving));
            server.Close();
            Assert.True(await Eventually(() => loop.OperationsInKernel == 0 && loop.RegisteredOperations == slots), "the accept's slot was not given back");
        });

        Assert.Equal(0, loop.ReceiveBuffersHeld);
    }

    /// <summary>
    /// Out of fds (RLIMIT_NOFILE lowered as <c>StreamResourceTests.ServerOutOfFds_PausesAcceptingThenResumesByItself</c>
    /// does): the accept ends with EMFILE, which is reported once, and the listener rests. Closing the server
    /// while it rests gives the slot back at once and nothing is re-armed.
    /// </summary>
    [Fact]
    public void OutOfFds_ReportedOnce_AndACloseWhileResting_LeavesNothing()
    {
        const int Clients = 10;
        var errors = new List<ExceptionContext>();
        using var loop = NewLoop();
        int slots = loop.RegisteredOperations;
        Run(loop, async () =>
        {
            int made = 0;
            var server = await loop.CreateServerAsync(() =>
            {
                made++;
                return new EchoProtocol();
            }, s_loopback, 0, new ServerOptions { StartServing = false });
            var sockets = new List<Socket>();
            var fillers = new List<Microsoft.Win32.SafeHandles.SafeFileHandle>();
            Assert.Equal(0, Interop.GetRLimit(Interop.RLIMIT_NOFILE, out var saved));
            try
            {
                // Listening and the accept's arming start here; the accept reaches the kernel (and reads the
                // limit) at the first wait, after the limit is lowered below.
                server.StartServing();
                for (int i = 0; i < Clients; i++)
                {
                    var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    sockets.Add(s);
                    s.Connect(server.Sockets[0].LocalEndPoint!);
                }

                int maxFd = Directory.GetFiles("/proc/self/fd").Select(f => int.Parse(Path.GetFileName(f))).Max();
                Assert.Equal(0, Interop.SetRLimit(Interop.RLIMIT_NOFILE, new Interop.RLimit { Current = (ulong)maxFd + 4, Maximum = saved.Maximum }));
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

                for (int i = 0; i < 2 && fillers.Count > 0; i++)
                {
                    fillers[^1].Dispose();
                    fillers.RemoveAt(fillers.Count - 1);
                }

                Assert.True(await Eventually(() => errors.Count > 0), "EMFILE was never reported");
                Assert.Single(errors);
                Assert.Equal("socket.accept() out of system resource", errors[0].Message);
                Assert.InRange(made, 0, 2);
                // Resting: not re-armed (what is in the kernel is the made connections' receives), the slot still the server's.
                long armed = loop.AcceptsArmed;
                await Settle();
                Assert.Equal(armed, loop.AcceptsArmed);
                Assert.InRange(loop.OperationsInKernel, 0, made);
                Assert.Equal(slots + 1 + 2 * made, loop.RegisteredOperations);
                server.Close();
                Assert.Equal(slots + 2 * made, loop.RegisteredOperations); // the accept's slot went at once
            }
            finally
            {
                foreach (var f in fillers)
                {
                    f.Dispose();
                }

                Interop.SetRLimit(Interop.RLIMIT_NOFILE, saved);
                foreach (var s in sockets)
                {
                    s.Dispose();
                }
            }

            server.CloseClients();
            Assert.True(await Eventually(() => Kind.ServerClients(server) == 0 && loop.OperationsInKernel == 0));
            Assert.Single(errors);
        }, errors);
    }

    private static LoopKind Kind => LoopKinds.IoUring;

    /// <summary>A few iterations: what was queued reaches the kernel.</summary>
    private static async LoopTask Settle()
    {
        for (int i = 0; i < 3; i++)
        {
            await Tasks.Sleep(0);
        }
    }

    private sealed class EchoProtocol : Protocol
    {
        private ITransport _transport = null!;

        public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;

        public override void DataReceived(ReadOnlySpan<byte> data) => _transport.Write(data);
    }
}
