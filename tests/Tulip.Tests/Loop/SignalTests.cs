using System.Runtime.InteropServices;
using Tulip;

namespace Tulip.Tests.Loop;

/// <summary>
/// Signal handlers on each loop kind. Signals go to the whole process: each binding is in the
/// "Signals" collection, so these tests run one at a time.
/// </summary>
public abstract class SignalTests : LoopSuite
{
    private static readonly PosixSignal SigUsr1 = (PosixSignal)10;
    private static readonly PosixSignal SigUsr2 = (PosixSignal)12;

    protected SignalTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public void SignalSentWithKillReachesTheHandlerOnTheLoopThread()
    {
        using var loop = Kind.Create();
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
        using var loop = Kind.Create();
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
        using var loop = Kind.Create();
        var ex = Assert.Throws<ArgumentException>(() => loop.AddSignalHandler((PosixSignal)signal, () => { }));
        Assert.Contains("cannot be handled", ex.Message);
    }

    [Fact]
    public void SettingAgainReplacesTheCallback()
    {
        using var loop = Kind.Create();
        string? who = null;
        loop.AddSignalHandler(SigUsr1, () => who = "first");
        loop.AddSignalHandler(SigUsr1, () => { who = "second"; loop.Stop(); });
        loop.CallSoon(() => Interop.Kill(Interop.GetPid(), 10));
        var watchdog = loop.CallLater(30, () => loop.Stop());
        loop.RunForever();
        Assert.Equal("second", who);
    }
}

[Collection("Signals")]
public sealed class EpollSignalTests() : SignalTests(LoopKinds.Epoll);

[Collection("Signals")]
public sealed class PollSignalTests() : SignalTests(LoopKinds.Poll);

[Collection("Signals")]
public sealed class ProactorSignalTests() : SignalTests(LoopKinds.Proactor);
