using Tulip;
using Tulip.Testing;

namespace Tulip.Tests.Testing;

public class TestEventLoopTests
{
    [Fact]
    public void ClockStartsWhereToldAndStandsStill()
    {
        using var loop = new TestEventLoop(startTime: 100);
        Assert.Equal(100, loop.Time());
        loop.CallSoon(() => { });
        loop.RunUntilIdle();
        Assert.Equal(100, loop.Time());
    }

    [Fact]
    public void RunUntilIdleRunsCallbacksAndWhatTheySchedule()
    {
        using var loop = new TestEventLoop();
        var order = new List<int>();
        loop.CallSoon(() =>
        {
            order.Add(1);
            loop.CallSoon(() => order.Add(3));
        });
        loop.CallSoon(() => order.Add(2));
        loop.CallLater(0, () => order.Add(4));
        loop.CallLater(1, () => order.Add(99));
        loop.RunUntilIdle();
        Assert.Equal(new[] { 1, 2, 4, 3 }, order);
        Assert.Equal(1, loop.NextTimerAt);
    }

    [Fact]
    public void AdvanceFiresDueTimersInOrderEachAtItsTime()
    {
        using var loop = new TestEventLoop();
        var fired = new List<(string, double)>();
        loop.CallLater(3, () => fired.Add(("c", loop.Time())));
        loop.CallLater(1, () =>
        {
            fired.Add(("a", loop.Time()));
            // Scheduled by a timer inside the window: fires in the same Advance.
            loop.CallLater(1, () => fired.Add(("b", loop.Time())));
        });
        loop.CallLater(10, () => fired.Add(("late", loop.Time())));

        loop.Advance(5);

        Assert.Equal(new[] { ("a", 1.0), ("b", 2.0), ("c", 3.0) }, fired);
        Assert.Equal(5, loop.Time());
        loop.Advance(5);
        Assert.Equal(("late", 10.0), fired[^1]);
    }

    [Fact]
    public void TimerExactlyAtTheEndOfTheWindowFires_AfterManySmallSteps()
    {
        using var loop = new TestEventLoop();
        bool fired = false;
        loop.CallLater(1, () => fired = true);
        for (int i = 0; i < 9; i++)
        {
            loop.Advance(0.1);
        }

        Assert.False(fired);
        loop.Advance(0.1); // 0.1 summed ten times is 0.9999999999999999
        Assert.True(fired);
    }

    [Fact]
    public void AdvanceToNextJumpsToTheNextTimer()
    {
        using var loop = new TestEventLoop();
        Assert.False(loop.AdvanceToNext());
        int n = 0;
        loop.CallLater(7, () => n++);
        loop.CallLater(9, () => n++);
        Assert.True(loop.AdvanceToNext());
        Assert.Equal((7.0, 1), (loop.Time(), n));
        Assert.True(loop.AdvanceToNext());
        Assert.Equal((9.0, 2), (loop.Time(), n));
        Assert.False(loop.AdvanceToNext());
    }

    [Fact]
    public void CancelledTimersDoNotFire()
    {
        using var loop = new TestEventLoop();
        bool fired = false;
        var t = loop.CallLater(1, () => fired = true);
        t.Cancel();
        loop.Advance(2);
        Assert.False(fired);
        Assert.Null(loop.NextTimerAt);
    }

    [Fact]
    public void StepwiseCoroutineSleepsOnTheVirtualClock()
    {
        using var loop = new TestEventLoop();
        async LoopTask<double> Sleeper()
        {
            await Tasks.Sleep(60);
            return loop.Time();
        }

        var task = loop.CreateTask(Sleeper);
        loop.RunUntilIdle();
        Assert.False(task.Done);
        loop.Advance(59.5);
        Assert.False(task.Done);
        loop.Advance(0.5);
        Assert.True(task.Done);
        Assert.Equal(60, task.Result());
    }

    [Fact]
    public void RunUntilCompleteAutoAdvancesThroughA60SecondSleep()
    {
        using var loop = new TestEventLoop();
        double finished = loop.RunUntilComplete(async () =>
        {
            await Tasks.Sleep(60);
            await Tasks.Sleep(0.5);
            return loop.Time();
        });
        Assert.Equal(60.5, finished);
    }

