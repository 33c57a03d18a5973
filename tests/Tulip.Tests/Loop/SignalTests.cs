using System.Runtime.InteropServices;
using Tulip;

namespace Tulip.Tests.Loop;

/// <summary>Signals go to the whole process: these tests run one at a time.</summary>
[Collection("Signals")]
public class SignalTests
{
    private static readonly PosixSignal SigUsr1 = (PosixSignal)10;
    private static readonly PosixSignal SigUsr2 = (PosixSignal)12;

    [Theory]
    [InlineData("epoll")]
    [InlineData("poll")]
    public void SignalSentWithKillReachesTheHandlerOnTheLoopThread(string selector)
    {
        using var loop = new SelectorEventLoop(selector);
        int handlerThread = 0;
        int loopThread = 0;
        loop.AddSignalHandler(SigUsr1, () =>
        {
            handlerThread = Environment.CurrentManagedThreadId;
            loop.Stop();
        });
        loop.CallSoon(() =>
        {
            loopThread = Environment.CurrentManagedThreadId;
            Assert.Equal(0, Interop.Kill(Interop.GetPid(), 10));
        });
        var watchdog = loop.CallLater(30, () => loop.Stop());
        loop.RunForever();
        Assert.NotEqual(0, handlerThread);
        Assert.Equal(loopThread, handlerThread);
        Assert.True(loop.RemoveSignalHandler(SigUsr1));
        Assert.False(loop.RemoveSignalHandler(SigUsr1));
    }

    [Fact]
    public void BurstOfAThousandSignalsRunsTheHandlerAndTheProcessSurvives()
    {
        using var loop = new SelectorEventLoop();
        int runs = 0;
        loop.AddSignalHandler(SigUsr2, () => runs++);
        loop.RunUntilComplete(async () =>
        {
            for (int i = 0; i < 1000; i++)
            {
                Assert.Equal(0, Interop.Kill(Interop.GetPid(), 12));
            }

            for (int i = 0; i < 3000 && runs == 0; i++)
            {
                await Tasks.Sleep(0.01);
            }
        });
        Assert.True(runs >= 1, "the handler never ran");
        Assert.True(runs <= 1000);
        loop.RemoveSignalHandler(SigUsr2);
    }

    [Theory]
    [InlineData(9)]
    [InlineData(19)]
    [InlineData(0)]
    [InlineData(200)]
    public void SignalsThatCannotBeHandledAreRefused(int signal)
    {
        using var loop = new SelectorEventLoop();
        var ex = Assert.Throws<ArgumentException>(() => loop.AddSignalHandler((PosixSignal)signal, () => { }));
        Assert.Contains("cannot be handled", ex.Message);
    }

    [Fact]
    public void SettingAgainReplacesTheCallback()
    {
        using var loop = new SelectorEventLoop();
        string? who = null;
        loop.AddSignalHandler(SigUsr1, () => who = "first");
        loop.AddSignalHandler(SigUsr1, () => { who = "second"; loop.Stop(); });
        loop.CallSoon(() => Interop.Kill(Interop.GetPid(), 10));
        var watchdog = loop.CallLater(30, () => loop.Stop());
        loop.RunForever();
        Assert.Equal("second", who);
    }
}
