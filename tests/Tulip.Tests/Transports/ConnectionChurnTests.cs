using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Tulip;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// Connections made and ended in bulk and in every order (issue 12): ten thousand opened and closed
/// leave no fd, no outstanding I/O and no transport behind; closes and aborts racing the I/O in flight
/// (from the caller, from inside DataReceived, from a callback, from a task) end each connection once
/// with nothing after ConnectionLost; a loop closed with operations outstanding calls nothing afterwards
/// and lets go of its sockets. Counts fds, so alone in <see cref="NativeFdCollection"/>.
/// </summary>
public abstract class ConnectionChurnTests : LoopSuite
{
    private static readonly string[] s_loopback = ["127.0.0.1"];

    protected ConnectionChurnTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>The server side: echoes; a 'c' makes it close after the echo, an 'a' abort.</summary>
    private sealed class ChurnServer(IEventLoop loop) : RecordingProtocol(loop)
    {
        public override void DataReceived(ReadOnlySpan<byte> data)
        {
            base.DataReceived(data);
            Transport.Write(data);
            if (data.Contains((byte)'a'))
            {
                Transport.Abort();
            }
            else if (data.Contains((byte)'c'))
            {
                Transport.Close();
            }
        }
    }

    private static readonly byte[] s_ending = "xxca"u8.ToArray(); // per connection i: what the client sends (i % 4)

    /// <summary>One batch: <paramref name="count"/> connections made at once, each ended one of four ways; waits until every side is lost.</summary>
    private static async LoopTask Batch(BaseEventLoop loop, int port, int count, List<RecordingProtocol> serverSides, List<WeakReference>? weak)
    {
        var connecting = new List<LoopTask<(ITransport Transport, RecordingProtocol Protocol)>>(count);
        for (int i = 0; i < count; i++)
        {
            connecting.Add(loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port));
        }

        var clients = new List<RecordingProtocol>(count);
        for (int i = 0; i < count; i++)
        {
            var (transport, client) = await connecting[i];
            clients.Add(client);
            transport.Write(s_ending.AsSpan(i % 4, 1));
            switch (i % 4)
            {
                case 0:
                    transport.Close();  // the client closes, its byte still going out
                    break;
                case 1:
                    transport.Abort();  // the client resets
                    break;
                // 2, 3: the server closes or aborts on the byte
            }

            if (weak is not null && i == 0)
            {
                weak.Add(new WeakReference(transport));
            }
        }

        foreach (var client in clients)
        {
            var error = await client.Lost;
            Assert.True(error is null or SocketException, $"a client ended with {error}");
            Assert.Empty(client.Errors);
        }

        // A connection the client reset before the server accepted it may never reach the server: wait
        // for every server side that was made (bounded), then for the server to hold none.
        Assert.True(await Eventually(() => serverSides.All(s => s.Lost.Done), 10_000), "every server side should be lost");
        foreach (var serverSide in serverSides)
        {
            Assert.Empty(serverSide.Errors);
        }

        if (weak is not null && serverSides.Count > 0)
        {
            weak.Add(new WeakReference(serverSides[0].Transport));
        }

        serverSides.Clear();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private List<WeakReference> TenThousandConnections()
    {
        const int Batches = 100;
        const int PerBatch = 100;
        var weak = new List<WeakReference>();
        Run(Kind, async loop =>
        {
            var serverSides = new List<RecordingProtocol>();
            await using var server = await loop.CreateServerAsync(() =>
            {
                var p = new ChurnServer(loop);
                serverSides.Add(p);
                return p;
            }, s_loopback, 0);
            int port = PortOf(server);
            await Batch(loop, port, PerBatch, serverSides, null); // warms up what the runtime opens once
            var fds = TakeFds();
            int registrations = Kind.Registrations(loop);
            for (int b = 1; b < Batches; b++)
            {
                await Batch(loop, port, PerBatch, serverSides, weak);
            }

            Assert.True(await Eventually(() => Kind.ServerClients(server) == 0), $"the server still holds {Kind.ServerClients(server)} connections");
            Assert.True(await Eventually(() => Kind.Registrations(loop) == registrations),
                $"I/O still watched: {Kind.Registrations(loop)}, was {registrations}");
            Assert.True(await Eventually(() => fds.NoneAdded(), 5000), fds.Describe());
        }, timeoutSeconds: 300);
        return weak;
    }

