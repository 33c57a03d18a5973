using System.IO.Pipelines;
using System.Net.Sockets;
using Tulip.Streams;
using static Tulip.Tests.Streams.DuplexPipeTestSupport;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Streams;

/// <summary>
/// <see cref="DuplexPipeProtocol"/> over real TCP: a large echo in which neither side reads for a
/// while, so flow control must hold both directions with memory bounded.
/// </summary>
public abstract class DuplexPipeSocketTests : LoopSuite
{
    protected DuplexPipeSocketTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>How long a phase of the echo may take before the guard reports where it stopped: far above
    /// what it takes on a loaded 2-core machine (seconds), and below the run's own timeout.</summary>
    private const double HangGuardSeconds = 45;

    [Fact]
    public void LargeEcho_BackpressureBothWays_KeepsEveryBufferBounded()
    {
        const int Total = 8 << 20;
        const int Chunk = 64 * 1024;
        // What a side may hold in user space when it is stuck: the transport's high-water mark (64 KiB)
        // plus one batch taken from Output (its threshold plus one write) and slack for a segment.
        const int Bound = 512 * 1024;
        Run(Kind, async loop =>
        {
            var serverPipes = new List<DuplexPipeProtocol>();
            var serving = new List<LoopTask>();
            // Small kernel buffers, set before the connection exists (on the listener, whose accepted
            // sockets inherit them, and on the client before connect), so that the bytes in flight are
            // mostly the ones the test can see. Shrunk after connect instead, the window already
            // advertised no longer fits and loopback TCP stalls in retransmission back-off.
            var listener = SmallBufferSocket();
            listener.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
            listener.Listen(16);
            await using var server = await loop.CreateServerAsync(() => new DuplexPipeProtocol(connectionMade: p =>
            {
                serverPipes.Add(p);
                serving.Add(Echo(p));
            }), null, 0, new ServerOptions { Socket = listener });
            var socket = SmallBufferSocket();
            await loop.SockConnectAsync(socket, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, PortOf(server)));
            var (transport, client) = await loop.CreateConnectionAsync(() => new DuplexPipeProtocol(), null, 0, new ConnectionOptions { Socket = socket });
            var data = Pattern(Total);
            var writing = WriteAll(client.Output, data, Chunk);
            string State() => DescribeEcho(loop, (transport, client), serverPipes.Count == 1 ? (serverPipes[0].Transport, serverPipes[0]) : null);

            // The client does not read: its input fills and it stops reading; the server's writes back
            // then stall, its output fills, it stops reading; then the client's own writes stall.
            Assert.True(await Eventually(() => serverPipes.Count == 1 && !transport.IsReading && !serverPipes[0].Transport.IsReading
                && transport.GetWriteBufferSize() > 0, iterations: 30_000), "both sides should have stopped reading; " + State());
            Assert.False(writing.IsCompleted, "8 MiB cannot all have been taken while nobody reads");
            Assert.InRange(transport.GetWriteBufferSize(), 1, Bound);
            Assert.InRange(serverPipes[0].Transport.GetWriteBufferSize(), 0, Bound);

            byte[] received = await Guarded(loop, ReadToEndAsync(client.Input), "the client reading the echo to its end", State);
            await Guarded(loop, writing, "the client's writes", State);
            Assert.Equal(Total, received.Length);
            Assert.True(data.AsSpan().SequenceEqual(received));
            await Guarded(loop, Assert.Single(serving).AsTask(), "the server's echo", State);
            await Guarded(loop, client.Closed, "the client's connection closing", State);
        }, timeoutSeconds: 4 * HangGuardSeconds);
    }

    /// <summary>
    /// Awaits <paramref name="task"/>, or fails once it has taken <see cref="HangGuardSeconds"/> with what
    /// each side of the echo was doing then: a hang explains itself instead of timing out mute.
    /// </summary>
    private static async LoopTask<T> Guarded<T>(BaseEventLoop loop, Task<T> task, string phase, Func<string> describe)
    {
        await Guarded(loop, (Task)task, phase, describe);
        return await task;
    }

    private static async LoopTask Guarded(BaseEventLoop loop, Task task, string phase, Func<string> describe)
    {
        var expired = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var guard = loop.CallLater(HangGuardSeconds, () => expired.TrySetResult(describe()));
        try
        {
            if (await Task.WhenAny(task, expired.Task) != task)
            {
                throw new TimeoutException($"{phase} hung for {HangGuardSeconds} s; {await expired.Task}");
            }
        }
        finally
        {
            guard.Cancel();
        }

        await task;
    }

    /// <summary>Both ends of the echo, as far as each loop kind tells: the transports' and protocols' own state lines on the proactor.</summary>
    private static string DescribeEcho(BaseEventLoop loop, (ITransport Transport, DuplexPipeProtocol Protocol) client,
        (ITransport Transport, DuplexPipeProtocol Protocol)? server)
    {
        static string Side((ITransport Transport, DuplexPipeProtocol Protocol) side) =>
            (side.Transport is ProactorSocketTransport proactor ? proactor.DescribeState()
                : $"reading={side.Transport.IsReading} closing={side.Transport.IsClosing} writeBuffer={side.Transport.GetWriteBufferSize()}")
            + " || protocol " + side.Protocol.DescribeState();

        return $"client: [{Side(client)}]; server: [{(server is { } s ? Side(s) : "not connected")}]; loop: [" +
            (loop is ProactorEventLoop proactorLoop ? proactorLoop.DescribeState() : $"ready={loop.ReadyCount}") + "]";
    }

    private static async Task WriteAll(PipeWriter output, byte[] data, int chunk)
    {
        for (int offset = 0; offset < data.Length; offset += chunk)
        {
            var result = await output.WriteAsync(data.AsMemory(offset, Math.Min(chunk, data.Length - offset)));
            Assert.False(result.IsCompleted);
        }

        await output.CompleteAsync();
    }

    private static async LoopTask Echo(DuplexPipeProtocol p)
    {
        await p.Input.CopyToAsync(p.Output); // echo, flushing each piece: waits whenever Output is full
        await p.Output.CompleteAsync();
    }

    private static Socket SmallBufferSocket()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
        socket.SendBufferSize = 32 * 1024;
        socket.ReceiveBufferSize = 32 * 1024;
        return socket;
    }
}

public sealed class EpollDuplexPipeSocketTests() : DuplexPipeSocketTests(LoopKinds.Epoll);

public sealed class PollDuplexPipeSocketTests() : DuplexPipeSocketTests(LoopKinds.Poll);

public sealed class ProactorDuplexPipeSocketTests() : DuplexPipeSocketTests(LoopKinds.Proactor);
