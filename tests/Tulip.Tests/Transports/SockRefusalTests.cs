using System.Net;
using System.Net.Sockets;
using Tulip;
using static Tulip.Tests.Transports.SockValueSupport;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// What the Sock* methods refuse, and how, on every loop kind (issue 12: a behaviour that differs
/// between loops is a bug in one of them): each bad input fails at once with the same exception type
/// on every loop, whether the method is a LoopTask form or a ValueTask form, and whether the loop
/// checks it itself or the call's syscall does.
/// </summary>
public abstract class SockRefusalTests : LoopSuite
{
    private const string NonBlockingMessage = "The socket must be non-blocking (socket.Blocking = false): a blocking call would stall the loop. (Parameter 'socket')";

    protected SockRefusalTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>Every Sock* method called on <paramref name="socket"/>, by name: what each ended with (a throw at the call or at the await).</summary>
    private static async LoopTask<List<(string Method, Exception? Error)>> CallEveryMethodAsync(BaseEventLoop loop, Socket socket, string file)
    {
        var target = new IPEndPoint(IPAddress.Loopback, 9);
        var address = new SocketAddress(AddressFamily.InterNetwork);
        var buffer = new byte[16];
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read);
        var calls = new List<(string, Func<Task>)>
        {
            ("SockRecvAsync", async () => await loop.SockRecvAsync(socket, buffer)),
            ("SockRecvIntoAsync", async () => await loop.SockRecvIntoAsync(socket, buffer)),
            ("SockSendAllAsync", async () => await loop.SockSendAllAsync(socket, buffer)),
            ("SockAcceptAsync", async () => await loop.SockAcceptAsync(socket)),
            ("SockConnectAsync", async () => await loop.SockConnectAsync(socket, target)),
            ("SockRecvFromAsync", async () => await loop.SockRecvFromAsync(socket, buffer)),
            ("SockRecvFromIntoAsync", async () => await loop.SockRecvFromIntoAsync(socket, buffer)),
            ("SockSendToAsync", async () => await loop.SockSendToAsync(socket, buffer, target)),
            ("SockSendFileAsync", async () => await loop.SockSendFileAsync(socket, stream)),
            ("SockRecvValueAsync", async () => await loop.SockRecvValueAsync(socket, buffer)),
            ("SockRecvIntoValueAsync", async () => await loop.SockRecvIntoValueAsync(socket, buffer)),
            ("SockSendAllValueAsync", async () => await loop.SockSendAllValueAsync(socket, buffer)),
            ("SockAcceptValueAsync", async () => await loop.SockAcceptValueAsync(socket)),
            ("SockConnectValueAsync", async () => await loop.SockConnectValueAsync(socket, target)),
            ("SockRecvFromValueAsync", async () => await loop.SockRecvFromValueAsync(socket, buffer, address)),
            ("SockSendToValueAsync", async () => await loop.SockSendToValueAsync(socket, buffer, address)),
        };
        var outcomes = new List<(string, Exception?)>();
        foreach (var (name, call) in calls)
        {
            outcomes.Add((name, await Record.ExceptionAsync(call)));
        }

