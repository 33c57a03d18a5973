using System.Text;
using LineProtocolTesting;
using Tulip.Testing;

namespace LineProtocolTesting.Tests;

/// <summary>
/// How to test a line-based protocol with Tulip.Testing: no sockets, no sleeps. The protocol
/// talks to a RecordingProtocol client through a ConnectedPair; one-byte and random chunks prove
/// the parser does not assume a line arrives in one DataReceived.
/// </summary>
public class LineProtocolTests
{
    public static TheoryData<string> Chunkings => new() { "whole", "one-byte", "random-1", "random-2" };

    private static Chunking ChunkingNamed(string name) => name switch
    {
        "whole" => Chunking.Whole,
        "one-byte" => Chunking.OneByte,
        "random-1" => Chunking.Random(seed: 1, minSize: 1, maxSize: 5),
        _ => Chunking.Random(seed: 2, minSize: 1, maxSize: 5),
    };

    [Theory]
    [MemberData(nameof(Chunkings))]
    public void AnswersPingsAndSaysByeHoweverTheStreamIsCut(string chunking)
    {
        using var loop = new TestEventLoop();
        var server = new LineProtocol();
        var client = new RecordingProtocol();
        var pair = new ConnectedPair(loop, client, server) { Chunking = ChunkingNamed(chunking) };
        loop.RunUntilIdle();                      // ConnectionMade on both sides

        client.Transport!.Write(Encoding.UTF8.GetBytes("PING\r\nhello\nPING\nQUIT\n"));
        loop.RunUntilIdle();                      // the pair pumps until nobody has anything to say

        Assert.Equal(["PING", "hello", "PING", "QUIT"], server.Lines);
        Assert.Equal("PONG\nPONG\nBYE\n", client.ReceivedText);
        Assert.True(pair.ServerTransport.IsClosed);
        Assert.Equal("lost", client.Events[^1]);  // the server's close reached the client as EOF
    }

    [Fact]
    public void AHalfLineWaitsForItsNewline()
    {
        using var loop = new TestEventLoop();
        var server = new LineProtocol();
        var transport = new MemoryTransport(loop, server);  // the test plays the peer
        transport.DeliverData("PI");
        loop.RunUntilIdle();
        Assert.Empty(server.Lines);
        Assert.Empty(transport.Written);

        transport.DeliverData("NG\n");
        loop.RunUntilIdle();
        Assert.Equal("PONG\n", transport.TakeWrittenText());
    }

    [Fact]
    public void ALostConnectionMidLineLeavesNoHalfLine()
    {
        using var loop = new TestEventLoop();
        var server = new LineProtocol();
        var client = new RecordingProtocol();
        var pair = new ConnectedPair(loop, client, server) { Chunking = Chunking.OneByte };
        pair.ResetAt(PairSide.Client, 7);         // the connection breaks after "PING\nPI"
        loop.RunUntilIdle();
        client.Transport!.Write("PING\nPING\n"u8);
        loop.RunUntilIdle();
        Assert.Equal(["PING"], server.Lines);
        Assert.NotNull(client.LostException);
    }
}
