using System.Net;
using System.Net.Sockets;
using Tulip;
using Xunit.Abstractions;
using static Tulip.Tests.Transports.SockValueSupport;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// SockAcceptValueAsync, SockConnectValueAsync and SockRecvIntoValueAsync, the ValueTask forms of
/// sock_accept, sock_connect and sock_recv_into, on every loop: the connection they make, cancellation
/// (by token and by the task), failures and bad calls, and what a connection costs on the loop thread.
/// </summary>
public abstract class SockValueConnectionTests : LoopSuite
{
    private readonly ITestOutputHelper _output;

    protected SockValueConnectionTests(LoopKind kind, ITestOutputHelper output) : base(kind) => _output = output;

    [Fact]
    public void AcceptAndConnect_MakeAConnectedNonBlockingPair_ThatCarriesData()
    {
        Run(Kind, async loop =>
        {
            using var listener = Listener();
            using var client = Client();
            // The accept starts first, so it waits (the pooled path); the connect waits for its handshake.
            var accepting = loop.SockAcceptValueAsync(listener);
            await loop.SockConnectValueAsync(client, listener.LocalEndPoint!);
            using var server = await accepting;

            Assert.True(client.Connected);
            Assert.False(client.Blocking);
            Assert.False(server.Blocking);
            Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
            Assert.Equal(listener.LocalEndPoint, client.RemoteEndPoint);

            await loop.SockSendAllValueAsync(client, "hello"u8.ToArray());
            var buffer = new byte[16];
            // Into the middle of a buffer: the Memory's own bounds are the receive's.
            int n = await loop.SockRecvIntoValueAsync(server, buffer.AsMemory(4, 8));
            Assert.Equal(5, n);
            Assert.Equal("hello"u8.ToArray(), buffer.AsSpan(4, 5).ToArray());
            Assert.Equal(0, buffer[3]);
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, await loop.SockRecvIntoValueAsync(server, buffer));
        });
    }

    [Fact]
    public void AcceptWithAConnectionWaiting_ReturnsIt()
    {
        Run(Kind, async loop =>
        {
            using var listener = Listener();
            using var client = Client();
            await loop.SockConnectValueAsync(client, listener.LocalEndPoint!);
            using var server = await loop.SockAcceptValueAsync(listener);
            Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
        });
    }

    [Fact]
    public void AcceptCancelledByToken_IsWithdrawn_AndTheConnectionWaitsForTheNextAccept()
    {
        Run(Kind, async loop =>
        {
            using var listener = Listener();
            int registrations = Kind.Registrations(loop);
            using var cts = new CancellationTokenSource();
            var accepting = loop.SockAcceptValueAsync(listener, cts.Token);
            Assert.False(accepting.IsCompleted);
            Assert.Equal(registrations + 1, Kind.Registrations(loop));
            cts.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await accepting);
            Assert.Equal(registrations, Kind.Registrations(loop));

            using var client = Client();
            await loop.SockConnectValueAsync(client, listener.LocalEndPoint!);
            using var server = await loop.SockAcceptValueAsync(listener);
            Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
        });
    }

    [Fact]
    public void TaskCancelled_AtTheAcceptAwait_OnceOnly()
    {
        Run(Kind, async loop =>
        {
            using var listener = Listener();
            int registrations = Kind.Registrations(loop);
            var waiting = loop.CreateFuture<VoidResult>();
            async LoopTask<string> Acceptor()
            {
                try
                {
                    var pending = loop.SockAcceptValueAsync(listener);
                    waiting.SetResult(default);
                    (await pending).Dispose();
                    return "accepted";
                }
                catch (CancelledError)
                {
                    // One request, one CancelledError: the task's next await is not cancelled again.
                    await Tasks.Sleep(0);
                    return "cancelled once";
                }
            }

            var acceptor = loop.CreateTask(Acceptor);
            await waiting;
            acceptor.Cancel();
            Assert.Equal("cancelled once", await acceptor);
            Assert.Equal(registrations, Kind.Registrations(loop));
        });
    }

    [Fact]
    public void ConnectCancelledWhileTheHandshakeWaits_IsWithdrawn()
    {
        Run(Kind, async loop =>
        {
            // A listener whose accept queue is full drops SYNs: a connect to it stays in progress.
            using var full = Listener(backlog: 0);
            var fillers = new List<Socket>();
            try
            {
                for (int i = 0; i < 4; i++)
                {
                    var filler = Client();
                    fillers.Add(filler);
                    try { filler.Connect(full.LocalEndPoint!); } catch (SocketException) { }
                }

                int registrations = Kind.Registrations(loop);
                using var client = Client();
                using var cts = new CancellationTokenSource();
                var connecting = loop.SockConnectValueAsync(client, full.LocalEndPoint!, cts.Token);
                Assert.False(connecting.IsCompleted, "the connect should still be in progress");
                Assert.Equal(registrations + 1, Kind.Registrations(loop));
                cts.Cancel();
                await Assert.ThrowsAsync<CancelledError>(async () => await connecting);
                Assert.Equal(registrations, Kind.Registrations(loop));
            }
            finally
            {
                foreach (var filler in fillers)
                {
                    filler.Dispose();
                }
            }
        });
    }

    [Fact]
    public void ConnectToAPortNobodyListensOn_FailsWithConnectionRefused()
    {
        Run(Kind, async loop =>
        {
            EndPoint closed;
            using (var listener = Listener())
            {
                closed = listener.LocalEndPoint!;
            }

            using var client = Client();
            var ex = await Assert.ThrowsAsync<SocketException>(async () => await loop.SockConnectValueAsync(client, closed));
            Assert.Equal(SocketError.ConnectionRefused, ex.SocketErrorCode);
        });
    }

    [Fact]
    public void UnixConnectAndAccept_MakeAPair()
    {
        Run(Kind, async loop =>
        {
            string path = Path.Combine(Path.GetTempPath(), $"tulip-sockvalue-{Guid.NewGuid():N}.sock");
            try
            {
                using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                listener.Bind(new UnixDomainSocketEndPoint(path));
                listener.Listen(1);
                listener.Blocking = false;
                using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { Blocking = false };
                var accepting = loop.SockAcceptValueAsync(listener);
                await loop.SockConnectValueAsync(client, new UnixDomainSocketEndPoint(path));
                using var server = await accepting;
                await loop.SockSendAllValueAsync(server, "unix"u8.ToArray());
                var buffer = new byte[8];
                Assert.Equal(4, await loop.SockRecvIntoValueAsync(client, buffer));
            }
            finally
            {
                File.Delete(path);
            }
        });
    }

    [Fact]
    public void AnAlreadyCancelledToken_FailsAtOnce_AndTakesNoConnection()
    {
        Run(Kind, async loop =>
        {
            using var listener = Listener();
            using var client = Client();
            var cancelled = new CancellationToken(canceled: true);
            await Assert.ThrowsAsync<CancelledError>(async () => await loop.SockConnectValueAsync(client, listener.LocalEndPoint!, cancelled));
            Assert.False(client.Connected);
            await loop.SockConnectValueAsync(client, listener.LocalEndPoint!);
            await Assert.ThrowsAsync<CancelledError>(async () => await loop.SockAcceptValueAsync(listener, cancelled));
            using var server = await loop.SockAcceptValueAsync(listener);
            Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
        });
    }

    // CA2012: these calls throw before making a ValueTask; there is nothing to await.