    [Fact]
    public void CancellingASleepingTaskAtAVirtualTime()
    {
        using var loop = new TestEventLoop();
        async LoopTask Worker() => await Tasks.Sleep(3600);
        var task = loop.CreateTask(Worker);
        loop.CallLater(30, () => task.Cancel("deadline"));
        loop.Advance(30);
        Assert.True(task.Cancelled);
        Assert.Null(loop.NextTimerAt);
    }

    [Fact]
    public void WithoutAutoAdvanceAWaitForATimerFailsInsteadOfHanging()
    {
        using var loop = new TestEventLoop { AutoAdvance = false, IdleTimeout = TimeSpan.Zero };
        var ex = Assert.Throws<TimeoutException>(() => loop.RunUntilComplete(async () =>
        {
            await Tasks.Sleep(1);
            return 0;
        }));
        Assert.Contains("AutoAdvance is off", ex.Message);
    }

    [Fact]
    public void CallSoonThreadSafeWakesAFreeRun()
    {
        using var loop = new TestEventLoop();
        var fut = loop.CreateFuture<int>();
        var thread = new Thread(() => loop.CallSoonThreadSafe(() => fut.SetResult(42)));
        loop.CallSoon(thread.Start);
        Assert.Equal(42, loop.RunUntilComplete(fut));
        thread.Join();
    }

    [Fact]
    public void RunInExecutorResultComesBackThroughTheThreadSafeQueue()
    {
        using var loop = new TestEventLoop();
        int result = loop.RunUntilComplete(async () => await loop.RunInExecutor(() => 6 * 7));
        Assert.Equal(42, result);
    }

    [Fact]
    public void ACallbackThatThrowsFailsTheRun()
    {
        using var loop = new TestEventLoop();
        loop.CallSoon(() => throw new InvalidOperationException("boom"));
        var ex = Assert.Throws<UnhandledLoopErrorsException>(loop.RunUntilIdle);
        Assert.IsType<InvalidOperationException>(ex.InnerException);
        Assert.Single(loop.UnhandledErrors);
        loop.RunUntilIdle(); // already reported: not thrown twice
    }

    [Fact]
    public void ErrorsAreOnlyCollectedWhenAsked()
    {
        using var loop = new TestEventLoop { FailOnUnhandledErrors = false };
        loop.CallSoon(() => throw new InvalidOperationException("boom"));
        loop.RunUntilIdle();
        Assert.Equal("boom", loop.UnhandledErrors.Single().Exception!.Message);
        loop.ClearUnhandledErrors();
        Assert.Empty(loop.UnhandledErrors);
    }

    [Fact]
    public void ASelfReschedulingCallbackHitsMaxIterations()
    {
        using var loop = new TestEventLoop { MaxIterations = 1000 };
        void Again() => loop.CallSoon(Again);
        loop.CallSoon(Again);
        var ex = Assert.Throws<InvalidOperationException>(loop.RunUntilIdle);
        Assert.Contains("without becoming idle", ex.Message);
    }

    [Fact]
    public void AdvanceRejectsNegativeTime()
    {
        using var loop = new TestEventLoop();
        Assert.Throws<ArgumentOutOfRangeException>(() => loop.Advance(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => loop.Advance(double.NaN));
    }

    [Fact]
    public void SocketMembersPointToTheInMemoryTransports()
    {
        using var loop = new TestEventLoop();
        var ex = Assert.Throws<NotSupportedException>(() => loop.AddReader(0, () => { }));
        Assert.Contains("MemoryEventLoop", ex.Message);
        Assert.Contains("AddReader", ex.Message);
    }

    [Fact]
    public void RunUntilIdleFromInsideTheLoopIsRefused()
    {
        using var loop = new TestEventLoop { FailOnUnhandledErrors = false };
        loop.CallSoon(() => loop.RunUntilIdle());
        loop.RunUntilIdle();
        Assert.IsType<InvalidOperationException>(loop.UnhandledErrors.Single().Exception);
    }
}
