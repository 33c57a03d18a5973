using System.Net;
using System.Net.Sockets;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.SockValueSupport;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.IoUring;

/// <summary>
/// The io_uring loop's connect (<c>IORING_OP_CONNECT</c>) beyond the contract suites, which run every
/// connect test on it as on every loop (SockValueConnectionTests, ConnectCancellationTests,
/// StreamConnectionTests, happy eyeballs): that each connect form really goes through the ring
/// (<c>ConnectsSubmitted</c>), that a cancel withdraws the operation from the kernel and leaves a socket
/// the caller closes, and that the loop's close with a connect in the kernel ends it and leaves no fd
/// or operation slot behind.
/// </summary>
/// <remarks>In <see cref="NativeFdCollection"/>: the tests compare the fds open before and after.</remarks>
[Collection(NativeFdCollection.Name)]
public sealed class IoUringConnectTests
{
    private static IoUringEventLoop NewLoop()
    {
        var loop = new IoUringEventLoop();
        Assert.True(loop.CompletionTransports, "this kernel has provided-buffer rings (5.19+): connects go through the ring");
        return loop;
    }

    private static void Run(IoUringEventLoop loop, Func<LoopTask> body)
    {
        var seen = new List<ExceptionContext>();
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

        Assert.Empty(seen.Select(c => $"{c.Message}: {c.Exception}"));
    }

    /// <summary>A listener whose accept queue is full (backlog 0 and fillers): a connect to it stays in progress.</summary>
    private static (Socket Listener, List<Socket> Fillers) FullListener()
    {
        var full = Listener(backlog: 0);
        var fillers = new List<Socket>();
        for (int i = 0; i < 4; i++)
        {
            var filler = Client();
            fillers.Add(filler);
            try { filler.Connect(full.LocalEndPoint!); } catch (SocketException) { }
        }

        return (full, fillers);
    }

    private static void Dispose(Socket listener, List<Socket> fillers)
    {
        foreach (var filler in fillers)
        {
            filler.Dispose();
        }

        listener.Dispose();
    }

    [Fact]
    public void EveryConnectForm_GoesThroughTheRing_AndLeavesNoOperation()
    {
        var before = TakeFds();
        using (var loop = NewLoop())
        {
            int slots = loop.RegisteredOperations;
            Run(loop, async () =>
            {
                using var listener = Listener(backlog: 8);
                var target = (IPEndPoint)listener.LocalEndPoint!;

                using (var client = Client())
                {
                    long submitted = loop.ConnectsSubmitted;
                    var accepting = loop.SockAcceptAsync(listener);
                    await loop.SockConnectAsync(client, target);
                    using var server = await accepting;
                    Assert.Equal(submitted + 1, loop.ConnectsSubmitted);
                    Assert.True(client.Connected);
                    Assert.Equal(target, client.RemoteEndPoint);
                    Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
                }

                using (var client = Client())
                {
                    long submitted = loop.ConnectsSubmitted;
                    var accepting = loop.SockAcceptValueAsync(listener);
                    await loop.SockConnectValueAsync(client, target);
                    using var server = await accepting;
                    Assert.Equal(submitted + 1, loop.ConnectsSubmitted);
                    Assert.Equal(target, client.RemoteEndPoint);
                }

                // IPv6: the other sockaddr layout the operation hands the kernel.
                using (var listener6 = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp))
                using (var client = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { Blocking = false })
                {
                    listener6.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
                    listener6.Listen(8);
                    listener6.Blocking = false;
                    var target6 = (IPEndPoint)listener6.LocalEndPoint!;
                    long submitted = loop.ConnectsSubmitted;
                    var accepting = loop.SockAcceptAsync(listener6);
                    await loop.SockConnectAsync(client, target6);
                    using var server = await accepting;
                    Assert.Equal(submitted + 1, loop.ConnectsSubmitted);
                    Assert.Equal(target6, client.RemoteEndPoint);
                    Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
                }

                await using (var echo = await loop.CreateServerAsync(() => new QuietProtocol(), ["127.0.0.1"], 0))
                {
                    long submitted = loop.ConnectsSubmitted;
                    var (transport, _) = await loop.CreateConnectionAsync(() => new QuietProtocol(), "127.0.0.1", ((IPEndPoint)echo.Sockets[0].LocalEndPoint!).Port);
                    Assert.Equal(submitted + 1, loop.ConnectsSubmitted);
                    Assert.Equal(echo.Sockets[0].LocalEndPoint, transport.GetExtraInfo("peername"));
                    transport.Close();
                }
            });

            Assert.Equal(slots, loop.RegisteredOperations);
        }

