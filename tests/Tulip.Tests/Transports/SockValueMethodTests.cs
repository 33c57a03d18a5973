using System.Net;
using System.Net.Sockets;
using Tulip;
using Xunit.Abstractions;
using static Tulip.Tests.Transports.SockValueSupport;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// SockRecvValueAsync and SockSendAllValueAsync, the ValueTask forms of sock_recv and sock_sendall,
/// on every loop: data, EOF, errors, cancellation at the await (by token and by the task), and what a
/// round trip allocates on the loop thread.
/// </summary>
public abstract class SockValueMethodTests : LoopSuite
{
    private readonly ITestOutputHelper _output;

    protected SockValueMethodTests(LoopKind kind, ITestOutputHelper output) : base(kind) => _output = output;

    [Fact]
    public void SendAllAndRecv_CarryEverything_ThenEof()
    {
        Run(Kind, loop => WithConnectedPairAsync(loop, async (client, server) =>
        {
            var data = Pattern(3 << 20);
            // Started now, awaited after the receives: far more than the kernel buffers, so it waits.
            ValueTask sending = loop.SockSendAllValueAsync(client, data);
            var received = new MemoryStream();
            var buffer = new byte[100_000];
            while (received.Length < data.Length)
            {
                int n = await loop.SockRecvValueAsync(server, buffer);
                Assert.NotEqual(0, n);
                received.Write(buffer, 0, n);
            }

            await sending;
            Assert.True(data.AsSpan().SequenceEqual(received.ToArray()));
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, await loop.SockRecvValueAsync(server, buffer));
        }));
    }

    [Fact]
    public void RecvCancelledByToken_IsWithdrawn_TheNextRecvGetsTheBytes()
    {
        Run(Kind, loop => WithConnectedPairAsync(loop, async (client, server) =>
        {
            int registrations = Kind.Registrations(loop);
            var buffer = new byte[16];
            using var cts = new CancellationTokenSource();
            var receiving = loop.SockRecvValueAsync(server, buffer, cts.Token);
            Assert.False(receiving.IsCompleted);
            Assert.Equal(registrations + 1, Kind.Registrations(loop));
            cts.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await receiving);
            Assert.Equal(registrations, Kind.Registrations(loop));

            await loop.SockSendAllValueAsync(client, "after"u8.ToArray());
            Assert.Equal(5, await loop.SockRecvValueAsync(server, buffer));
            Assert.Equal("after"u8.ToArray(), buffer.AsSpan(0, 5).ToArray());
        }));
    }

    [Fact]
    public void RecvCancelledFromAnotherThread_IsWithdrawn()
    {
        Run(Kind, loop => WithConnectedPairAsync(loop, async (client, server) =>
        {
            int registrations = Kind.Registrations(loop);
            using var cts = new CancellationTokenSource();
            var receiving = loop.SockRecvValueAsync(server, new byte[16], cts.Token);
            var canceller = new Thread(cts.Cancel);
            canceller.Start();
            await Assert.ThrowsAsync<CancelledError>(async () => await receiving);
            canceller.Join();
            Assert.Equal(registrations, Kind.Registrations(loop));
        }));
    }

    [Fact]
    public void TaskCancelled_AtTheRecvAwait_OnceOnly_AndTheBytesWaitForTheNextRecv()
    {
        Run(Kind, loop => WithConnectedPairAsync(loop, async (client, server) =>
        {
            int registrations = Kind.Registrations(loop);
            var buffer = new byte[16];
            var waiting = loop.CreateFuture<VoidResult>();
            async LoopTask<string> Reader()
            {
                try
                {
                    var pending = loop.SockRecvValueAsync(server, buffer);
                    waiting.SetResult(default);
                    await pending;
                    return "received";
                }
                catch (CancelledError)
                {
                    // One request, one CancelledError: the task's next await is not cancelled again.
                    await Tasks.Sleep(0);
                    return "cancelled once";
                }
            }

            var reader = loop.CreateTask(Reader);
            await waiting;
            Assert.Equal(registrations + 1, Kind.Registrations(loop));
            reader.Cancel();
            Assert.Equal("cancelled once", await reader);
            Assert.Equal(registrations, Kind.Registrations(loop));

            await loop.SockSendAllValueAsync(client, "kept"u8.ToArray());
            Assert.Equal(4, await loop.SockRecvValueAsync(server, buffer));
            Assert.Equal("kept"u8.ToArray(), buffer.AsSpan(0, 4).ToArray());
        }));
    }

    [Fact]
    public void SendCancelledWhileTheKernelBufferIsFull_IsWithdrawn()
    {
        Run(Kind, loop => WithConnectedPairAsync(loop, async (client, server) =>
        {
            client.SendBufferSize = 64 * 1024;
            server.ReceiveBufferSize = 64 * 1024;
            int registrations = Kind.Registrations(loop);
            using var cts = new CancellationTokenSource();
            // Nobody reads: 32 MiB can never fit in the buffers, so the send waits.
            var sending = loop.SockSendAllValueAsync(client, new byte[32 << 20], cts.Token);
            Assert.False(sending.IsCompleted);
            cts.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await sending);
            Assert.Equal(registrations, Kind.Registrations(loop));
        }));
    }

    [Fact]
    public void AnAlreadyCancelledToken_FailsAtOnce_AndReceivesNothing()
    {
        Run(Kind, loop => WithConnectedPairAsync(loop, async (client, server) =>
        {
            await loop.SockSendAllValueAsync(client, "x"u8.ToArray());
            var cancelled = new CancellationToken(canceled: true);
            await Assert.ThrowsAsync<CancelledError>(async () => await loop.SockRecvValueAsync(server, new byte[4], cancelled));
            await Assert.ThrowsAsync<CancelledError>(async () => await loop.SockSendAllValueAsync(client, new byte[4], cancelled));
            var buffer = new byte[4];
            Assert.Equal(1, await loop.SockRecvValueAsync(server, buffer));
            Assert.Equal((byte)'x', buffer[0]);
        }));
    }

    [Fact]
    public void FromAPlainAsyncTaskMethod_ItResumesOnTheLoopThread()
    {
        Run(Kind, loop => WithConnectedPairAsync(loop, async (client, server) =>
        {
            int loopThread = Environment.CurrentManagedThreadId;
            async Task<(int, int)> PlainAsync()
            {
                int n = await loop.SockRecvValueAsync(server, new byte[8]);
                return (n, Environment.CurrentManagedThreadId);
            }

            var plain = PlainAsync();
            await loop.SockSendAllValueAsync(client, "abc"u8.ToArray());
            var (count, thread) = await plain;
            Assert.Equal(3, count);
            Assert.Equal(loopThread, thread);
        }));
    }

    [Fact]
    public void AwaitingTheSameValueTaskTwice_IsRefused()
    {
        Run(Kind, loop => WithConnectedPairAsync(loop, async (client, server) =>
        {
            var receiving = loop.SockRecvValueAsync(server, new byte[8]);
            Assert.False(receiving.IsCompleted);
            await loop.SockSendAllValueAsync(client, "abc"u8.ToArray());
            Assert.Equal(3, await receiving);
            Assert.Throws<InvalidOperationException>(() => receiving.IsCompleted);
        }));
    }

    // CA2012: these calls throw before making a ValueTask; there is nothing to await.