    [Fact]
    public void TenThousandConnections_OpenedAndClosed_LeaveNoFdNoIoAndNoTransport()
    {
        var weak = TenThousandConnections();
        Assert.InRange(weak.Count, 99, 2 * 99); // one client and (if it was accepted) one server transport per batch
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.Equal(0, weak.Count(w => w.IsAlive));
    }

    /// <summary>A client that ends its connection one of six ways, racing what is in flight.</summary>
    private sealed class RacingClient(BaseEventLoop loop, int mode) : RecordingProtocol(loop)
    {
        private static readonly byte[] s_big = new byte[1 << 20];

        public override void ConnectionMade(IBaseTransport transport)
        {
            base.ConnectionMade(transport);
            var t = (ITransport)transport;
            switch (mode)
            {
                case 0:
                    t.Write(s_big);
                    t.Close();      // sends in flight, receive outstanding
                    break;
                case 1:
                    t.Write(s_big);
                    t.Abort();
                    break;
                case 2:
                case 3:
                    t.Write("ping"u8); // ended from DataReceived (the echo's completion)
                    break;
                case 4:
                    t.Write(s_big);
                    loop.CallSoon(t.Close); // from a callback
                    break;
                default:
                    t.PauseReading();
                    t.Write(s_big);
                    _ = EndFromTask(t);
                    break;
            }
        }

        private static async LoopTask EndFromTask(ITransport t)
        {
            await Tasks.Sleep(0);
            t.ResumeReading(); // a held receive (if any) and the abort race on the loop
            t.Abort();
        }

        public override void DataReceived(ReadOnlySpan<byte> data)
        {
            base.DataReceived(data);
            if (mode == 2)
            {
                Transport.Abort();
            }
            else if (mode == 3)
            {
                Transport.Write(s_big);
                Transport.Close();
            }
        }
    }

    /// <summary>The server side of the race: writes 256 KiB at once (a send outstanding), echoes the rest.</summary>
    private sealed class RacingServer(IEventLoop loop) : RecordingProtocol(loop)
    {
        public override void ConnectionMade(IBaseTransport transport)
        {
            base.ConnectionMade(transport);
            ((ITransport)transport).Write(new byte[256 * 1024]);
        }

        public override void DataReceived(ReadOnlySpan<byte> data)
        {
            base.DataReceived(data);
            if (!Transport.IsClosing)
            {
                Transport.Write(data[..Math.Min(data.Length, 4)]);
            }
        }
    }

    [Fact]
    public void CloseAndAbort_RacingTheIoInFlight_EndEachConnectionOnce()
    {
        Run(Kind, async loop =>
        {
            var serverSides = new List<RecordingProtocol>();
            await using var server = await loop.CreateServerAsync(() =>
            {
                var p = new RacingServer(loop);
                serverSides.Add(p);
                return p;
            }, s_loopback, 0);
            int port = PortOf(server);
            int registrations = Kind.Registrations(loop);
            for (int i = 0; i < 600; i++)
            {
                var (_, client) = await loop.CreateConnectionAsync(() => new RacingClient(loop, i % 6), "127.0.0.1", port);
                var error = await client.Lost;
                Assert.True(error is null or SocketException, $"mode {i % 6}: the client ended with {error}");
                Assert.Empty(client.Errors);
            }

            Assert.True(await Eventually(() => serverSides.All(s => s.Lost.Done), 10_000), "every server side should be lost");
            Assert.All(serverSides, s => Assert.Empty(s.Errors));
            Assert.True(await Eventually(() => Kind.ServerClients(server) == 0));
            Assert.True(await Eventually(() => Kind.Registrations(loop) == registrations),
                $"I/O still watched: {Kind.Registrations(loop)}, was {registrations}");
        }, timeoutSeconds: 300);
    }

    /// <summary>Counts every protocol call made once the loop is closed.</summary>
    private sealed class AfterClose
    {
        public volatile bool Closed;
        public int Calls;

