using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Tulip.Streams;
using Tulip.Testing;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Streams;

/// <summary>
/// <see cref="DuplexPipeProtocol"/> against Tulip.Testing's <see cref="MemoryTransport"/>, step by step
/// on the virtual-clock loop: what the protocol asks of its transport (pause and resume reading,
/// write EOF, close, abort) at each point, exactly.
/// </summary>
public sealed class DuplexPipeFlowTests
{
    // The user's side of a pipe continues on the thread pool: a test that waits for it bounds the wait
    // generously and never measures it.
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private static (TestEventLoop Loop, MemoryTransport Transport, DuplexPipeProtocol Protocol) Connect(DuplexPipeProtocol protocol)
    {
        var loop = new TestEventLoop();
        var transport = new MemoryTransport(loop, protocol);
        loop.RunUntilIdle();
        return (loop, transport, protocol);
    }

    [Fact]
    public void InputOverItsThreshold_PausesReading_UntilTheReaderConsumesBelowHalf()
    {
        var (loop, transport, protocol) = Connect(new DuplexPipeProtocol(inputPauseThreshold: 1000));
        using var owned = loop;
        transport.DeliverData(new byte[600]);
        loop.RunUntilIdle();
        Assert.Empty(transport.ReadingCalls);
        transport.DeliverData(new byte[600]);   // 1,200 unconsumed: over the threshold
        transport.DeliverData(Pattern(300));    // held back by the transport while paused
        loop.RunUntilIdle();
        Assert.Equal(["pause"], transport.ReadingCalls);

        Assert.True(protocol.Input.TryRead(out var result));
        Assert.Equal(1200, result.Buffer.Length);
        protocol.Input.AdvanceTo(result.Buffer.GetPosition(600)); // 600 left: not below half of 1,000
        loop.RunUntilIdle();
        Assert.Equal(["pause"], transport.ReadingCalls);

        Assert.True(protocol.Input.TryRead(out result));
        Assert.Equal(600, result.Buffer.Length);
        protocol.Input.AdvanceTo(result.Buffer.End);
        loop.RunUntilIdle();
        Assert.Equal(["pause", "resume"], transport.ReadingCalls);
        Assert.True(protocol.Input.TryRead(out result));
        Assert.Equal(Pattern(300), result.Buffer.ToArray());
        protocol.Input.AdvanceTo(result.Buffer.End);
    }

    [Fact]
    public void OutputFlush_WaitsWhileTheTransportIsPaused()
    {
        var (loop, transport, protocol) = Connect(new DuplexPipeProtocol(outputPauseThreshold: 100));
        using var owned = loop;
        transport.SetWriteBufferLimits(high: 1000);
        transport.PeerAcceptsWrites = false; // a peer that does not read
        var first = protocol.Output.WriteAsync(Pattern(2000)).AsTask();
        loop.RunUntilIdle();
        Assert.True(first.Wait(s_wait));     // the loop took the 2,000 bytes: the transport is over its mark
        Assert.False(first.Result.IsCompleted);
        Assert.True(transport.IsWritingPaused);
        Assert.Equal(2000, transport.GetWriteBufferSize());

        var second = protocol.Output.WriteAsync(Pattern(500)).AsTask();
        loop.RunUntilIdle();
        Assert.Equal(2000, transport.GetWriteBufferSize()); // nothing more taken while paused
        Assert.False(second.IsCompleted);                   // only the loop can complete it, and it is not running

        transport.PeerAcceptsWrites = true;                 // the peer reads everything: ResumeWriting
        loop.RunUntilIdle();
        Assert.True(second.Wait(s_wait));
        Assert.Equal([.. Pattern(2000), .. Pattern(500)], transport.TakeWritten());
    }

    [Fact]
    public void CompletingOutput_WritesEof_ThenClosesOnceThePeerEndsToo()
    {
        var (loop, transport, protocol) = Connect(new DuplexPipeProtocol());
        using var owned = loop;
        protocol.Output.Write("bye"u8);
        protocol.Output.Complete();
        loop.RunUntilIdle();
        Assert.Equal("bye", transport.TakeWrittenText());
        Assert.True(transport.EofWritten);
        Assert.False(transport.IsClosing);   // half-closed: the peer may still send

        transport.DeliverData("late reply");
        transport.DeliverEof();
        loop.RunUntilIdle();
        Assert.True(protocol.Input.TryRead(out var result));
        Assert.Equal("late reply", Encoding.UTF8.GetString(result.Buffer));
        Assert.True(result.IsCompleted);
        protocol.Input.AdvanceTo(result.Buffer.End);
        Assert.True(transport.IsClosed);     // both directions ended
        Assert.Null(transport.CloseException);
        Assert.True(protocol.Closed.IsCompletedSuccessfully);
    }