#pragma warning disable CA2012
    [Fact]
    public void BadCalls_ClearErrors()
    {
        Run(Kind, async loop =>
        {
            using var blocking = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var ex = Assert.Throws<ArgumentException>(() => { _ = loop.SockRecvValueAsync(blocking, new byte[1]); });
            Assert.Contains("non-blocking", ex.Message, StringComparison.Ordinal);
            Assert.Throws<ArgumentException>(() => { _ = loop.SockSendAllValueAsync(blocking, new byte[1]); });
            Assert.Throws<ArgumentNullException>(() => { _ = loop.SockRecvValueAsync(null!, new byte[1]); });
            Assert.Throws<ArgumentNullException>(() => { _ = loop.SockSendAllValueAsync(null!, new byte[1]); });

            var disposed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            disposed.Dispose();
            Assert.Throws<ObjectDisposedException>(() => { _ = loop.SockRecvValueAsync(disposed, new byte[1]); });

            // Not connected: the OS's answer, as a SocketException from the await.
            using var unconnected = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            await Assert.ThrowsAsync<SocketException>(async () => await loop.SockSendAllValueAsync(unconnected, new byte[1]));

            // Another thread than the loop's.
            using var nonBlocking = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            var offLoop = await Task.Run(() => Record.Exception(() => { _ = loop.SockRecvValueAsync(nonBlocking, new byte[1]); }));
            Assert.IsType<InvalidOperationException>(offLoop);
            Assert.Contains("loop thread", offLoop.Message, StringComparison.Ordinal);
        });
    }
