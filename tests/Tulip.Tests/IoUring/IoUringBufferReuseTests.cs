using System.Net;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.IoUring;

/// <summary>
/// The io_uring loop's provided-buffer ring hands out the buffers given back last (a LIFO stack topped up
/// to the receives armed), so steady traffic cycles a few warm buffers instead of every buffer in turn.
/// </summary>
public sealed class IoUringBufferReuseTests
{
    private static readonly string[] s_loopback = ["127.0.0.1"];

    /// <summary>
    /// 300 round trips on one connection touch a handful of the ring's 256 buffers: the two armed
    /// receives (client and server) and the slack, not a new buffer per receive as an oldest-first ring does.
    /// </summary>
    [Fact]
    public void ManyRoundTripsOnOneConnection_ReuseAFewBuffers()
    {
        using var loop = new IoUringEventLoop();
        Assert.True(loop.CompletionTransports, "this kernel has provided-buffer rings (5.19+): the completion transports must be in use");
        loop.RunUntilComplete(async () =>
        {
            await using var server = await loop.CreateServerAsync(() => new EchoProtocol(), s_loopback, 0);
            int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port);
            var message = Pattern(1024);
            for (int i = 1; i <= 300; i++)
            {
                transport.Write(message);
                Assert.True(await client.WaitBytes(loop, i * message.Length));
            }

            var ring = loop.ReceiveBuffers;
            Assert.True(ring.BuffersTouched <= 2 + global::Tulip.IoUring.IoUringBufferRing.Slack + 2,
                $"{ring.BuffersTouched} of {ring.Count} buffers were used for 300 round trips on one connection: the ring does not reuse the buffers given back last");
            Assert.True(ring.InRing <= 2 + global::Tulip.IoUring.IoUringBufferRing.Slack, $"{ring.InRing} buffers in the kernel's ring for 2 armed receives");
            transport.Close();
            await client.Lost;
        });

        Assert.Equal(0, loop.ReceiveBuffersHeld);
    }

    /// <summary>More receives armed than buffers: every buffer goes to the kernel's ring (none is kept back on the stack).</summary>
    [Fact]
    public void MoreConnectionsThanBuffers_EveryBufferIsInTheRing()
    {
        using var loop = new IoUringEventLoop(receiveBuffers: 8);
        loop.RunUntilComplete(async () =>
        {
            int accepted = 0;
            await using var server = await loop.CreateServerAsync(() => { accepted++; return new EchoProtocol(); }, s_loopback, 0);
            int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
            var clients = new List<(ITransport Transport, RecordingProtocol Protocol)>();
            for (int i = 0; i < 6; i++)
            {
                clients.Add(await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port));
            }

            Assert.True(await Eventually(() => accepted == 6));
            var ring = loop.ReceiveBuffers;
            Assert.True(await Eventually(() => ring.InRing == 8), $"{ring.InRing} of 8 buffers in the ring with 12 receives armed");
            foreach (var (t, p) in clients)
            {
                t.Write("ping"u8);
                Assert.True(await p.WaitBytes(loop, 4));
            }

            foreach (var (t, p) in clients)
            {
                t.Close();
                await p.Lost;
            }
        });

        Assert.Equal(0, loop.ReceiveBuffersHeld);
    }

    private sealed class EchoProtocol : Protocol
    {
        private ITransport _transport = null!;

        public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;

        public override void DataReceived(ReadOnlySpan<byte> data) => _transport.Write(data);
    }
}