        public void Note()
        {
            if (Closed)
            {
                Interlocked.Increment(ref Calls);
            }
        }
    }

    private sealed class WatchedProtocol(IEventLoop loop, AfterClose after, bool pauseReading) : RecordingProtocol(loop)
    {
        public override void ConnectionMade(IBaseTransport transport)
        {
            after.Note();
            base.ConnectionMade(transport);
            if (pauseReading)
            {
                ((ITransport)transport).PauseReading();
            }
        }

        public override void DataReceived(ReadOnlySpan<byte> data)
        {
            after.Note();
            base.DataReceived(data);
        }

        public override bool EofReceived()
        {
            after.Note();
            return base.EofReceived();
        }

        public override void ConnectionLost(Exception? exception)
        {
            after.Note();
            base.ConnectionLost(exception);
        }

        public override void PauseWriting()
        {
            after.Note();
            base.PauseWriting();
        }

        public override void ResumeWriting()
        {
            after.Note();
            base.ResumeWriting();
        }
    }

    /// <summary>
    /// Runs a loop until it has a server accepting, connections with receives outstanding on both
    /// sides, one with 4 MiB being sent to a side that does not read, and connects in flight; then
    /// stops and closes it with all of that outstanding, and forgets it.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void CloseWithOperationsOutstanding(LoopKind kind, AfterClose after, List<ExceptionContext> errors)
    {
        var loop = kind.Create();
        loop.SetExceptionHandler((_, ctx) =>
        {
            lock (errors)
            {
                errors.Add(ctx);
            }
        });
        var serverSides = new List<RecordingProtocol>();
        loop.RunUntilComplete(async () =>
        {
            var server = await loop.CreateServerAsync(() =>
            {
                var p = new WatchedProtocol(loop, after, pauseReading: serverSides.Count == 0);
                serverSides.Add(p);
                return p;
            }, s_loopback, 0);
            int port = PortOf(server);
            var clients = new List<ITransport>();
            for (int i = 0; i < 5; i++)
            {
                var (transport, _) = await loop.CreateConnectionAsync(() => new WatchedProtocol(loop, after, pauseReading: false), "127.0.0.1", port);
                clients.Add(transport);
            }

            Assert.True(await Eventually(() => serverSides.Count == 5 && serverSides.All(s => s.Made.Done)));
            clients[0].Write(new byte[4 << 20]); // to the server side that does not read: a send in flight
            for (int i = 0; i < 3; i++)
            {
                _ = loop.CreateConnectionAsync(() => new WatchedProtocol(loop, after, pauseReading: false), "127.0.0.1", port);
            }
        });
        loop.Close();
        after.Closed = true;
    }

    /// <remarks>
    /// What it does not check yet: that the sockets of transports left open go with the loop. On no
    /// loop do they today: the selector's transports hold their socket handles add-ref'd (so no
    /// finalizer closes them), and the proactor's outstanding operations keep theirs registered with
    /// the runtime. Closing them in <see cref="BaseEventLoop.Close"/> is for both loops at once (issue 12, open).
    /// </remarks>
    [Fact]
    public void LoopClosed_WithOperationsOutstanding_CallsNothingAfterAndReportsNothing()
    {
        var after = new AfterClose();
        var errors = new List<ExceptionContext>();
        CloseWithOperationsOutstanding(Kind, after, errors);
        // The runtime's completions of what was outstanding come on its threads meanwhile: give them,
        // and the finalizers of what the loop dropped, a bounded moment to misbehave (not an ordering).
        for (int i = 0; i < 20; i++)
        {
            Collect();
            Thread.Sleep(10);
        }

        Assert.Equal(0, Volatile.Read(ref after.Calls));
        lock (errors)
        {
            Assert.True(errors.Count == 0, "exception handler called: " + string.Join("\n", errors));
        }
    }

    private static void Collect()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollConnectionChurnTests() : ConnectionChurnTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollConnectionChurnTests() : ConnectionChurnTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorConnectionChurnTests() : ConnectionChurnTests(LoopKinds.Proactor);
