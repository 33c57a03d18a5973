namespace Tulip.Tests.Proactor;

/// <summary>The proactor loop itself: scheduling, cross-thread wake-ups, the readiness calls it refuses, its kind by name.</summary>
public sealed class ProactorEventLoopTests
{
    [Fact]
    public void Runs_callbacks_timers_and_threadsafe_calls()
    {
        using var loop = new ProactorEventLoop();
        var order = new List<string>();
        loop.CallSoon(() => order.Add("soon"));
        loop.CallLater(0.001, () => order.Add("later"));
        var t = new Thread(() => loop.CallSoonThreadSafe(() => { order.Add("threadsafe"); loop.Stop(); }));
        loop.CallLater(0.002, () => t.Start());
        loop.RunForever();
        t.Join();
        Assert.Equal(["soon", "later", "threadsafe"], order);
    }

    [Fact]
    public void A_wakeup_set_after_the_drain_that_consumed_its_flag_is_reset_by_the_next_iteration()
    {
        // The interleaving, replayed: a poster takes the flag, the loop drains and clears it, and only then
        // does the poster call Set. Left set with the flag clear, the event would end every later wait at
        // once: an idle loop spinning until the next completion.
        using var loop = new ProactorEventLoop();
        Assert.True(loop.TakeWakeupFlagForTest());
        loop.RunUntilComplete(static async () => await Tasks.Sleep(0)); // iterations: the flag is consumed
        loop.SetWakeupForTest();                             // the poster's late Set
        Assert.True(loop.WakeupIsSet);
        loop.RunUntilComplete(static async () => await Tasks.Sleep(0)); // the next iteration consumes it
        Assert.False(loop.WakeupIsSet);
    }

    [Fact]
    public void A_loop_waiting_with_no_timer_is_woken_by_another_thread()
    {
        using var loop = new ProactorEventLoop();
        using var started = new ManualResetEventSlim();
        loop.CallSoon(started.Set);
        var t = new Thread(() =>
        {
            started.Wait();
            loop.CallSoonThreadSafe(loop.Stop);
        });
        t.Start();
        loop.RunForever(); // blocks in ProcessEvents(-1) until the other thread's call wakes it
        t.Join();
        Assert.False(loop.IsRunning);
    }

    [Fact]
    public void Its_pipe_transports_are_registered_in_its_transport_registry()
    {
        // Seed 002: the loop has no pipe methods of its own; the base loop's find this in the registry.
        using var loop = new ProactorEventLoop();
        Assert.True(loop.Transports.TryGet<IPipeTransportFactory>(out var pipes));
        Assert.IsType<ProactorPipeTransportFactory>(pipes);
        using var other = new ProactorEventLoop();
        Assert.True(other.Transports.TryGet<IPipeTransportFactory>(out var others));
        Assert.NotSame(pipes, others); // one per loop: it knows the fds its loop's transports hold
    }

    [Fact]
    public void An_operation_pending_counts_as_a_watch_until_its_completion_runs()
    {
        using var loop = new ProactorEventLoop();
        loop.RunUntilComplete(async () =>
        {
            using var pipe = new Tulip.Tests.Selectors.NativePipe(Interop.O_CLOEXEC);
            var (t, p) = await loop.ConnectReadPipeAsync(() => new Tulip.Tests.Transports.PipeRecorder(loop), pipe.TakeRead());
            Assert.Equal(1, loop.OutstandingOperations); // the read in flight
            t.Close();
            await p.Lost;
            Assert.True(await Tulip.Tests.Transports.TestUtil.Eventually(() => loop.OutstandingOperations == 0), $"{loop.OutstandingOperations} still watched");
        });
    }

    [Fact]
    public void Readiness_calls_are_refused_naming_the_selector_loop()
    {
        using var loop = new ProactorEventLoop();
        Assert.IsNotAssignableFrom<IReadinessEventLoop>(loop);
        Assert.IsAssignableFrom<ICompletionEventLoop>(loop);
        foreach (var call in new Action[] { () => loop.AddReader(0, () => { }), () => loop.AddWriter(0, () => { }),
                     () => loop.RemoveReader(0), () => loop.RemoveWriter(0) })
        {
            var ex = Assert.Throws<NotSupportedException>(call);
            Assert.Contains("SelectorEventLoop", ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void TULIP_LOOP_proactor_makes_a_proactor_loop()
    {
        using var loop = EventLoopKinds.FromEnvironmentValue("PROACTOR")();
        Assert.IsType<ProactorEventLoop>(loop);
        Assert.Contains("proactor", EventLoopKinds.AvailableNames);
    }

    [Fact]
    public void Run_works_on_a_proactor_loop()
    {
        int r = EventLoop.Run(async () => { await Tasks.Sleep(0.001); return 42; }, loopFactory: () => new ProactorEventLoop());
        Assert.Equal(42, r);
    }
}
