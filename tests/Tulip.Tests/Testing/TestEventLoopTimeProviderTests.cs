using Microsoft.Extensions.Time.Testing;
using Tulip;
using Tulip.Testing;

namespace Tulip.Tests.Testing;

/// <summary>
/// TestEventLoop on a FakeTimeProvider's clock: the loop's timers and the provider's own .NET timers
/// (ITimer, CancellationTokenSource, Task.Delay) move together, whichever side moves time.
/// </summary>
public class TestEventLoopTimeProviderTests
{
    [Fact]
    public void FakeAdvanceMovesTheLoopClock_AndDueTimersRunWhenTheLoopRuns()
    {
        var fake = new FakeTimeProvider();
        using var loop = new TestEventLoop(fake);
        var fired = new List<(string, double)>();
        loop.CallLater(1, () => fired.Add(("loop", loop.Time())));
        using var timer = fake.CreateTimer(_ => fired.Add(("itimer", loop.Time())), null, TimeSpan.FromSeconds(1.5), Timeout.InfiniteTimeSpan);

        Assert.Equal(0, loop.Time());
        fake.Advance(TimeSpan.FromSeconds(2));

        // The provider ran its timer inside Advance; the loop's timer waits for the loop to run.
        Assert.Equal(2, loop.Time());
        Assert.Equal(new[] { ("itimer", 2.0) }, fired);
        loop.RunUntilIdle();
        Assert.Equal(new[] { ("itimer", 2.0), ("loop", 2.0) }, fired);
        Assert.Null(loop.NextTimerAt);
        Assert.Same(fake, loop.TimeProvider);
    }

    [Fact]
    public void SetUtcNowMovesTheLoopClockToo_FromTheStartTime()
    {
        var fake = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        using var loop = new TestEventLoop(fake, startTime: 100);
        bool ran = false;
        loop.CallAt(105, () => ran = true);
        Assert.Equal(100, loop.Time());

        fake.SetUtcNow(fake.GetUtcNow().AddSeconds(4));
        loop.RunUntilIdle();
        Assert.False(ran);
        Assert.Equal(104, loop.Time(), 9);

        fake.SetUtcNow(fake.GetUtcNow().AddSeconds(1));
        loop.RunUntilIdle();
        Assert.True(ran);
    }

