using Tulip;
using Tulip.Testing;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// Tulip.Testing's MemoryTransport disposes as a socket transport does, on every loop: a close that
/// still flushes, completed once ConnectionLost has run; a peer that takes nothing holds it until the
/// flush, the waiting task's cancellation ends only the wait, and an Abort ends the connection.
/// </summary>
public abstract partial class TransportDisposeAsyncTests
{
    [Fact]
    public void AMemoryTransport_DisposeWaitsForTheFlush_ThenCompletesAfterConnectionLost()
    {
        Run(Kind, async loop =>
        {
            var protocol = new RecordingProtocol(loop);
            var transport = new MemoryTransport(loop, protocol) { PeerAcceptsWrites = false };
            await protocol.Made;
            transport.Write("held"u8);
            var disposer = await StartDisposing(loop, transport);
            await Tasks.Sleep(0);
            Assert.False(disposer.Done, "the dispose ended before the buffer was flushed");
            Assert.True(transport.IsClosing);
            transport.FlushWrites();
            await disposer;
            Assert.True(transport.IsClosed);
            Assert.True(protocol.Lost.Done);
            Assert.Null(protocol.Lost.Result());
            Assert.Equal("held", transport.WrittenText);

            await transport.DisposeAsync(); // again: nothing to wait for
        });
    }

    [Fact]
    public void AMemoryTransport_DisposeCancelledWithTheTask_EndsOnlyTheWait_AndAbortEndsIt()
    {
        Run(Kind, async loop =>
        {
            var protocol = new RecordingProtocol(loop);
            var transport = new MemoryTransport(loop, protocol) { PeerAcceptsWrites = false };
            await protocol.Made;
            transport.Write("held"u8);
            var disposer = await StartDisposing(loop, transport);
            disposer.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await disposer);
            Assert.False(protocol.Lost.Done, "cancelling the wait does not end the connection");
            transport.Abort();
            await protocol.Lost;
            Assert.True(transport.WasAborted);

            var offLoop = await Task.Run(async () => await Record.ExceptionAsync(async () => await transport.DisposeAsync()));
            Assert.IsType<InvalidOperationException>(offLoop);
        });
    }
}
