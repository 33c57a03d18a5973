namespace Tulip.Tests.Loop;

public abstract partial class EventLoopContractTests
{
    [Fact]
    public void CallSoonThreadSafe_from_8_threads_times_100k_runs_each_callback_exactly_once()
    {
        using var h = NewLoop();
        const int threads = 8;
        const int perThread = 100_000;
        const int total = threads * perThread;
        var runs = new int[total];
        int ran = 0;
        var loop = h.Loop;
        Action<int> callback = i =>
        {
            runs[i]++;
            if (++ran == total)
            {
                loop.Stop();
            }
        };

        using var go = new ManualResetEventSlim();
        var producers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            go.Wait();
            for (int k = 0; k < perThread; k++)
            {
                loop.CallSoonThreadSafe(callback, t * perThread + k);
            }
        }) { Name = $"producer {t}" }).ToArray();
        foreach (var p in producers)
        {
            p.Start();
        }

        loop.CallSoon(go.Set);
        h.RunForever();
        foreach (var p in producers)
        {
            JoinBounded(p);
        }

        Assert.Equal(total, ran);
        Assert.DoesNotContain(runs, n => n != 1);
    }

    [Fact]
    public void CallSoonThreadSafe_racing_Close_runs_the_callback_or_throws_and_never_drops_on_a_live_loop()
    {
        var h = NewLoop();
        var loop = h.Loop;
        long accepted = 0;
        long ran = 0;
        var unexpected = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        bool producing = true;

        Thread[] StartProducers(int n) => Enumerable.Range(0, n).Select(t =>
        {
            var th = new Thread(() =>
            {
                while (Volatile.Read(ref producing))
                {
                    try
                    {
                        loop.CallSoonThreadSafe(() => ran++);
                        Interlocked.Increment(ref accepted);
                    }
                    catch (InvalidOperationException)
                    {
                        return; // closed: the only acceptable refusal
                    }
                    catch (Exception ex)
                    {
                        unexpected.Enqueue(ex);
                        return;
                    }
                }
            }) { Name = $"racer {t}" };
            th.Start();
            return th;
        }).ToArray();

        // Phase 1, live loop: every accepted call runs.
        var producers = StartProducers(4);
        loop.CallSoon(() => { });
        void StopWhenBusy()
        {
            if (ran >= 20_000)
            {
                loop.Stop();
            }
            else
            {
                loop.CallLater(0.001, StopWhenBusy);
            }
        }

        loop.CallSoon(StopWhenBusy);
        h.RunForever();
        Volatile.Write(ref producing, false);
        foreach (var p in producers)
        {
            JoinBounded(p);
        }

        void StopWhenAllRan()
        {
            if (ran == Interlocked.Read(ref accepted))
            {
                loop.Stop();
            }
            else
            {
                loop.CallSoon(StopWhenAllRan);
            }
        }

        loop.CallSoon(StopWhenAllRan);
        h.RunForever();
        Assert.Equal(Interlocked.Read(ref accepted), ran);

        // Phase 2: Close from another thread while producers hammer the loop: they see
        // InvalidOperationException and nothing else, and nobody hangs.
        Volatile.Write(ref producing, true);
        producers = StartProducers(4);
        var closer = new Thread(() =>
        {
            while (Interlocked.Read(ref accepted) < ran + 1000)
            {
                Thread.Yield();
            }

            loop.Close();
        }) { Name = "closer" };
        closer.Start();
        JoinBounded(closer);
        foreach (var p in producers)
        {
            JoinBounded(p);
        }

        Assert.Empty(unexpected);
        Assert.True(loop.IsClosed);
        h.Dispose();
    }

    [Fact]
    public void CallSoonThreadSafe_wakes_a_loop_blocked_waiting_for_io()
    {
        using var h = NewLoop();
        var loop = h.Loop;
        int ranOn = 0;
        var t = new Thread(() =>
        {
            // Wait until the loop is running (it is blocked in the selector with nothing to do).
            SpinWait.SpinUntil(() => loop.IsRunning, LoopHarness.Patience);
            loop.CallSoonThreadSafe(() => { ranOn = Environment.CurrentManagedThreadId; loop.Stop(); });
        });
        t.Start();
        h.RunForever();
        JoinBounded(t);
        Assert.Equal(Environment.CurrentManagedThreadId, ranOn);
    }

    [Fact]
    public void Debug_mode_refuses_CallSoon_from_another_thread()
    {
        using var h = NewLoop();
        h.Loop.Debug = true;
        Exception? callSoon = null;
        Exception? callLater = null;
        Exception? threadSafe = null;
        h.Loop.CallSoon(() =>
        {
            var t = new Thread(() =>
            {
                callSoon = Record.Exception(() => h.Loop.CallSoon(() => { }));
                callLater = Record.Exception(() => h.Loop.CallLater(0, () => { }));
                threadSafe = Record.Exception(() => h.Loop.CallSoonThreadSafe(() => { }));
            });
            t.Start();
            JoinBounded(t);
            h.Loop.Stop();
        });
        h.RunForever();
        var ex = Assert.IsType<InvalidOperationException>(callSoon);
        Assert.Contains("CallSoonThreadSafe", ex.Message);
        Assert.IsType<InvalidOperationException>(callLater);
        Assert.Null(threadSafe);
    }

    [Fact]
    public void Awaiting_a_loop_future_from_another_thread_throws_and_points_to_RunCoroutineThreadSafe()
    {
        using var h = NewLoop();
        var fut = h.Loop.CreateFuture<int>();
        Exception? thrown = null;
        h.Loop.CallSoon(() =>
        {
            var t = new Thread(() => thrown = Record.Exception(() => fut.GetAwaiter()));
            t.Start();
            JoinBounded(t);
            h.Loop.Stop();
        });
        h.RunForever();
        var ex = Assert.IsType<InvalidOperationException>(thrown);
        Assert.Contains("RunCoroutineThreadSafe", ex.Message);
        fut.Cancel();
    }

    [Fact]
    public void RunCoroutineThreadSafe_returns_the_result_to_another_thread()
    {
        using var h = NewLoop();
        var loop = h.Loop;
        int result = 0;
        int coroutineThread = 0;
        var t = new Thread(() =>
        {
            var task = loop.RunCoroutineThreadSafe(async () =>
            {
                coroutineThread = Environment.CurrentManagedThreadId;
                await Tasks.Sleep(0.001);
                return 42;
            });
            Assert.True(task.Wait(LoopHarness.Patience));
            result = task.Result;
            loop.CallSoonThreadSafe(loop.Stop);
        });
        loop.CallSoon(t.Start);
        h.RunForever();
        JoinBounded(t);
        Assert.Equal(42, result);
        Assert.Equal(Environment.CurrentManagedThreadId, coroutineThread);
    }

    [Fact]
    public void Cancelling_the_token_of_RunCoroutineThreadSafe_cancels_the_loop_task()
    {
        using var h = NewLoop();
        var loop = h.Loop;
        ILoopTask? loopTask = null;
        var started = new ManualResetEventSlim();
        Exception? seen = null;
        using var cts = new CancellationTokenSource();
        var t = new Thread(() =>
        {
            var task = loop.RunCoroutineThreadSafe(async () =>
            {
                loopTask = Tasks.CurrentTask();
                started.Set();
                await Tasks.Sleep(3600);
                return 1;
            }, cts.Token);
            Assert.True(started.Wait(LoopHarness.Patience));
            cts.Cancel();
            seen = Record.Exception(() => task.Wait(LoopHarness.Patience));
            loop.CallSoonThreadSafe(loop.Stop);
        });
        loop.CallSoon(t.Start);
        h.RunForever();
        JoinBounded(t);
        var agg = Assert.IsType<AggregateException>(seen);
        Assert.IsAssignableFrom<OperationCanceledException>(agg.InnerException);
        Assert.NotNull(loopTask);
        Assert.True(loopTask!.Cancelled);
        Assert.Equal(0, h.Loop.TimerCount);
        started.Dispose();
    }

    [Fact]
    public void RunInExecutor_runs_off_the_loop_thread_and_its_result_comes_back_on_it()
    {
        using var h = NewLoop();
        int loopThread = Environment.CurrentManagedThreadId;
        var (worker, resumedOn, value) = h.Run(async () =>
        {
            int w = 0;
            int v = await h.Loop.RunInExecutor(() => { w = Environment.CurrentManagedThreadId; return 7; });
            return (w, Environment.CurrentManagedThreadId, v);
        });
        Assert.Equal(7, value);
        Assert.NotEqual(loopThread, worker);
        Assert.Equal(loopThread, resumedOn);
    }

    [Fact]
    public void RunInExecutor_reports_the_exception_of_the_work()
    {
        using var h = NewLoop();
        var ex = h.Run(async () =>
        {
            try
            {
                await h.Loop.RunInExecutor<int>(() => throw new FormatException("bad"));
                return null;
            }
            catch (FormatException e)
            {
                return e;
            }
        });
        Assert.Equal("bad", ex?.Message);
    }

    [Fact]
    public void SetDefaultExecutor_with_a_custom_TaskScheduler_is_used()
    {
        using var h = NewLoop();
        var scheduler = new CountingScheduler();
        h.Loop.SetDefaultExecutor(scheduler);
        int result = h.Run(async () => await h.Loop.RunInExecutor(() => 5));
        Assert.Equal(5, result);
        Assert.True(scheduler.Queued >= 1);
    }

    private sealed class CountingScheduler : TaskScheduler
    {
        private int _queued;

        public int Queued => Volatile.Read(ref _queued);

        protected override void QueueTask(Task task)
        {
            Interlocked.Increment(ref _queued);
            ThreadPool.UnsafeQueueUserWorkItem(_ => TryExecuteTask(task), null);
        }

        protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => false;

        protected override IEnumerable<Task>? GetScheduledTasks() => null;
    }
}