    [Fact]
    public void LoopAdvanceMovesTheFake_SoBothKindsOfTimerFireInDueOrder()
    {
        var fake = new FakeTimeProvider();
        var start = fake.GetUtcNow();
        using var loop = new TestEventLoop(fake, fake.Advance);
        var fired = new List<(string, double)>();
        loop.CallLater(1, () => fired.Add(("loop 1", loop.Time())));
        loop.CallLater(2, () => fired.Add(("loop 2", loop.Time())));
        using var timer = fake.CreateTimer(_ => fired.Add(("itimer 1.5", (fake.GetUtcNow() - start).TotalSeconds)), null, TimeSpan.FromSeconds(1.5), Timeout.InfiniteTimeSpan);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2.5), fake);

        loop.Advance(3);

        Assert.Equal(new[] { "loop 1", "itimer 1.5", "loop 2" }, fired.Select(f => f.Item1));
        Assert.Equal(1.0, fired[0].Item2, 6);
        Assert.Equal(2.0, fired[2].Item2, 6);
        Assert.True(cts.IsCancellationRequested);
        Assert.Equal(TimeSpan.FromSeconds(3), fake.GetUtcNow() - start);
        Assert.Equal(3, loop.Time(), 6);

        loop.CallLater(7, () => fired.Add(("loop 10", loop.Time())));
        Assert.True(loop.AdvanceToNext());
        Assert.Equal(TimeSpan.FromSeconds(10), fake.GetUtcNow() - start);
        Assert.Equal(("loop 10", 10.0), (fired[^1].Item1, Math.Round(fired[^1].Item2, 6)));
    }

    [Fact]
    public void RunUntilCompleteAutoAdvancesTheFake()
    {
        var fake = new FakeTimeProvider();
        var start = fake.GetUtcNow();
        using var loop = new TestEventLoop(fake, fake.Advance);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(45), fake);

        double at = loop.RunUntilComplete(loop.CreateTask(() => Sleeper(loop, 60)));

        Assert.Equal(60, at, 6);
        Assert.Equal(TimeSpan.FromSeconds(60), fake.GetUtcNow() - start);
        Assert.True(cts.IsCancellationRequested);
    }

    [Fact]
    public void AnITimerOfTheProviderCompletesALoopFutureBeforeTheLoopsTimeout()
    {
        // Code under test that mixes a .NET timer (from the provider) with a loop timeout.
        var fake = new FakeTimeProvider();
        using var loop = new TestEventLoop(fake);
        var signal = loop.CreateFuture<string>();
        using var timer = fake.CreateTimer(
            _ => loop.CallSoonThreadSafe(() => signal.SetResult("timer")), null, TimeSpan.FromSeconds(5), Timeout.InfiniteTimeSpan);
        var task = loop.CreateTask(async () =>
        {
            try
            {
                return await Tasks.WaitFor(signal, 10);
            }
            catch (TimeoutError)
            {
                return "timeout";
            }
        });

        loop.RunUntilIdle();
        fake.Advance(TimeSpan.FromSeconds(4));
        loop.RunUntilIdle();
        Assert.False(task.Done);
        fake.Advance(TimeSpan.FromSeconds(1));
        loop.RunUntilIdle();
        Assert.Equal("timer", task.Result());
    }

    [Fact]
    public void AFreeRunWaitsForAnotherThreadToAdvanceTheFake()
    {
        var fake = new FakeTimeProvider();
        using var loop = new TestEventLoop(fake) { IdleTimeout = TimeSpan.FromSeconds(30) };
        var task = loop.CreateTask(() => Sleeper(loop, 5));
        loop.RunUntilIdle();
        Assert.False(task.Done);

        // Whether the advance lands before the run waits or while it waits, the run ends.
        var mover = new Thread(() => fake.Advance(TimeSpan.FromSeconds(5)));
        mover.Start();
        double at = loop.RunUntilComplete(task);
        mover.Join();

        Assert.Equal(5, at, 6);
    }

    [Fact]
    public void WithoutAnAdvanceCallback_AdvanceSaysTheProviderOwnsTime()
    {
        var fake = new FakeTimeProvider();
        using var loop = new TestEventLoop(fake);
        loop.CallLater(1, () => { });

        var ex = Assert.Throws<InvalidOperationException>(() => loop.Advance(1));
        Assert.Contains("FakeTimeProvider", ex.Message);
        Assert.Contains("fake.Advance", ex.Message);
        Assert.Throws<InvalidOperationException>(() => loop.AdvanceToNext());
        Assert.Equal(0, loop.Time());
    }

    [Fact]
    public void AFreeRunWithNobodyMovingTheProviderTimesOutClearly()
    {
        var fake = new FakeTimeProvider();
        using var loop = new TestEventLoop(fake) { IdleTimeout = TimeSpan.FromMilliseconds(50) };
        var task = loop.CreateTask(() => Sleeper(loop, 5));

        var ex = Assert.Throws<TimeoutException>(() => loop.RunUntilComplete(task));
        Assert.Contains("FakeTimeProvider", ex.Message);
        Assert.Contains("IdleTimeout", ex.Message);
        task.Cancel();
        loop.RunUntilIdle();
    }

    [Fact]
    public void AnAdvanceCallbackThatDoesNotMoveTheProviderIsReported()
    {
        var fake = new FakeTimeProvider();
        using var loop = new TestEventLoop(fake, _ => { });
        loop.CallLater(1, () => { });

        var ex = Assert.Throws<InvalidOperationException>(() => loop.Advance(2));
        Assert.Contains("did not move", ex.Message);
    }

    [Fact]
    public void BadArgumentsAreRefused()
    {
        Assert.Throws<ArgumentNullException>(() => new TestEventLoop((TimeProvider)null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TestEventLoop(new FakeTimeProvider(), startTime: double.NaN));
    }

    [Fact]
    public void TheVirtualClockLoopIsUnchanged()
    {
        using var loop = new TestEventLoop();
        Assert.Null(loop.TimeProvider);
        loop.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(2, loop.Time());
    }

    [Fact]
    public async Task MemoryEventLoopTakesTheProviderToo()
    {
        var fake = new FakeTimeProvider();
        using var loop = new MemoryEventLoop(fake, fake.Advance);
        Task delay = Task.Delay(TimeSpan.FromSeconds(3), fake);
        loop.Advance(3);
        await delay.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(3, loop.Time(), 6);
    }

    private static async LoopTask<double> Sleeper(TestEventLoop loop, double seconds)
    {
        await Tasks.Sleep(seconds);
        return loop.Time();
    }
}