#pragma warning disable CA2012
    [Fact]
    public void BadCalls_ClearErrors()
    {
        Run(Kind, async loop =>
        {
            using var listener = Listener();
            var target = listener.LocalEndPoint!;
            using var blocking = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var ex = Assert.Throws<ArgumentException>(() => { _ = loop.SockAcceptValueAsync(blocking); });
            Assert.Contains("non-blocking", ex.Message, StringComparison.Ordinal);
            Assert.Throws<ArgumentException>(() => { _ = loop.SockConnectValueAsync(blocking, target); });
            Assert.Throws<ArgumentNullException>(() => { _ = loop.SockAcceptValueAsync(null!); });
            Assert.Throws<ArgumentNullException>(() => { _ = loop.SockConnectValueAsync(null!, target); });
            Assert.Throws<ArgumentException>(() => { _ = loop.SockRecvIntoValueAsync(blocking, new byte[1]); });

            using var client = Client();
            Assert.Throws<ArgumentNullException>(() => { _ = loop.SockConnectValueAsync(client, null!); });
            var dns = Assert.Throws<ArgumentException>(() => { _ = loop.SockConnectValueAsync(client, new DnsEndPoint("localhost", 1)); });
            Assert.Contains("GetAddrInfoAsync", dns.Message, StringComparison.Ordinal);

            // A closed socket.
            var closed = Client();
            closed.Dispose();
            Assert.Throws<ObjectDisposedException>(() => { _ = loop.SockConnectValueAsync(closed, target); });
            Assert.Throws<ObjectDisposedException>(() => { _ = loop.SockAcceptValueAsync(closed); });

            // Not listening: refused up front, the same way on every loop (SockRefusalTests has the rest).
            using var notListening = Client();
            Assert.Throws<InvalidOperationException>(() => { _ = loop.SockAcceptValueAsync(notListening); });

            // Another thread than the loop's.
            var offLoop = await Task.Run(() => Record.Exception(() => { _ = loop.SockAcceptValueAsync(listener); }));
            Assert.IsType<InvalidOperationException>(offLoop);
            Assert.Contains("loop thread", offLoop.Message, StringComparison.Ordinal);
            offLoop = await Task.Run(() => Record.Exception(() => { _ = loop.SockConnectValueAsync(client, target); }));
            Assert.IsType<InvalidOperationException>(offLoop);

            if (Kind.Readiness)
            {
                // One accept at a time on a readiness loop: the fd has one reader.
                using var cts = new CancellationTokenSource();
                var first = loop.SockAcceptValueAsync(listener, cts.Token);
                var twice = Assert.Throws<InvalidOperationException>(() => { _ = loop.SockAcceptValueAsync(listener); });
                Assert.Contains("one accept at a time", twice.Message, StringComparison.Ordinal);
                cts.Cancel();
                await Assert.ThrowsAsync<CancelledError>(async () => await first);
            }
        });
    }
