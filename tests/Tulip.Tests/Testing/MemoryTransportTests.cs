using System.Net.Sockets;
using System.Text;
using Tulip;
using Tulip.Testing;

namespace Tulip.Tests.Testing;

public class MemoryTransportTests
{
    private static (TestEventLoop Loop, MemoryTransport Transport, RecordingProtocol Protocol) Connect()
    {
        var loop = new TestEventLoop();
        var protocol = new RecordingProtocol();
        var transport = new MemoryTransport(loop, protocol, new Dictionary<string, object?> { ["peername"] = "peer:1" });
        loop.RunUntilIdle();
        return (loop, transport, protocol);
    }

    [Fact]
    public void ConnectionMadeComesThroughTheLoop()
    {
        using var loop = new TestEventLoop();
        var protocol = new RecordingProtocol();
        var transport = new MemoryTransport(loop, protocol);
        Assert.Empty(protocol.Events);
        loop.RunUntilIdle();
        Assert.Equal(["made"], protocol.Events);
        Assert.Same(transport, protocol.Transport);
        Assert.Same(protocol, transport.GetProtocol());
    }

    [Fact]
    public void DeliversEachChunkAsOneCallInOrderThenEofThenClose()
    {
        var (loop, transport, protocol) = Connect();
        using var _ = loop;
        transport.DeliverData("hel");
        transport.DeliverData("lo");
        transport.DeliverEof();
        Assert.Equal(["made"], protocol.Events);
        loop.RunUntilIdle();
        Assert.Equal(["made", "data", "data", "eof", "lost"], protocol.Events);
        Assert.Equal("hello", protocol.ReceivedText);
        Assert.True(transport.IsClosed);
        Assert.Null(protocol.LostException);
    }

    [Fact]
    public void EofKeptOpenLetsTheProtocolWriteOn()
    {
        var (loop, transport, protocol) = Connect();
        using var _ = loop;
        protocol.KeepOpenOnEof = true;
        transport.DeliverEof();
        loop.RunUntilIdle();
        Assert.False(transport.IsClosing);
        transport.Write("bye"u8);
        transport.Close();
        loop.RunUntilIdle();
        Assert.Equal("bye", transport.TakeWrittenText());
        Assert.True(protocol.IsConnectionLost);
    }

    [Fact]
    public void RecordsWritesAndTakeForgetsThem()
    {
        var (loop, transport, _) = Connect();
        using var __ = loop;
        transport.Write("ab"u8);
        transport.WriteLines([Encoding.ASCII.GetBytes("cd"), Encoding.ASCII.GetBytes("ef")]);
        Assert.Equal("abcdef", transport.WrittenText);
        Assert.Equal("abc", Encoding.ASCII.GetString(transport.TakeWritten(3)));
        Assert.Equal("def", transport.TakeWrittenText());
        Assert.Empty(transport.Written);
        Assert.Equal(0, transport.GetWriteBufferSize());
    }

    [Fact]
    public void PausedReadingHoldsDataBack()
    {
        var (loop, transport, protocol) = Connect();
        using var _ = loop;
        transport.PauseReading();
        Assert.False(transport.IsReading);
        transport.DeliverData("x");
        loop.RunUntilIdle();
        Assert.Equal("", protocol.ReceivedText);
        transport.ResumeReading();
        loop.RunUntilIdle();
        Assert.Equal("x", protocol.ReceivedText);
        Assert.Equal(["pause", "resume"], transport.ReadingCalls);
    }

    [Fact]
    public void SlowPeerDrivesFlowControlAtTheMarks()
    {
        var (loop, transport, protocol) = Connect();
        using var _ = loop;
        Assert.Equal((16 * 1024, 64 * 1024), transport.GetWriteBufferLimits());
        transport.SetWriteBufferLimits(high: 100);
        Assert.Equal((25, 100), transport.GetWriteBufferLimits());
        transport.PeerAcceptsWrites = false;

        transport.Write(new byte[100]);
        Assert.False(protocol.IsWritingPaused);
        transport.Write(new byte[1]);
        Assert.True(protocol.IsWritingPaused);
        Assert.Equal(101, transport.GetWriteBufferSize());
        Assert.Empty(transport.Written);

        transport.FlushWrites(70);
        Assert.True(protocol.IsWritingPaused); // 31 > low
        transport.FlushWrites(6);
        Assert.False(protocol.IsWritingPaused); // 25 <= low
        Assert.Equal(76, transport.Written.Length);
        Assert.Equal(["made", "pause", "resume"], protocol.Events);
    }

