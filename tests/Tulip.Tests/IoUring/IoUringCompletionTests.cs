using System.Net;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.IoUring;

/// <summary>
/// What is particular to the io_uring loop's completion transports beyond the contract suites (which run
/// on it as on every loop): the provided-buffer ring running dry and refilling, and every buffer, operation
/// slot and kernel operation given back when the connections end.
/// </summary>
public sealed class IoUringCompletionTests
{
    private static readonly string[] s_loopback = ["127.0.0.1"];

    private static IoUringEventLoop NewLoop(int? receiveBuffers = null)
    {
        var loop = receiveBuffers is { } n ? new IoUringEventLoop(n) : new IoUringEventLoop();
        Assert.True(loop.CompletionTransports, "this kernel has provided-buffer rings (5.19+): the completion transports must be in use");
        return loop;
    }

    /// <summary>
    /// 48 connections each receive 512 KiB at once on a loop whose ring has 8 buffers: more receives are
    /// armed than the ring has buffers, so receives end with ENOBUFS and wait for buffers to come back.
    /// Every byte arrives, in order, on its own connection, and nothing is held afterwards.
    /// </summary>
    [Fact]
    public void MoreDataAtOnceThanTheRingHolds_EveryByteArrivesInOrder_AndEveryBufferComesBack()
    {
        const int Connections = 48;
        const int Size = 512 * 1024;
        using var loop = NewLoop(receiveBuffers: 8);
        var errors = new List<ExceptionContext>();
        loop.SetExceptionHandler((_, ctx) => errors.Add(ctx));
        int slots = loop.RegisteredOperations;
        loop.RunUntilComplete(async () =>
        {
            var serverSide = new List<RecordingProtocol>();
            await using var server = await loop.CreateServerAsync(() =>
            {
                var p = new RecordingProtocol(loop);
                serverSide.Add(p);
                return p;
            }, s_loopback, 0);
            int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
            var clients = new List<(ITransport Transport, RecordingProtocol Protocol)>();
            for (int i = 0; i < Connections; i++)
            {
                clients.Add(await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port));
            }

            Assert.True(await Eventually(() => serverSide.Count == Connections && serverSide.All(p => p.Made.Done)));
            // Each connection's bytes differ (the first byte of each 4 KiB block says which connection),
            // so data delivered to the wrong connection would show.
            for (int i = 0; i < Connections; i++)
            {
                var data = Pattern(Size);
                for (int b = 0; b < Size; b += 4096)
                {
                    data[b] = (byte)i;
                }

                clients[i].Transport.Write(data);
                clients[i].Transport.WriteEof();
            }

            foreach (var p in serverSide)
            {
                Assert.True(await p.Eof);
            }

            foreach (var p in serverSide)
            {
                var received = p.Received;
                Assert.Equal(Size, received.Length);
                var expected = Pattern(Size);
                byte id = received[0];
                for (int b = 0; b < Size; b += 4096)
                {
                    expected[b] = id;
                }

                Assert.True(expected.AsSpan().SequenceEqual(received), $"connection {id}'s bytes differ from what it sent");
                Assert.Empty(p.Errors);
            }

            Assert.Equal(Enumerable.Range(0, Connections).Select(i => (byte)i), serverSide.Select(p => p.Received[0]).Order());
            Assert.Equal(0, loop.ReceiveBuffersHeld);
            Assert.True(loop.BufferExhaustions > 0, "the ring never ran dry: the test did not reach the ENOBUFS path");
            foreach (var (transport, protocol) in clients)
            {
                transport.Close();
                await protocol.Lost;
            }

            foreach (var p in serverSide)
            {
                await p.Lost;
            }
        });

        Assert.Empty(errors);
        Assert.Equal(0, loop.ReceiveBuffersHeld);
        Assert.Equal(0, loop.OperationsInKernel);
        Assert.Equal(slots, loop.RegisteredOperations);
    }

    /// <summary>
    /// A receive armed and then paused in the same iteration (its cancel queued behind it) may still take
    /// what is there when it reaches the kernel: that is copied aside and the ring's buffer given back, so a
    /// paused connection holds no ring buffer, and it arrives after ResumeReading.
    /// </summary>
    [Fact]
    public void PausedConnection_HoldsNoRingBuffer_AndGetsItAllOnResume()
    {
        using var loop = NewLoop();
        loop.RunUntilComplete(async () =>
        {
            RecordingProtocol? peer = null;
            await using var server = await loop.CreateServerAsync(() => peer = new RecordingProtocol(loop), s_loopback, 0);
            int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port);
            Assert.True(await Eventually(() => peer is { Made.Done: true }));
            transport.PauseReading();
            var data = Pattern(256 * 1024);
            peer!.Transport.Write(data);
            for (int i = 0; i < 20; i++)
            {
                await Tasks.Sleep(0);
            }

            Assert.Equal(0, loop.ReceiveBuffersHeld);
            Assert.Equal(0, client.ReceivedCount);
            transport.ResumeReading();
            Assert.True(await client.WaitBytes(loop, data.Length));
            Assert.Equal(data, client.Received);
            transport.Close();
            await client.Lost;
            await peer.Lost;
        });

        Assert.Equal(0, loop.OperationsInKernel);
    }

    /// <summary>2,000 connections opened and closed one after another: no buffer, operation slot or kernel operation is left.</summary>
    [Fact]
    public void ThousandsOfConnections_OpenedAndClosed_LeaveNoBufferOrOperation()
    {
        using var loop = NewLoop();
        int slots = loop.RegisteredOperations;
        loop.RunUntilComplete(async () =>
        {
            await using var server = await loop.CreateServerAsync(() => new EchoProtocol(), s_loopback, 0);
            int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
            // The server's own: its multishot accept (one slot, one operation in the kernel while it serves).
            int serving = loop.RegisteredOperations;
            int accepting = loop.OperationsInKernel;
            for (int i = 0; i < 2000; i++)
            {
                var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port);
                transport.Write("ping"u8);
                Assert.True(await client.WaitBytes(loop, 4));
                if (i % 2 == 0)
                {
                    transport.Close();
                }
                else
                {
                    transport.Abort();
                }

                await client.Lost;
            }

            Assert.True(await Eventually(() => loop.OperationsInKernel == accepting && loop.RegisteredOperations == serving));
            server.Close();
            Assert.True(await Eventually(() => loop.OperationsInKernel == 0 && loop.RegisteredOperations == slots));
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
