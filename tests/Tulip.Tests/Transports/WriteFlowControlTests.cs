using Tulip;
using Tulip.Testing;

namespace Tulip.Tests.Transports;

/// <summary>
/// WriteFlowControl on its own (the transports' suites check it in place): asyncio's
/// set_write_buffer_limits rules and the pause/resume protocol of _FlowControlMixin.
/// </summary>
public class WriteFlowControlTests
{
    private sealed class Fixture : IDisposable
    {
        public Fixture()
        {
            Loop = new TestEventLoop { FailOnUnhandledErrors = false };
            Protocol = new Tulip.Testing.RecordingProtocol();
            Transport = new MemoryTransport(Loop, Protocol);
            Flow = new WriteFlowControl(Loop, Transport);
        }

        public TestEventLoop Loop { get; }

        public Tulip.Testing.RecordingProtocol Protocol { get; }

        public MemoryTransport Transport { get; }

        public WriteFlowControl Flow { get; }

        public List<string> FlowEvents => Protocol.Events.Where(e => e is "pause" or "resume").ToList();

        public void Dispose() => Loop.Dispose();
    }

    private sealed class ThrowingProtocol : Tulip.Testing.RecordingProtocol
    {
        public override void PauseWriting()
        {
            base.PauseWriting();
            throw new InvalidOperationException("pause failed");
        }

        public override void ResumeWriting()
        {
            base.ResumeWriting();
            throw new InvalidOperationException("resume failed");
        }
    }

    [Fact]
    public void DefaultsAreAsyncios()
    {
        using var f = new Fixture();
        Assert.Equal(64 * 1024, WriteFlowControl.DefaultHighWater);
        Assert.Equal((16 * 1024, 64 * 1024), f.Flow.Limits);
        Assert.False(f.Flow.IsPaused);
    }

    [Theory]
    [InlineData(100, null, 25, 100)]
    [InlineData(null, 10, 10, 40)]
    [InlineData(10, 10, 10, 10)]
    [InlineData(0, null, 0, 0)]
    [InlineData(null, null, 16 * 1024, 64 * 1024)]
    public void SetLimitsFillsTheMissingMarkAsAsyncio(int? high, int? low, int expectedLow, int expectedHigh)
    {
        using var f = new Fixture();
        f.Flow.SetLimits(1, 1, 0);
        f.Flow.SetLimits(high, low, 0);
        Assert.Equal((expectedLow, expectedHigh), f.Flow.Limits);
    }

    [Theory]
    [InlineData(10, 20, "high")]
    [InlineData(-1, null, "high")]
    [InlineData(null, -1, "low")]
    public void BadMarksThrowAndChangeNothing(int? high, int? low, string param)
    {
        using var f = new Fixture();
        f.Flow.SetLimits(100, 50, 0);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => f.Flow.SetLimits(high, low, 0));
        Assert.Equal(param, ex.ParamName);
        Assert.Contains("0 <= low <= high", ex.Message, StringComparison.Ordinal);
        Assert.Equal((50, 100), f.Flow.Limits);
    }

    [Fact]
    public void PausesAboveHighOnceAndResumesAtLowOnce()
    {
        using var f = new Fixture();
        f.Flow.SetLimits(100, 20, 0);

        f.Flow.MaybeResume(0);      // never paused: no resume
        f.Flow.MaybePause(100);     // at the mark: not above it
        Assert.Empty(f.FlowEvents);

        f.Flow.MaybePause(101);
        f.Flow.MaybePause(500);     // already paused
        Assert.True(f.Flow.IsPaused);
        Assert.Equal(["pause"], f.FlowEvents);

        f.Flow.MaybeResume(21);     // above the low mark
        Assert.True(f.Flow.IsPaused);
        f.Flow.MaybeResume(20);
        f.Flow.MaybeResume(0);      // already resumed
        Assert.False(f.Flow.IsPaused);
        Assert.Equal(["pause", "resume"], f.FlowEvents);
        Assert.Empty(f.Loop.UnhandledErrors);
    }

    [Fact]
    public void SetLimitsPausesWhenTheBufferIsAboveTheNewHighMark()
    {
        using var f = new Fixture();
        f.Flow.SetLimits(1000, null, 300);
        Assert.False(f.Flow.IsPaused);
        f.Flow.SetLimits(200, null, 300);
        Assert.True(f.Flow.IsPaused);
        Assert.Equal(["pause"], f.FlowEvents);
    }

    [Fact]
    public void ProtocolExceptionsGoToTheExceptionHandlerAndTheStateStillChanges()
    {
        using var loop = new TestEventLoop { FailOnUnhandledErrors = false };
        var protocol = new ThrowingProtocol();
        var transport = new MemoryTransport(loop, protocol);
        var flow = new WriteFlowControl(loop, transport);

        flow.MaybePause(WriteFlowControl.DefaultHighWater + 1);
        Assert.True(flow.IsPaused);
        flow.MaybeResume(0);
        Assert.False(flow.IsPaused);

        Assert.Collection(loop.UnhandledErrors,
            c =>
            {
                Assert.Equal("protocol.PauseWriting() failed", c.Message);
                Assert.Equal("pause failed", c.Exception!.Message);
                Assert.Same(transport, c.Transport);
                Assert.Same(protocol, c.Protocol);
            },
            c =>
            {
                Assert.Equal("protocol.ResumeWriting() failed", c.Message);
                Assert.Equal("resume failed", c.Exception!.Message);
            });
    }

    [Fact]
    public void CallsTheProtocolTheTransportHasNow()
    {
        using var f = new Fixture();
        var second = new Tulip.Testing.RecordingProtocol();
        f.Flow.MaybePause(WriteFlowControl.DefaultHighWater + 1);
        f.Transport.SetProtocol(second);
        f.Flow.MaybeResume(0);
        Assert.Equal(["pause"], f.FlowEvents);
        Assert.Equal(["resume"], second.Events);
    }

    [Fact]
    public void NullArgumentsAreRefused()
    {
        using var f = new Fixture();
        Assert.Equal("loop", Assert.Throws<ArgumentNullException>(() => new WriteFlowControl(null!, f.Transport)).ParamName);
        Assert.Equal("transport", Assert.Throws<ArgumentNullException>(() => new WriteFlowControl(f.Loop, null!)).ParamName);
    }
}
