namespace Tulip.Tests.Loop;

/// <summary>
/// The module-level functions: the policy, the running loop, <see cref="EventLoop.Run{T}"/> and
/// <see cref="Runner"/>. In the non-parallel collection: the policy is process-wide.
/// </summary>
[Collection(NativeFdCollection.Name)]
public sealed class EventLoopPolicyTests
{
    private static T OnFreshThread<T>(Func<T> body)
    {
        T result = default!;
        Exception? error = null;
        var t = new Thread(() =>
        {
            try
            {
                result = body();
            }
            catch (Exception ex)
            {
                error = ex;
            }
        });
        t.Start();
        Assert.True(t.Join(LoopHarness.Patience));
        if (error is not null)
        {
            throw new InvalidOperationException("The body failed on its thread.", error);
        }

        return result;
    }

    [Fact]
    public void GetEventLoop_without_a_loop_throws_a_clear_error()
    {
        var ex = OnFreshThread(() => Record.Exception(EventLoop.GetEventLoop));
        var ioe = Assert.IsType<InvalidOperationException>(ex);
        Assert.Contains("no current event loop", ioe.Message);
        Assert.Contains("EventLoop.Run", ioe.Message);
    }

    [Fact]
    public void SetEventLoop_makes_the_loop_current_for_the_thread()
    {
        bool ok = OnFreshThread(() =>
        {
            using var loop = EventLoop.NewEventLoop();
            EventLoop.SetEventLoop(loop);
            bool same = ReferenceEquals(loop, EventLoop.GetEventLoop());
            EventLoop.SetEventLoop(null);
            return same && Record.Exception(EventLoop.GetEventLoop) is InvalidOperationException;
        });
        Assert.True(ok);
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void GetRunningLoop_is_the_loop_inside_and_throws_outside(string kind)
    {
        Assert.Throws<InvalidOperationException>(EventLoop.GetRunningLoop);
        Assert.Null(EventLoop.TryGetRunningLoop());
        using var loop = LoopKinds.Named(kind).Create();
        IEventLoop? inside = null;
        IEventLoop? fromGetEventLoop = null;
        loop.CallSoon(() =>
        {
            inside = EventLoop.GetRunningLoop();
            fromGetEventLoop = EventLoop.GetEventLoop();
            loop.Stop();
        });
        loop.RunForever();
        Assert.Same(loop, inside);
        Assert.Same(loop, fromGetEventLoop);
        Assert.Null(EventLoop.TryGetRunningLoop());
    }

    [Fact]
    public void Run_returns_the_result_cancels_leftover_tasks_and_closes_the_loop()
    {
        IEventLoop? loop = null;
        LoopTask? background = null;
        bool backgroundSawCancel = false;
        int result = EventLoop.Run(async () =>
        {
            loop = EventLoop.GetRunningLoop();
            background = Forever();
            await Tasks.Sleep(0);
            return 17;
        });

        Assert.Equal(17, result);
        Assert.True(background!.Cancelled);
        Assert.True(backgroundSawCancel);
        Assert.True(loop!.IsClosed);

        async LoopTask Forever()
        {
            try
            {
                await Tasks.Sleep(double.PositiveInfinity);
            }
            catch (CancelledError)
            {
                backgroundSawCancel = true;
                throw;
            }
        }
    }

    [Fact]
    public void Run_refuses_to_nest()
    {
        Exception? nested = null;
        EventLoop.Run(async () =>
        {
            nested = Record.Exception(() => EventLoop.Run(async () => { await Tasks.Sleep(0); return 1; }));
            await Tasks.Sleep(0);
        });
        Assert.IsType<InvalidOperationException>(nested);
    }

    [Fact]
    public void Run_propagates_the_exception_of_main_and_still_closes_the_loop()
    {
        IEventLoop? loop = null;
        Assert.Throws<FormatException>(() => EventLoop.Run(async () =>
        {
            loop = EventLoop.GetRunningLoop();
            await Tasks.Sleep(0);
            throw new FormatException();
        }));
        Assert.True(loop!.IsClosed);
    }

    [Fact]
    public void Runner_reuses_its_loop_across_runs_and_closes_it_on_dispose()
    {
        IEventLoop loop;
        using (var runner = new Runner())
        {
            loop = runner.Loop;
            Assert.Equal(1, runner.Run(async () => { await Tasks.Sleep(0); return 1; }));
            IEventLoop? second = null;
            runner.Run(async () => { second = EventLoop.GetRunningLoop(); await Tasks.Sleep(0); });
            Assert.Same(loop, second);
            Assert.False(loop.IsClosed);
        }

        Assert.True(loop.IsClosed);
    }

    [Fact]
    public void Runner_debug_sets_the_loop_debug_mode()
    {
        using var runner = new Runner(debug: true);
        Assert.True(runner.Loop.Debug);
    }

    [Fact]
    public void A_disposed_runner_refuses_to_run()
    {
        var runner = new Runner();
        runner.Dispose();
        runner.Dispose();
        Assert.Throws<ObjectDisposedException>(() => runner.Run(async () => { await Tasks.Sleep(0); return 1; }));
    }
}
