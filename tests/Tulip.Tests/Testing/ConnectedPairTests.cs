using System.Net.Sockets;
using System.Text;
using Tulip;
using Tulip.Testing;

namespace Tulip.Tests.Testing;

public class ConnectedPairTests
{
    /// <summary>Echoes what it gets, upper-cased; closes on EOF.</summary>
    private sealed class UpperEcho : RecordingProtocol
    {
        public override void DataReceived(ReadOnlySpan<byte> data)
        {
            base.DataReceived(data);
            Transport!.Write(Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(data).ToUpperInvariant()));
        }
    }

    [Fact]
    public void AConversationRunsToTheEnd()
    {
        using var loop = new TestEventLoop();
        var client = new RecordingProtocol();
        var server = new UpperEcho();
        var pair = new ConnectedPair(loop, client, server);
        loop.RunUntilIdle();
        Assert.Equal(["made"], server.Events);
        Assert.Equal(["made"], client.Events);

        client.Transport!.Write("hello"u8);
        loop.RunUntilIdle();
        Assert.Equal("HELLO", client.ReceivedText);

        client.Transport.Close();
        loop.RunUntilIdle();
        Assert.Equal(["made", "data", "eof", "lost"], server.Events);
        Assert.Equal(["made", "data", "lost"], client.Events);
        Assert.Equal("server", pair.ClientTransport.GetExtraInfo("peername"));
        Assert.Equal("client", pair.ServerTransport.GetExtraInfo("peername"));
    }

    [Fact]
    public void OneByteChunksCutTheStreamIntoSingleBytes()
    {
        using var loop = new TestEventLoop();
        var client = new RecordingProtocol();
        var server = new RecordingProtocol();
        var pair = new ConnectedPair(loop, client, server) { Chunking = Chunking.OneByte };
        loop.RunUntilIdle();
        client.Transport!.Write("abcd"u8);
        loop.RunUntilIdle();
        Assert.Equal(4, server.Chunks.Count);
        Assert.All(server.Chunks, c => Assert.Single(c));
        Assert.Equal("abcd", server.ReceivedText);
        Assert.Equal(4, pair.BytesSent(PairSide.Client));
    }

    [Fact]
    public void RandomChunksAreReproducibleFromTheSeed()
    {
        static int[] Sizes(int seed)
        {
            using var loop = new TestEventLoop();
            var client = new RecordingProtocol();
            var server = new RecordingProtocol();
            _ = new ConnectedPair(loop, client, server) { Chunking = Chunking.Random(seed, 1, 7) };
            loop.RunUntilIdle();
            client.Transport!.Write(new byte[200]);
            loop.RunUntilIdle();
            Assert.Equal(200, server.Received.Length);
            return server.Chunks.Select(c => c.Length).ToArray();
        }

        var a = Sizes(42);
        Assert.Equal(a, Sizes(42));
        Assert.NotEqual(a, Sizes(7));
        Assert.All(a, n => Assert.InRange(n, 1, 7));
    }

    [Fact]
    public void ManualPumpingMovesOneChunkAtATime()
    {
        using var loop = new TestEventLoop();
        var client = new RecordingProtocol();
        var server = new RecordingProtocol();
        var pair = new ConnectedPair(loop, client, server) { AutoPump = false, Chunking = Chunking.Fixed(2) };
        loop.RunUntilIdle();
        client.Transport!.Write("abcde"u8);
        loop.RunUntilIdle();
        Assert.Equal("", server.ReceivedText);

        Assert.True(pair.PumpStep());
        loop.RunUntilIdle();
        Assert.Equal("ab", server.ReceivedText);
        Assert.Equal(3, pair.Pump());
        loop.RunUntilIdle();
        Assert.Equal("abcde", server.ReceivedText);
        Assert.False(pair.PumpStep());
    }

    [Fact]
    public void ResetAtByteNDeliversNBytesThenBreaksBothSides()
    {
        using var loop = new TestEventLoop();
        var client = new RecordingProtocol();
        var server = new RecordingProtocol();
        var pair = new ConnectedPair(loop, client, server) { Chunking = Chunking.Fixed(4) };
        pair.ResetAt(PairSide.Client, 6);
        loop.RunUntilIdle();
        client.Transport!.Write("0123456789"u8);
        loop.RunUntilIdle();
        Assert.Equal("012345", server.ReceivedText);
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(server.LostException).SocketErrorCode);
        Assert.IsType<SocketException>(client.LostException);
    }

    [Fact]
    public void AbortResetsThePeer()
    {
        using var loop = new TestEventLoop();
        var client = new RecordingProtocol();
        var server = new RecordingProtocol();
        _ = new ConnectedPair(loop, client, server);
        loop.RunUntilIdle();
        client.Transport!.Abort();
        loop.RunUntilIdle();
        Assert.Null(client.LostException);
        Assert.IsType<SocketException>(server.LostException);
    }

    [Fact]
    public void HalfCloseKeepsTheOtherDirection()
    {
        using var loop = new TestEventLoop();
        var client = new RecordingProtocol();
        var server = new RecordingProtocol { KeepOpenOnEof = true };
        var pair = new ConnectedPair(loop, client, server);
        loop.RunUntilIdle();
        client.Transport!.Write("request"u8);
        pair.HalfClose(PairSide.Client);
        loop.RunUntilIdle();
        Assert.Equal("request", server.ReceivedText);
        Assert.True(server.GotEof);
        server.Transport!.Write("response"u8);
        loop.RunUntilIdle();
        Assert.Equal("response", client.ReceivedText);
        Assert.False(client.IsConnectionLost);
    }

    [Fact]
    public void WriteEofIsAFinThePeerSees()
    {
        using var loop = new TestEventLoop();
        var client = new RecordingProtocol();
        var server = new UpperEcho { KeepOpenOnEof = true };
        _ = new ConnectedPair(loop, client, server);
        loop.RunUntilIdle();
        client.Transport!.Write("x"u8);
        client.Transport.WriteEof();
        loop.RunUntilIdle();
        Assert.True(server.GotEof);
        Assert.Equal("X", client.ReceivedText);
    }

    [Fact]
    public void DelayedDeliveryArrivesWhenTheClockSaysSo()
    {
        using var loop = new TestEventLoop();
        var client = new RecordingProtocol();
        var server = new RecordingProtocol();
        _ = new ConnectedPair(loop, client, server) { DeliveryDelay = 0.25 };
        loop.RunUntilIdle();
        client.Transport!.Write("late"u8);
        loop.RunUntilIdle();
        Assert.Equal("", server.ReceivedText);
        loop.Advance(0.2);
        Assert.Equal("", server.ReceivedText);
        loop.Advance(0.05);
        Assert.Equal("late", server.ReceivedText);
    }

    [Fact]
    public void SlowPeerBacksUpIntoTheSendersBuffer()
    {
        using var loop = new TestEventLoop();
        var client = new RecordingProtocol();
        var server = new RecordingProtocol();
        var pair = new ConnectedPair(loop, client, server);
        loop.RunUntilIdle();
        pair.ClientTransport.PeerAcceptsWrites = false;
        pair.ClientTransport.SetWriteBufferLimits(high: 8);
        client.Transport!.Write(new byte[9]);
        Assert.True(client.IsWritingPaused);
        loop.RunUntilIdle();
        Assert.Empty(server.Received);
        pair.ClientTransport.PeerAcceptsWrites = true;
        loop.RunUntilIdle();
        Assert.False(client.IsWritingPaused);
        Assert.Equal(9, server.Received.Length);
    }
}