        return outcomes;
    }

    private void RunWithFile(Func<BaseEventLoop, string, LoopTask> body)
    {
        string file = Path.GetTempFileName();
        File.WriteAllBytes(file, new byte[100]);
        try
        {
            Run(Kind, loop => body(loop, file));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void BlockingSocket_EveryMethod_TheSameArgumentException()
    {
        RunWithFile(async (loop, file) =>
        {
            using var blocking = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            foreach (var (method, error) in await CallEveryMethodAsync(loop, blocking, file))
            {
                var ex = Assert.IsType<ArgumentException>(error);
                Assert.True(ex.Message == NonBlockingMessage && ex.ParamName == "socket", $"{method}: {ex.Message}");
            }
        });
    }

    [Fact]
    public void NullSocket_EveryMethod_ArgumentNullException()
    {
        RunWithFile(async (loop, file) =>
        {
            foreach (var (method, error) in await CallEveryMethodAsync(loop, null!, file))
            {
                Assert.True(error is ArgumentNullException { ParamName: "socket" }, $"{method}: {error}");
            }
        });
    }

    [Fact]
    public void DisposedSocket_EveryMethod_ObjectDisposedException()
    {
        RunWithFile(async (loop, file) =>
        {
            var disposed = Client();
            disposed.Dispose();
            foreach (var (method, error) in await CallEveryMethodAsync(loop, disposed, file))
            {
                Assert.True(error is ObjectDisposedException, $"{method}: {error}");
            }
        });
    }

    [Fact]
    public void Accept_OnASocketNotListening_InvalidOperationException_SayingListen()
    {
        Run(Kind, async loop =>
        {
            using var notListening = Client();
            notListening.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var ex = await Assert.ThrowsAsync<InvalidOperationException>(async () => await loop.SockAcceptAsync(notListening));
            Assert.Contains("Listen(backlog)", ex.Message, StringComparison.Ordinal);
            ex = await Assert.ThrowsAsync<InvalidOperationException>(async () => await loop.SockAcceptValueAsync(notListening));
            Assert.Contains("Listen(backlog)", ex.Message, StringComparison.Ordinal);
        });
    }

    [Fact]
    public void Accept_OnADatagramSocket_InvalidOperationException_SayingRecvFrom()
    {
        Run(Kind, async loop =>
        {
            using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { Blocking = false };
            udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var ex = await Assert.ThrowsAsync<InvalidOperationException>(async () => await loop.SockAcceptAsync(udp));
            Assert.Contains("SockRecvFromAsync", ex.Message, StringComparison.Ordinal);
            ex = await Assert.ThrowsAsync<InvalidOperationException>(async () => await loop.SockAcceptValueAsync(udp));
            Assert.Contains("SockRecvFromAsync", ex.Message, StringComparison.Ordinal);
        });
    }

    [Fact]
    public void DatagramCalls_OnAStreamSocket_InvalidOperationException_SayingTheStreamCalls()
    {
        Run(Kind, loop => WithConnectedPairAsync(loop, async (client, server) =>
        {
            var buffer = new byte[16];
            var address = new SocketAddress(AddressFamily.InterNetwork);
            var calls = new Func<Task>[]
            {
                async () => await loop.SockRecvFromAsync(server, buffer),
                async () => await loop.SockSendToAsync(client, buffer, server.LocalEndPoint!),
                async () => await loop.SockRecvFromValueAsync(server, buffer, address),
                async () => await loop.SockSendToValueAsync(client, buffer, server.LocalEndPoint!.Serialize()),
            };
            foreach (var call in calls)
            {
                var ex = await Assert.ThrowsAsync<InvalidOperationException>(call);
                Assert.Contains("SockRecvAsync and SockSendAllAsync", ex.Message, StringComparison.Ordinal);
            }

            // Nothing was sent or taken: the stream still carries what comes next.
            await loop.SockSendAllAsync(client, "x"u8.ToArray());
            Assert.Equal(1, await loop.SockRecvAsync(server, buffer));
        }));
    }

    [Fact]
    public void Recv_OnAListeningSocket_FailsAtOnce_NotConnected()
    {
        // asyncio: recv(2) says ENOTCONN (OSError) at once; no loop waits for a readability that means a connection.
        Run(Kind, async loop =>
        {
            using var listener = Listener();
            var ex = await Assert.ThrowsAsync<SocketException>(async () => await loop.SockRecvAsync(listener, new byte[16]));
            Assert.Equal(SocketError.NotConnected, ex.SocketErrorCode);
            ex = await Assert.ThrowsAsync<SocketException>(async () => await loop.SockRecvValueAsync(listener, new byte[16]));
            Assert.Equal(SocketError.NotConnected, ex.SocketErrorCode);
        });
    }

    [Fact]
    public void Connect_OnAConnectedSocket_FailsAtOnce_IsConnected()
    {
        // asyncio: connect(2) says EISCONN (OSError) at once.
        Run(Kind, loop => WithConnectedPairAsync(loop, async (client, server) =>
        {
            var ex = await Assert.ThrowsAsync<SocketException>(async () => await loop.SockConnectAsync(client, server.LocalEndPoint!));
            Assert.Equal(SocketError.IsConnected, ex.SocketErrorCode);
            ex = await Assert.ThrowsAsync<SocketException>(async () => await loop.SockConnectValueAsync(client, server.LocalEndPoint!));
            Assert.Equal(SocketError.IsConnected, ex.SocketErrorCode);
        }));
    }

    [Fact]
    public void Recv_IntoAnEmptyBuffer_ReturnsZeroAtOnce_AndTakesNothing()
    {
        // asyncio: sock_recv(sock, 0) and sock_recv_into(sock, bytearray()) return at once, with nothing
        // waiting to be read; the runtime's zero-byte receive would wait for data instead.
        Run(Kind, loop => WithConnectedPairAsync(loop, async (client, server) =>
        {
            var receiving = loop.SockRecvAsync(server, Memory<byte>.Empty);
            await Tasks.Sleep(0);
            Assert.True(receiving.Done, "the receive of nothing is over at once, with no data to wait for");
            Assert.Equal(0, await receiving);
            var value = loop.SockRecvValueAsync(server, Memory<byte>.Empty);
            Assert.True(value.IsCompleted, "the ValueTask form's receive of nothing is over at once");
            Assert.Equal(0, await value);

            await loop.SockSendAllAsync(client, "y"u8.ToArray());
            var buffer = new byte[4];
            Assert.Equal(1, await loop.SockRecvAsync(server, buffer));
            Assert.Equal((byte)'y', buffer[0]);
        }));
    }
}

public sealed class EpollSockRefusalTests() : SockRefusalTests(LoopKinds.Epoll);

public sealed class PollSockRefusalTests() : SockRefusalTests(LoopKinds.Poll);

public sealed class ProactorSockRefusalTests() : SockRefusalTests(LoopKinds.Proactor);
