using Tulip;
using static Tulip.Tests.Subprocess.SubprocessTestUtil;

namespace Tulip.Tests.Subprocess;

/// <summary>
/// The subprocess transport's DisposeAsync, on every loop and implementation: asyncio's close (the
/// pipes closed, a running child killed), and a dispose that completes once the child is reaped and
/// ConnectionLost has run.
/// </summary>
public abstract partial class SubprocessTransportContractTests
{
    [Fact]
    public void DisposeAsync_KillsARunningChild_AndCompletesOnceItIsReapedAndConnectionLostRan()
    {
        Run(Kind, async loop =>
        {
            var (transport, recorder) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"]);
            Assert.Null(transport.ReturnCode);
            await using (transport)
            {
            }

            Assert.True(recorder.Lost.Done, "DisposeAsync returned before ConnectionLost ran");
            Assert.True(recorder.Exited.Done);
            Assert.Equal(KilledBy(9), transport.ReturnCode);
            Assert.True(IsReaped(transport.Pid), $"child {transport.Pid} is not reaped");
            AssertClean(recorder);

            // Again, once it is over: nothing to wait for.
            await transport.DisposeAsync();
        });
    }

    [Fact]
    public void DisposeAsync_OfAFinishedChild_KeepsItsReturnCode()
    {
        Run(Kind, async loop =>
        {
            var (transport, recorder) = await loop.SubprocessShellAsync(() => new SubprocessRecorder(loop), "exit 7",
                new SubprocessOptions { StandardOutput = SubprocessStdio.DevNull, StandardError = SubprocessStdio.DevNull });
            await recorder.Exited;
            await transport.DisposeAsync();
            Assert.True(recorder.Lost.Done);
            Assert.Equal(7, transport.ReturnCode);
            Assert.Equal(0, SignalsSentTo(transport));
            AssertClean(recorder);
        });
    }

    [Fact]
    public void DisposeAsync_FromAnotherThread_IsRefused_AndKillsNothing()
    {
        Run(Kind, async loop =>
        {
            var (transport, recorder) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"]);
            var offLoop = await Task.Run(async () => await Record.ExceptionAsync(async () => await transport.DisposeAsync()));
            Assert.IsType<InvalidOperationException>(offLoop);
            Assert.False(transport.IsClosing);
            Assert.Null(transport.ReturnCode);
            await transport.DisposeAsync();
            Assert.True(recorder.Lost.Done);
        });
    }
}
