namespace Tulip.Tests.Loop;

public abstract partial class EventLoopContractTests
{
    [Fact]
    public void CallSoon_runs_callbacks_in_order_and_what_they_schedule_waits_for_the_next_iteration()
    {
        using var h = NewLoop();
        var order = new List<string>();
        h.Loop.CallSoon(() =>
        {
            order.Add("a");
            h.Loop.CallSoon(() => order.Add("c"));
        });
        h.Loop.CallSoon(() => order.Add("b"));

        h.RunOnce();
        Assert.Equal(["a", "b"], order);

        h.RunOnce();
        Assert.Equal(["a", "b", "c"], order);
    }

    [Fact]
    public void A_callback_that_reschedules_itself_does_not_starve_a_due_timer()
    {
        using var h = NewLoop();
        int spins = 0;
        void Spin()
        {
            spins++;
            h.Loop.CallSoon(Spin);
        }

        h.Loop.CallSoon(Spin);
        h.Loop.CallLater(0.001, h.Loop.Stop);
        h.RunForever();
        Assert.True(spins > 0);
    }

    [Fact]
    public void Stop_is_restartable_and_loses_nothing()
    {
        using var h = NewLoop();
        var ran = new List<string>();
        h.Loop.CallSoon(() =>
        {
            ran.Add("first");
            h.Loop.CallSoon(() => ran.Add("next"));
            h.Loop.Stop();
        });

        h.RunForever();
        Assert.Equal(["first"], ran);
        Assert.False(h.Loop.IsRunning);
        Assert.Equal(1, h.Loop.ReadyCount);

        h.Loop.CallSoon(h.Loop.Stop);
        h.RunForever();
        Assert.Equal(["first", "next"], ran);
    }

    [Fact]
    public void Stop_before_RunForever_runs_one_iteration()
    {
        using var h = NewLoop();
        int ran = 0;
        h.Loop.CallSoon(() => ran++);
        h.Loop.Stop();
        h.Loop.RunForever();
        Assert.Equal(1, ran);
    }

    [Fact]
    public void Close_is_idempotent_and_a_closed_loop_refuses_work()
    {
        var h = NewLoop();
        h.Loop.Close();
        h.Loop.Close();
        Assert.True(h.Loop.IsClosed);
        Assert.Throws<InvalidOperationException>(() => h.Loop.CallSoon(() => { }));
        Assert.Throws<InvalidOperationException>(() => h.Loop.CallLater(1, () => { }));
        Assert.Throws<InvalidOperationException>(() => h.Loop.CallSoonThreadSafe(() => { }));
        Assert.Throws<InvalidOperationException>(() => h.Loop.RunForever());
        h.Dispose();
    }

    [Fact]
    public void Close_throws_while_the_loop_runs()
    {
        using var h = NewLoop();
        Exception? thrown = null;
        h.Loop.CallSoon(() =>
        {
            thrown = Record.Exception(() => h.Loop.Close());
            h.Loop.Stop();
        });
        h.RunForever();
        Assert.IsType<InvalidOperationException>(thrown);
        Assert.False(h.Loop.IsClosed);
    }

    [Fact]
    public void Close_with_pending_work_drops_it_without_running_it()
    {
        using var h = NewLoop();
        int ran = 0;
        h.Loop.CallSoon(() => ran++);
        h.Loop.CallLater(0, () => ran++);
        h.Loop.CallLater(3600, () => ran++);
        h.Loop.CallSoonThreadSafe(() => ran++);
        var pending = h.Loop.CreateFuture<int>();

        h.Loop.Close();

        Assert.Equal(0, ran);
        Assert.Equal(0, h.Loop.ReadyCount);
        Assert.Equal(0, h.Loop.TimerCount);
        Assert.False(pending.Done);
    }

    [Fact]
    public void Close_releases_the_multiplexer_and_wakeup_fds()
    {
        // The loop's own fds, by number and by what they refer to: an fd some other thread opens
        // meanwhile cannot be mistaken for one the loop kept.
        for (int i = 0; i < 50; i++)
        {
            var loop = CreateLoop(null);
            int[] own = Kind.OwnFds(loop);
            var targets = own.Select(fd => LoopHarness.FdTarget(fd)).ToArray();
            Assert.All(targets, t => Assert.StartsWith("anon_inode:", t));
            loop.CallSoonThreadSafe(() => { }); // writes to the wake-up fd
            loop.Close();
            for (int k = 0; k < own.Length; k++)
            {
                Assert.NotEqual(targets[k], LoopHarness.FdTarget(own[k]));
            }
        }
    }