        Assert.True(before.NoneAdded(), before.Describe());
    }

    [Fact]
    public void RefusedConnect_ThroughTheRing_IsConnectionRefused_InBothForms()
    {
        using var loop = NewLoop();
        Run(loop, async () =>
        {
            EndPoint closed;
            using (var listener = Listener())
            {
                closed = listener.LocalEndPoint!;
            }

            long submitted = loop.ConnectsSubmitted;
            using var first = Client();
            var ex = await Assert.ThrowsAsync<SocketException>(async () => await loop.SockConnectAsync(first, closed));
            Assert.Equal(SocketError.ConnectionRefused, ex.SocketErrorCode);
            using var second = Client();
            ex = await Assert.ThrowsAsync<SocketException>(async () => await loop.SockConnectValueAsync(second, closed));
            Assert.Equal(SocketError.ConnectionRefused, ex.SocketErrorCode);
            Assert.Equal(submitted + 2, loop.ConnectsSubmitted);
            Assert.Equal(0, loop.OperationsInKernel);
        });
    }

    [Fact]
    public void CancelledBeforeTheCall_SubmitsNothing()
    {
        using var loop = NewLoop();
        Run(loop, async () =>
        {
            using var listener = Listener();
            using var client = Client();
            var cancelled = new CancellationToken(canceled: true);
            await Assert.ThrowsAsync<CancelledError>(async () => await loop.SockConnectValueAsync(client, listener.LocalEndPoint!, cancelled));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await loop.SockConnectAsync(client, listener.LocalEndPoint!, cancelled));
            Assert.Equal(0, loop.ConnectsSubmitted);
            Assert.False(client.Connected);
        });
    }

    /// <summary>
    /// A connect in the kernel (the listener's queue is full, so its handshake waits) cancelled three ways:
    /// the ValueTask form's token, the LoopTask form's token, and the task awaiting it. Each ends with
    /// CancelledError once the kernel let go (no operation in the kernel, no slot), and the socket closes.
    /// </summary>
    [Fact]
    public void CancelledWhileInTheKernel_IsWithdrawn_ByTokenAndByTask()
    {
        var before = TakeFds();
        using (var loop = NewLoop())
        {
            int slots = loop.RegisteredOperations;
            Run(loop, async () =>
            {
                var (full, fillers) = FullListener();
                try
                {
                    using (var client = Client())
                    {
                        using var cts = new CancellationTokenSource();
                        var connecting = loop.SockConnectValueAsync(client, full.LocalEndPoint!, cts.Token);
                        Assert.False(connecting.IsCompleted);
                        Assert.Equal(1, loop.OperationsInKernel);
                        await Tasks.Sleep(0); // submitted: the kernel holds it
                        cts.Cancel();
                        await Assert.ThrowsAsync<CancelledError>(async () => await connecting);
                        Assert.Equal(0, loop.OperationsInKernel);
                        Assert.Equal(slots, loop.RegisteredOperations);
                    }

                    using (var client = Client())
                    {
                        using var cts = new CancellationTokenSource();
                        var connecting = loop.CreateTask(() => loop.SockConnectAsync(client, full.LocalEndPoint!, cts.Token));
                        Assert.True(await Eventually(() => loop.OperationsInKernel == 1));
                        cts.Cancel();
                        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await connecting);
                        Assert.Equal(0, loop.OperationsInKernel);
                    }

                    using (var client = Client())
                    {
                        var connecting = loop.CreateTask(() => loop.SockConnectAsync(client, full.LocalEndPoint!));
                        Assert.True(await Eventually(() => loop.OperationsInKernel == 1));
                        connecting.Cancel();
                        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await connecting);
                        Assert.Equal(0, loop.OperationsInKernel);
                        Assert.Equal(slots, loop.RegisteredOperations);
                    }
                }
                finally
                {
                    Dispose(full, fillers);
                }
            });
        }

        Assert.True(before.NoneAdded(), before.Describe());
    }

    /// <summary>
    /// The loop closes with a connect in the kernel: the close cancels it and reads its completion, the
    /// ValueTask ends (CancelledError), and nothing is left: no operation, no slot, no fd once the socket closes.
    /// </summary>
    [Fact]
    public void LoopClosedWithAConnectInTheKernel_EndsIt_AndLeavesNothing()
    {
        var before = TakeFds();
        var (full, fillers) = FullListener();
        var client = Client();
        ValueTask connecting = default;
        var loop = NewLoop();
        try
        {
            int slots = loop.RegisteredOperations;
            Run(loop, async () =>
            {
                connecting = loop.SockConnectValueAsync(client, full.LocalEndPoint!);
                await Tasks.Sleep(0); // submitted
                Assert.Equal(1, loop.OperationsInKernel);
            });

            Assert.False(connecting.IsCompleted);
            loop.Close();
            Assert.Equal(0, loop.OperationsInKernel);
            Assert.Equal(slots, loop.RegisteredOperations);
            Assert.True(connecting.IsCompleted, "the close ended the connect");
            Assert.Throws<CancelledError>(() => connecting.GetAwaiter().GetResult());
        }
        finally
        {
            loop.Dispose();
            client.Dispose();
            Dispose(full, fillers);
        }

        Assert.True(before.NoneAdded(), before.Describe());
    }

    private sealed class QuietProtocol : Protocol
    {
    }
}