    [Fact]
    public void PeerEof_CompletesInput_AndOutputStillWrites()
    {
        var (loop, transport, protocol) = Connect(new DuplexPipeProtocol());
        using var owned = loop;
        transport.DeliverData("request");
        transport.DeliverEof();
        loop.RunUntilIdle();
        Assert.False(transport.IsClosing);   // EofReceived kept the write side open
        Assert.True(protocol.Input.TryRead(out var result));
        Assert.True(result.IsCompleted);
        Assert.Equal("request", Encoding.UTF8.GetString(result.Buffer));
        protocol.Input.AdvanceTo(result.Buffer.End);

        protocol.Output.Write("response"u8);
        protocol.Output.Complete();
        loop.RunUntilIdle();
        Assert.Equal("response", transport.TakeWrittenText());
        Assert.False(transport.EofWritten);  // EOF came in already: both ended, so Close, not WriteEof
        Assert.True(transport.IsClosed);
    }

    [Fact]
    public void TransportThatCannotWriteEof_CompletingOutputCloses()
    {
        var protocol = new DuplexPipeProtocol();
        using var loop = new TestEventLoop();
        var transport = new MemoryTransport(loop, protocol) { CanWriteEof = false };
        loop.RunUntilIdle();
        protocol.Output.Write("last"u8);
        protocol.Output.Complete();
        loop.RunUntilIdle();
        Assert.Equal("last", transport.TakeWrittenText());
        Assert.False(transport.EofWritten);
        Assert.True(transport.IsClosed);
    }

    [Fact]
    public void ConnectionLostWithAnError_InputAndOutputThrowIt()
    {
        var (loop, transport, protocol) = Connect(new DuplexPipeProtocol());
        using var owned = loop;
        var error = new IOException("the link broke");
        transport.DeliverConnectionLost(error);
        loop.RunUntilIdle();
        Assert.True(protocol.Closed.IsCompletedSuccessfully);
        Assert.Same(error, Assert.Throws<IOException>(() => protocol.Input.TryRead(out _)));
        // Thrown by the write itself or by the task it returns, as the pipe sees fit: either way, this error.
        var thrown = Record.Exception(() => protocol.Output.WriteAsync(new byte[10]).AsTask().GetAwaiter().GetResult());
        Assert.Same(error, thrown);
    }

    [Fact]
    public void CleanConnectionLost_InputEnds_AndFlushSaysCompleted()
    {
        var (loop, transport, protocol) = Connect(new DuplexPipeProtocol());
        using var owned = loop;
        transport.DeliverConnectionLost();
        loop.RunUntilIdle();
        Assert.True(protocol.Input.TryRead(out var result));
        Assert.True(result.IsCompleted);
        protocol.Input.AdvanceTo(result.Buffer.End);
        var flush = protocol.Output.WriteAsync(new byte[10]).AsTask();
        Assert.True(flush.Wait(s_wait));
        Assert.True(flush.Result.IsCompleted);
    }

    [Fact]
    public void InputCompletedEarly_WhatArrivesLaterIsDropped_AndReadingGoesOn()
    {
        var (loop, transport, protocol) = Connect(new DuplexPipeProtocol(inputPauseThreshold: 100));
        using var owned = loop;
        protocol.Input.Complete();
        transport.DeliverData(new byte[1000]);
        transport.DeliverData(new byte[1000]);
        loop.RunUntilIdle();
        Assert.True(transport.IsReading);    // it may have paused once, before it saw the reader gone; never left paused
        transport.DeliverEof();
        loop.RunUntilIdle();
        protocol.Output.Complete();
        loop.RunUntilIdle();
        Assert.True(transport.IsClosed);
    }

    [Fact]
    public void OutputCompletedWithAnError_AbortsTheTransport()
    {
        var (loop, transport, protocol) = Connect(new DuplexPipeProtocol());
        using var owned = loop;
        protocol.Output.Complete(new InvalidOperationException("give up"));
        loop.RunUntilIdle();
        Assert.True(transport.WasAborted);
        Assert.True(transport.IsClosed);
    }

    [Fact]
    public void Thresholds_MustBePositive()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DuplexPipeProtocol(inputPauseThreshold: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DuplexPipeProtocol(outputPauseThreshold: -1));
    }

    [Fact]
    public void ATransportThatIsNotAStreamTransport_IsRefusedClearly()
    {
        using var loop = new TestEventLoop();
        var protocol = new DuplexPipeProtocol();
        var ex = Assert.Throws<InvalidOperationException>(() => protocol.ConnectionMade(new NotAStreamTransport()));
        Assert.Contains("ITransport", ex.Message);
    }

    private sealed class NotAStreamTransport : IBaseTransport
    {
        public bool IsClosing => false;

        public object? GetExtraInfo(string name, object? defaultValue = null) => defaultValue;

        public void Close()
        {
        }

        public void SetProtocol(IBaseProtocol protocol)
        {
        }

        public IBaseProtocol GetProtocol() => throw new NotSupportedException();
    }

    [Fact]
    public void OneProtocolPerConnection()
    {
        var (loop, transport, protocol) = Connect(new DuplexPipeProtocol());
        using var owned = loop;
        var ex = Assert.Throws<InvalidOperationException>(() => protocol.ConnectionMade(transport));
        Assert.Contains("one connection", ex.Message);
        Assert.Throws<InvalidOperationException>(() => new DuplexPipeProtocol().Transport);
    }
}