#pragma warning restore CA2012

    /// <summary>
    /// What a connection (a connect, its accept, both sockets closed) costs on the loop thread with the
    /// ValueTask forms, beside the LoopTask forms (see SockValueMethodTests' round trip for the method).
    /// The sockets themselves are the runtime's (a Socket, its SafeSocketHandle, the addresses) and
    /// the same in both; what the ValueTask forms leave out is the loop's own objects per call (the
    /// task, its future, the readiness handle), so the bound is on the difference.
    /// </summary>
    [Fact]
    public void AConnectionAllocatesLessThanWithTheLoopTaskForms()
    {
        const int Warmup = 50;
        const int Connections = 400;
        double valuePerConnection = 0, taskPerConnection = 0;
        Run(Kind, async loop =>
        {
            using var listener = Listener(backlog: 16);
            var target = listener.LocalEndPoint!;

            async LoopTask ValueConnections(int count)
            {
                for (int i = 0; i < count; i++)
                {
                    using var client = Client();
                    var accepting = loop.SockAcceptValueAsync(listener);
                    await loop.SockConnectValueAsync(client, target);
                    (await accepting).Dispose();
                }
            }

            async LoopTask TaskConnections(int count)
            {
                for (int i = 0; i < count; i++)
                {
                    using var client = Client();
                    var accepting = loop.SockAcceptAsync(listener);
                    await loop.SockConnectAsync(client, target);
                    (await accepting).Dispose();
                }
            }

            valuePerConnection = await AllocatedPerIterationAsync(ValueConnections, Warmup, Connections);
            taskPerConnection = await AllocatedPerIterationAsync(TaskConnections, Warmup, Connections);
        });

        _output.WriteLine($"{Backend}: a connection allocates {valuePerConnection:F1} B on the loop thread with the ValueTask forms, {taskPerConnection:F1} B with the LoopTask forms");
        // Measured: 1,890 B against 3,865 B on the readiness loops, 1,050 B against 2,441 B on the proactor (Debug).
        Assert.True(valuePerConnection + 500 <= taskPerConnection,
            $"{Backend}: {valuePerConnection:F1} B per connection with SockConnectValueAsync + SockAcceptValueAsync, {taskPerConnection:F1} B with the LoopTask forms (expected at least 500 B less)");
    }
}

public sealed class EpollSockValueConnectionTests(ITestOutputHelper output) : SockValueConnectionTests(LoopKinds.Epoll, output);

public sealed class PollSockValueConnectionTests(ITestOutputHelper output) : SockValueConnectionTests(LoopKinds.Poll, output);

public sealed class ProactorSockValueConnectionTests(ITestOutputHelper output) : SockValueConnectionTests(LoopKinds.Proactor, output);