    [Fact]
    public void A_running_loop_opens_no_fd_it_does_not_close()
    {
        using var h = NewLoop(checkFds: true);
        h.Run(async () => await Tasks.Sleep(0.001));
    }

    [Fact]
    public void Cancelled_handles_never_run()
    {
        using var h = NewLoop();
        var ran = new List<string>();
        var soon = h.Loop.CallSoon(() => ran.Add("soon"));
        var later = h.Loop.CallLater(0, () => ran.Add("later"));
        var threadSafe = h.Loop.CallSoonThreadSafe(() => ran.Add("threadsafe"));
        h.Loop.CallSoon(() => ran.Add("kept"));
        soon.Cancel();
        soon.Cancel();
        later.Cancel();
        threadSafe.Cancel();
        Assert.True(soon.Cancelled);
        Assert.True(later.Cancelled);

        h.Loop.CallLater(0.001, h.Loop.Stop);
        h.RunForever();
        Assert.Equal(["kept"], ran);
    }

    [Fact]
    public void A_handle_cancelled_by_an_earlier_callback_of_the_same_iteration_does_not_run()
    {
        using var h = NewLoop();
        var ran = new List<string>();
        Handle? second = null;
        h.Loop.CallSoon(() => { ran.Add("first"); second!.Cancel(); });
        second = h.Loop.CallSoon(() => ran.Add("second"));
        h.RunOnce();
        Assert.Equal(["first"], ran);
    }

    [Fact]
    public void Timers_run_by_due_time_then_in_scheduling_order()
    {
        using var h = NewLoop();
        var order = new List<string>();
        double now = h.Loop.Time();
        h.Loop.CallLater(0.02, () => { order.Add("a"); h.Loop.Stop(); });
        h.Loop.CallLater(0.01, () => order.Add("b"));
        h.Loop.CallAt(now + 0.01 - 1e-9, () => order.Add("at"));
        h.Loop.CallLater(0.01, () => order.Add("c"));
        h.Loop.CallLater(-5, () => order.Add("past"));
        h.RunForever();
        Assert.Equal(["past", "at", "b", "c", "a"], order);
    }

    [Fact]
    public void A_timer_does_not_run_before_its_time()
    {
        using var h = NewLoop();
        double due = 0;
        double ranAt = 0;
        h.Loop.CallSoon(() =>
        {
            due = h.Loop.Time() + 0.02;
            h.Loop.CallAt(due, () => { ranAt = h.Loop.Time(); h.Loop.Stop(); });
        });
        h.RunForever();
        Assert.True(ranAt >= due - 1e-6, $"ran at {ranAt}, due {due}");
    }

    [Fact]
    public void TimerHandle_When_is_on_the_loop_clock()
    {
        using var h = NewLoop();
        double now = h.Loop.Time();
        var t = h.Loop.CallLater(10, () => { });
        Assert.InRange(t.When, now + 10, h.Loop.Time() + 10);
        var at = h.Loop.CallAt(now + 5, () => { });
        Assert.Equal(now + 5, at.When);
        t.Cancel();
        at.Cancel();
    }

    [Fact]
    public void NaN_delay_or_time_is_refused()
    {
        using var h = NewLoop();
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Loop.CallLater(double.NaN, () => { }));
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Loop.CallLater(double.NaN, _ => { }, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Loop.CallAt(double.NaN, () => { }));
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Loop.CallAt(double.NaN, _ => { }, 1));
        h.Run(async () =>
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => Tasks.Sleep(double.NaN));
            await Tasks.Sleep(0);
        });
        Assert.Equal(0, h.Loop.TimerCount);
    }

    [Fact]
    public void A_million_cancelled_timers_are_purged_and_their_memory_comes_back()
    {
        using var h = NewLoop();
        const int count = 1_000_000;
        long before = FullGcMemory();
        ScheduleAndCancel(h.Loop, count);
        Assert.InRange(h.Loop.TimerCount, 0, 200);

        h.RunOnce();
        Assert.Equal(0, h.Loop.TimerCount);

        long after = FullGcMemory();
        // A million live timers with their delegates take well over 100 MB; what is left is the
        // heap's minimum array and noise. The bound is generous so GC bookkeeping does not matter.
        Assert.True(after - before < 16 * 1024 * 1024, $"{(after - before) / 1024} KiB still held after purging {count} timers");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void ScheduleAndCancel(BaseEventLoop loop, int count)
    {
        var handles = new TimerHandle[count];
        for (int i = 0; i < count; i++)
        {
            handles[i] = loop.CallLater(3600 + i, static _ => { }, i);
        }

        Assert.Equal(count, loop.TimerCount);
        foreach (var t in handles)
        {
            t.Cancel();
        }
    }

    private static long FullGcMemory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