    [Fact]
    public void LoweringTheHighMarkPausesAtOnce()
    {
        var (loop, transport, protocol) = Connect();
        using var _ = loop;
        transport.PeerAcceptsWrites = false;
        transport.Write(new byte[50]);
        transport.SetWriteBufferLimits(high: 10, low: 5);
        Assert.True(protocol.IsWritingPaused);
        Assert.Throws<ArgumentOutOfRangeException>(() => transport.SetWriteBufferLimits(high: 1, low: 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => transport.SetWriteBufferLimits(low: -1));
    }

    [Fact]
    public void CloseFlushesFirst()
    {
        var (loop, transport, protocol) = Connect();
        using var _ = loop;
        transport.PeerAcceptsWrites = false;
        transport.Write("pending"u8);
        transport.Close();
        Assert.True(transport.IsClosing);
        loop.RunUntilIdle();
        Assert.False(protocol.IsConnectionLost);
        transport.FlushWrites();
        loop.RunUntilIdle();
        Assert.True(protocol.IsConnectionLost);
        Assert.Equal("pending", transport.TakeWrittenText());
        Assert.False(transport.WasAborted);
    }

    [Fact]
    public void AbortDropsTheBuffer()
    {
        var (loop, transport, protocol) = Connect();
        using var _ = loop;
        transport.PeerAcceptsWrites = false;
        transport.Write("pending"u8);
        transport.Abort();
        loop.RunUntilIdle();
        Assert.True(protocol.IsConnectionLost);
        Assert.True(transport.WasAborted);
        Assert.Equal(0, transport.GetWriteBufferSize());
        transport.PeerAcceptsWrites = true;
        Assert.Empty(transport.Written);
    }

    [Fact]
    public void WriteAfterWriteEofThrowsAndWriteAfterCloseIsIgnored()
    {
        var (loop, transport, _) = Connect();
        using var __ = loop;
        transport.WriteEof();
        Assert.True(transport.EofWritten);
        Assert.Throws<InvalidOperationException>(() => transport.Write("x"u8));
        var (loop2, t2, _) = Connect();
        using var ___ = loop2;
        t2.Close();
        t2.Write("x"u8);
        Assert.Empty(t2.Written);
        t2.CanWriteEof = false;
        Assert.Throws<NotSupportedException>(t2.WriteEof);
    }

    [Fact]
    public void ConnectionLossCarriesTheException()
    {
        var (loop, transport, protocol) = Connect();
        using var _ = loop;
        transport.DeliverConnectionLost(new SocketException((int)SocketError.ConnectionReset));
        loop.RunUntilIdle();
        Assert.IsType<SocketException>(protocol.LostException);
        Assert.Equal(["made", "lost"], protocol.Events);
    }

    [Fact]
    public void AProtocolThatThrowsLosesTheConnectionAndFailsTheTest()
    {
        using var loop = new TestEventLoop();
        var protocol = new ThrowingProtocol();
        var transport = new MemoryTransport(loop, protocol);
        transport.DeliverData("x");
        var ex = Assert.Throws<UnhandledLoopErrorsException>(loop.RunUntilIdle);
        Assert.Contains("DataReceived", ex.Message);
        loop.RunUntilIdle();
        Assert.IsType<FormatException>(protocol.LostException);
        Assert.True(transport.WasAborted);
    }

    [Fact]
    public void ExtraInfoAnswersWhatItWasGiven()
    {
        var (loop, transport, _) = Connect();
        using var __ = loop;
        Assert.Equal("peer:1", transport.GetExtraInfo("peername"));
        Assert.Equal("d", transport.GetExtraInfo("nope", "d"));
        transport.SetExtraInfo("sockname", "me:2");
        Assert.Equal("me:2", transport.GetExtraInfo("sockname"));
    }

    [Fact]
    public void BufferedProtocolGetsTheDataInItsOwnBuffers()
    {
        using var loop = new TestEventLoop();
        var protocol = new SmallBuffers();
        var transport = new MemoryTransport(loop, protocol);
        transport.DeliverData("hello world");
        transport.DeliverEof();
        loop.RunUntilIdle();
        Assert.Equal("hello world", protocol.Text.ToString());
        Assert.Equal(3, protocol.Updates); // 4 + 4 + 3
        Assert.True(transport.IsClosed);
    }

    private sealed class ThrowingProtocol : RecordingProtocol
    {
        public override void DataReceived(ReadOnlySpan<byte> data) => throw new FormatException("bad frame");
    }

    private sealed class SmallBuffers : IBufferedProtocol
    {
        private readonly byte[] _buffer = new byte[4];
        public StringBuilder Text { get; } = new();
        public int Updates { get; private set; }
        public void ConnectionMade(IBaseTransport transport) { }
        public Memory<byte> GetBuffer(int sizeHint) => _buffer;
        public void BufferUpdated(int bytesWritten)
        {
            Updates++;
            Text.Append(Encoding.ASCII.GetString(_buffer, 0, bytesWritten));
        }

        public bool EofReceived() => false;
        public void ConnectionLost(Exception? exception) { }
        public void PauseWriting() { }
        public void ResumeWriting() { }
    }
}
