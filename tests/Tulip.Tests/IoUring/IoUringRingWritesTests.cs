using System.Net;
using System.Net.Sockets;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.IoUring;

/// <summary>
/// The io_uring loop's ring writes (<c>TULIP_URING_WRITES=ring</c>): the writes one iteration makes to a
/// connection are gathered and leave in one ring send with the iteration's <c>io_uring_enter</c>, never by
/// a send(2) inside Write. The stream contract suites run on this mode too (IoUringRingWritesBindings.cs);
/// these tests pin what is particular to it.
/// </summary>
public sealed class IoUringRingWritesTests
{
    private static readonly string[] s_loopback = ["127.0.0.1"];

    private static IoUringEventLoop RingWritesLoop() => new() { RingWrites = true };

    /// <summary>A server with one connection to it, the server's side made.</summary>
    private static async LoopTask<(Server Server, RecordingProtocol Peer, ITransport Transport, RecordingProtocol Client)> Connected(IoUringEventLoop loop)
    {
        var peer = new RecordingProtocol(loop);
        var server = await loop.CreateServerAsync(() => peer, s_loopback, 0);
        int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
        var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port);
        await peer.Made;
        return (server, peer, transport, client);
    }

    /// <summary>Ten writes in one iteration: one ring send, and the peer gets every byte in order.</summary>
    [Fact]
    public void WritesOfOneIteration_LeaveInOneRingSend()
    {
        using var loop = RingWritesLoop();
        loop.RunUntilComplete(async () =>
        {
            var (server, peer, transport, client) = await Connected(loop);
            await using var _ = server;
            long before = loop.RingSends;
            var expected = new MemoryStream();
            for (int i = 0; i < 10; i++)
            {
                var chunk = Pattern(100 + i);
                expected.Write(chunk);
                transport.Write(chunk);
            }

            Assert.Equal((int)expected.Length, transport.GetWriteBufferSize()); // nothing sent inside Write
            Assert.True(await peer.WaitBytes(loop, (int)expected.Length));
            Assert.Equal(1, loop.RingSends - before);
            Assert.True(expected.ToArray().AsSpan().SequenceEqual(peer.Received));
            Assert.True(await Eventually(() => transport.GetWriteBufferSize() == 0));
            transport.Close();
            await client.Lost;
        });

        Assert.Equal(0, loop.OperationsInKernel);
    }

    /// <summary>Without the switch a write the socket takes goes by send(2) inside Write: no ring send.</summary>
    [Fact]
    public void ByDefault_AWriteTheSocketTakesMakesNoRingSend()
    {
        using var loop = new IoUringEventLoop();
        Assert.False(loop.RingWrites, "TULIP_URING_WRITES=ring is set in this test run's environment");
        loop.RunUntilComplete(async () =>
        {
            var (server, peer, transport, client) = await Connected(loop);
            await using var _ = server;
            long before = loop.RingSends;
            transport.Write(Pattern(1000));
            Assert.Equal(0, transport.GetWriteBufferSize());
            Assert.True(await peer.WaitBytes(loop, 1000));
            Assert.Equal(0, loop.RingSends - before);
            transport.Close();
            await client.Lost;
        });
    }

    /// <summary>Close and WriteEof in the iteration of the writes: the bytes go first, then the FIN.</summary>
    [Fact]
    public void CloseAndWriteEofInTheSameIteration_SendTheBytesFirst()
    {
        using var loop = RingWritesLoop();
        loop.RunUntilComplete(async () =>
        {
            var peers = new List<RecordingProtocol>();
            await using var server = await loop.CreateServerAsync(() => { var p = new RecordingProtocol(loop) { KeepOpenOnEof = true }; peers.Add(p); return p; }, s_loopback, 0);
            int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;

            var (closing, closingClient) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port);
            closing.Write(Pattern(5000));
            closing.Close();
            await closingClient.Lost;

            var (halfClosing, halfClient) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop) { KeepOpenOnEof = true }, "127.0.0.1", port);
            halfClosing.Write(Pattern(7000));
            halfClosing.WriteEof();

            Assert.True(await Eventually(() => peers.Count == 2));
            Assert.True(await peers[0].Eof);
            Assert.True(await peers[1].Eof);
            Assert.True(Pattern(5000).AsSpan().SequenceEqual(peers[0].Received));
            Assert.True(Pattern(7000).AsSpan().SequenceEqual(peers[1].Received));
            halfClosing.Close();
            await halfClient.Lost;
        });

        Assert.Equal(0, loop.OperationsInKernel);
    }

    /// <summary>Abort in the iteration of the writes: nothing is sent, the connection ends with an RST, nothing stays in the kernel.</summary>
    [Fact]
    public void AbortInTheSameIteration_SendsNothing()
    {
        using var loop = RingWritesLoop();
        loop.RunUntilComplete(async () =>
        {
            var (server, peer, transport, client) = await Connected(loop);
            await using var _ = server;
            long before = loop.RingSends;
            transport.Write(Pattern(3000));
            transport.Abort();
            await client.Lost;
            Assert.IsType<SocketException>(await peer.Lost);
            Assert.Equal(0, loop.RingSends - before);
            Assert.Empty(peer.Received);
        });

        Assert.Equal(0, loop.OperationsInKernel);
    }

    /// <summary>
    /// The loop stops right after a write: the send is submitted as the run ends, so a caller that then
    /// reads from the peer on its own thread finds the bytes (they do not wait for the next run).
    /// </summary>
    [Fact]
    public void AWriteJustBeforeTheRunEnds_IsSubmitted()
    {
        using var loop = RingWritesLoop();
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var transport = loop.RunUntilComplete(async () =>
        {
            var (t, _) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port);
            return t;
        });
        using var accepted = listener.Accept();
        // The write and the stop in one callback: no Select follows it before the run ends.
        loop.CallSoon(() =>
        {
            transport.Write(Pattern(2000));
            loop.Stop();
        });
        loop.RunForever();

        var received = new byte[2000];
        int got = 0;
        accepted.ReceiveTimeout = 30_000; // a hang fails the test rather than the run
        while (got < received.Length)
        {
            int n = accepted.Receive(received, got, received.Length - got, SocketFlags.None);
            Assert.True(n > 0, "the peer saw EOF before the bytes");
            got += n;
        }

        Assert.True(Pattern(2000).AsSpan().SequenceEqual(received));
        transport.Abort();
        loop.RunUntilComplete(async () => await Tasks.Sleep(0));
    }
}