#pragma warning restore CA2012

    /// <summary>
    /// What a request and its answer cost on the loop thread (GC.GetAllocatedBytesForCurrentThread
    /// around many round trips; each receive waits, so the pooled path is the one measured), beside
    /// the LoopTask forms for reference. Allocation counts are deterministic enough for a bound, and
    /// it is generous (the Debug build boxes awaiters the optimizing JIT would not), so it catches a
    /// per-call object coming back (a future, a task, a closure), not a few bytes.
    /// </summary>
    [Fact]
    public void ARoundTripAllocatesLittleOnTheLoopThread()
    {
        const int Warmup = 200;
        const int RoundTrips = 2000;
        double valuePerTrip = 0, taskPerTrip = 0;
        Run(Kind, loop => WithConnectedPairAsync(loop, async (client, server) =>
        {
            var request = new byte[64];
            var answer = new byte[64];
            var buffer = new byte[64];

            async LoopTask ValueTrips(int count)
            {
                for (int i = 0; i < count; i++)
                {
                    await loop.SockSendAllValueAsync(client, request);
                    int n = await loop.SockRecvValueAsync(server, buffer);
                    await loop.SockSendAllValueAsync(server, answer.AsMemory(0, n));
                    await loop.SockRecvValueAsync(client, buffer);
                }
            }

            async LoopTask TaskTrips(int count)
            {
                for (int i = 0; i < count; i++)
                {
                    await loop.SockSendAllAsync(client, request);
                    int n = await loop.SockRecvAsync(server, buffer);
                    await loop.SockSendAllAsync(server, answer.AsMemory(0, n));
                    await loop.SockRecvAsync(client, buffer);
                }
            }

            valuePerTrip = await AllocatedPerIterationAsync(ValueTrips, Warmup, RoundTrips);
            taskPerTrip = await AllocatedPerIterationAsync(TaskTrips, Warmup, RoundTrips);
        }));

        _output.WriteLine($"{Backend}: a request and its answer allocate {valuePerTrip:F1} B on the loop thread with the ValueTask forms, {taskPerTrip:F1} B with the LoopTask forms");
        Assert.True(valuePerTrip <= 128, $"{Backend}: {valuePerTrip:F1} B per round trip with SockSendAllValueAsync + SockRecvValueAsync (bound 128 B; the LoopTask forms: {taskPerTrip:F1} B)");
    }
}

public sealed class EpollSockValueMethodTests(ITestOutputHelper output) : SockValueMethodTests(LoopKinds.Epoll, output);

public sealed class PollSockValueMethodTests(ITestOutputHelper output) : SockValueMethodTests(LoopKinds.Poll, output);

public sealed class ProactorSockValueMethodTests(ITestOutputHelper output) : SockValueMethodTests(LoopKinds.Proactor, output);
