using Tulip;
using static Tulip.Tests.Combinators.LoopRunner;

namespace Tulip.Tests.Combinators;

/// <summary>
/// The TimeSpan overloads beside the PEP's seconds (issue 15), on the virtual clock: each means the same
/// number of seconds, Timeout.InfiniteTimeSpan means "no deadline" for timeouts and is refused, with a
/// message that says so, for timers and sleeps.
/// </summary>
public class TimeSpanOverloadTests
{
    [Fact]
    public void CallLater_WithATimeSpan_FiresAtThatTime_ThroughTheClassAndTheInterface() => Run(async () =>
    {
        var loop = (BaseEventLoop)EventLoop.GetRunningLoop();
        double start = loop.Time();
        var viaClass = loop.CreateFuture<double>();
        var viaInterface = loop.CreateFuture<double>();
        loop.CallLater(TimeSpan.FromSeconds(5), () => viaClass.SetResult(loop.Time() - start));
        ((IEventLoop)loop).CallLater(TimeSpan.FromMilliseconds(2500), f => f.SetResult(loop.Time() - start), viaInterface);
        Assert.Equal(2.5, await viaInterface, 6);
        Assert.Equal(5, await viaClass, 6);
    });

    [Fact]
    public void TimersAndSleeps_RefuseInfiniteTimeSpan_SayingWhy() => Run(async () =>
    {
        var loop = EventLoop.GetRunningLoop();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => loop.CallLater(Timeout.InfiniteTimeSpan, () => { }));
        Assert.Equal("delay", e.ParamName);
        Assert.Contains("InfiniteTimeSpan", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Tasks.Sleep(Timeout.InfiniteTimeSpan));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tasks.Sleep(Timeout.InfiniteTimeSpan, 1));
        await Tasks.Sleep(TimeSpan.Zero);
    });

    [Fact]
    public void Sleep_WithATimeSpanAndAResult() => Run(async () =>
    {
        var loop = EventLoop.GetRunningLoop();
        double start = loop.Time();
        Assert.Equal(42, await Tasks.Sleep(TimeSpan.FromMinutes(2), 42));
        Assert.Equal(120, loop.Time() - start, 6);
    });

    [Fact]
    public void WaitFor_WithATimeSpan_TimesOut_OrWaitsWithoutEndForInfinite() => Run(async () =>
    {
        var loop = EventLoop.GetRunningLoop();
        double start = loop.Time();
        var never = loop.CreateFuture<int>();
        await Assert.ThrowsAsync<TimeoutError>(async () => await Tasks.WaitFor(never, TimeSpan.FromSeconds(3)));
        Assert.Equal(3, loop.Time() - start, 6);

        var late = loop.CreateFuture<int>();
        loop.CallLater(1e6, () => late.SetResult(7)); // far beyond any finite default
        Assert.Equal(7, await Tasks.WaitFor(late, Timeout.InfiniteTimeSpan));
        Future untyped = loop.CreateFuture<int>();
        await Assert.ThrowsAsync<TimeoutError>(async () => await Tasks.WaitFor(untyped, TimeSpan.FromSeconds(1)));
    });

    [Fact]
    public void TimeoutAndWithTimeout_WithATimeSpan() => Run(async () =>
    {
        var loop = EventLoop.GetRunningLoop();
        await Assert.ThrowsAsync<TimeoutError>(async () => await Tasks.WithTimeout(TimeSpan.FromSeconds(1), async () => await Tasks.Sleep(10)));
        Assert.Equal(5, await Tasks.WithTimeout(TimeSpan.FromSeconds(10), () => After(1, 5)));
        int viaScope = await Tasks.WithTimeout<int>(Timeout.InfiniteTimeSpan, async scope =>
        {
            Assert.Null(scope.When);
            await Tasks.Sleep(1e5);
            return 9;
        });
        Assert.Equal(9, viaScope);
        await Tasks.WithTimeout(Timeout.InfiniteTimeSpan, async () => await Tasks.Sleep(1));

        double before = loop.Time();
        using (var scope = Tasks.Timeout(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(before + 30, scope.When!.Value, 6);
        }

        using (var none = Tasks.Timeout(Timeout.InfiniteTimeSpan))
        {
            Assert.Null(none.When);
        }
    });
}
