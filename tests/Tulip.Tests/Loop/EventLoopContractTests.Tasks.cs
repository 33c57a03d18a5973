namespace Tulip.Tests.Loop;

public abstract partial class EventLoopContractTests
{
    /// <summary>Starts <paramref name="body"/> as a task, lets it reach its await, cancels it, and returns it once done.</summary>
    private static async LoopTask<LoopTask> CancelAtAwait(Func<LoopTask> body)
    {
        var task = body();
        await Tasks.Sleep(0);
        Assert.False(task.Done);
        Assert.True(task.Cancel("stop"));
        try
        {
            await task;
        }
        catch (CancelledError)
        {
        }

        return task;
    }

    [Fact]
    public void Cancel_is_delivered_at_the_await_of_a_future()
    {
        using var h = NewLoop();
        var inner = h.Loop.CreateFuture<int>();
        bool caught = false;
        var task = h.Run(() => CancelAtAwait(async () =>
        {
            try
            {
                await inner;
            }
            catch (CancelledError e)
            {
                caught = e.Message == "stop";
                throw;
            }
        }));
        Assert.True(caught);
        Assert.True(task.Cancelled);
        Assert.True(inner.Cancelled);
    }

    [Fact]
    public void Cancel_is_delivered_at_the_await_of_a_sleep_and_its_timer_goes()
    {
        using var h = NewLoop();
        var task = h.Run(() => CancelAtAwait(async () => await Tasks.Sleep(3600)));
        Assert.True(task.Cancelled);
        Assert.Equal(0, h.Loop.TimerCount);
    }

    [Fact]
    public void Cancel_is_delivered_at_the_await_of_another_task_and_cancels_it()
    {
        using var h = NewLoop();
        LoopTask? child = null;
        var task = h.Run(() => CancelAtAwait(async () =>
        {
            child = Child();
            await child;
        }));
        Assert.True(task.Cancelled);
        Assert.True(child!.Cancelled);

        static async LoopTask Child() => await Tasks.Sleep(3600);
    }

    [Fact]
    public void Cancel_is_delivered_at_the_await_of_Gather_and_cancels_the_children()
    {
        using var h = NewLoop();
        Future<int>[] children = [];
        var task = h.Run(() => CancelAtAwait(async () =>
        {
            children = [h.Loop.CreateFuture<int>(), h.Loop.CreateFuture<int>()];
            await Tasks.Gather(children);
        }));
        Assert.True(task.Cancelled);
        Assert.All(children, c => Assert.True(c.Cancelled));
    }

    [Fact]
    public void Cancel_during_a_dotnet_await_cancels_the_token_and_is_delivered_at_the_next_loop_await()
    {
        using var h = NewLoop();
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool tokenCancelled = false;
        bool reachedNextAwait = false;
        LoopTask? task = null;
        h.Run(async () =>
        {
            task = Body();
            await Tasks.Sleep(0);
            task.Cancel();
            tokenCancelled = task.CancellationToken.IsCancellationRequested;
            tcs.SetResult();
            try
            {
                await task;
            }
            catch (CancelledError)
            {
            }
        });

        Assert.True(tokenCancelled);
        Assert.True(reachedNextAwait);
        Assert.True(task!.Cancelled);

        async LoopTask Body()
        {
            await tcs.Task;
            reachedNextAwait = true;
            await Tasks.Sleep(3600);
        }
    }

    [Fact]
    public void A_task_cancelled_during_a_dotnet_await_that_then_returns_keeps_its_result()
    {
        // The task model's rule (LoopTask remarks): a body that returns while a cancellation is
        // pending completes with its result; the request is still counted.
        using var h = NewLoop();
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        LoopTask<int>? task = null;
        h.Run(async () =>
        {
            task = Body();
            await Tasks.Sleep(0);
            task.Cancel();
            tcs.SetResult();
            Assert.Equal(1, await task);
        });
        Assert.False(task!.Cancelled);
        Assert.Equal(1, task.Cancelling());

        async LoopTask<int> Body()
        {
            await tcs.Task;
            return 1;
        }
    }

    [Fact]
    public void A_task_may_catch_CancelledError_and_go_on()
    {
        using var h = NewLoop();
        LoopTask<int>? task = null;
        int result = h.Run(async () =>
        {
            task = Body();
            await Tasks.Sleep(0);
            task.Cancel();
            return await task;
        });
        Assert.Equal(42, result);
        Assert.False(task!.Cancelled);
        Assert.Equal(1, task.Cancelling());

        static async LoopTask<int> Body()
        {
            try
            {
                await Tasks.Sleep(3600);
            }
            catch (CancelledError)
            {
            }

            await Tasks.Sleep(0);
            return 42;
        }
    }

    [Fact]
    public void Cancelling_counts_requests_and_Uncancel_withdraws_them()
    {
        using var h = NewLoop();
        h.Run(async () =>
        {
            var task = Body();
            Assert.Equal(0, task.Cancelling());
            task.Cancel();
            task.Cancel();
            Assert.Equal(2, task.Cancelling());
            Assert.Equal(1, task.Uncancel());
            Assert.Equal(0, task.Uncancel());
            Assert.Equal(0, task.Uncancel());
            try
            {
                await task;
            }
            catch (CancelledError)
            {
            }

            Assert.True(task.Done);
        });

        static async LoopTask Body() => await Tasks.Sleep(3600);
    }

    [Fact]
    public void CurrentTask_is_the_running_task_inside_and_null_outside()
    {
        using var h = NewLoop();
        object? inCallback = new Future<int>(h.Loop);
        h.Loop.CallSoon(() => inCallback = Tasks.CurrentTask());
        LoopTask<ILoopTask?>? task = null;
        ILoopTask? inside = null;
        h.Run(async () =>
        {
            task = Body();
            inside = await task;
        });
        Assert.Null(inCallback);
        Assert.Same(task, inside);
        Assert.Null(Tasks.CurrentTask());
        Assert.Null(h.Loop.CurrentTask);

        static async LoopTask<ILoopTask?> Body()
        {
            await Tasks.Sleep(0);
            Assert.Same(Tasks.CurrentTask(), EventLoop.GetRunningLoop().CurrentTask);
            return Tasks.CurrentTask();
        }
    }

    [Fact]
    public void AllTasks_lists_the_tasks_that_are_not_done()
    {
        using var h = NewLoop();
        h.Run(async () =>
        {
            var sleeper = Sleeper();
            var quick = Quick();
            var all = Tasks.AllTasks();
            Assert.Contains(sleeper, all);
            Assert.Contains(Tasks.CurrentTask()!, all);
            Assert.DoesNotContain(quick, all);
            sleeper.Cancel();
            try
            {
                await sleeper;
            }
            catch (CancelledError)
            {
            }

            Assert.DoesNotContain(sleeper, h.Loop.AllTasks());
        });

        static async LoopTask Sleeper() => await Tasks.Sleep(3600);
#pragma warning disable CS1998 // a task that finishes without awaiting
        static async LoopTask Quick()
        {
        }
#pragma warning restore CS1998
    }

    [Fact]
    public void A_task_is_named_Task_N_unless_named()
    {
        using var h = NewLoop();
        h.Run(async () =>
        {
            var a = Body();
            var b = Body();
            Assert.Matches(@"^Task-\d+$", a.Name);
            Assert.NotEqual(a.Name, b.Name);
            a.Name = "worker";
            Assert.Equal("worker", a.Name);
            Assert.Contains("worker", a.ToString());
            var named = h.Loop.CreateTask(Body, name: "named");
            Assert.Equal("named", named.Name);
            await Tasks.Gather<VoidResult>(a, b, named);
        });
        var deferred = h.Loop.CreateTask(Body, name: "deferred");
        Assert.Equal("deferred", deferred.Name);
        h.Loop.RunUntilComplete(deferred);

        static async LoopTask Body() => await Tasks.Sleep(0);
    }

    [Fact]
    public void Awaiting_dotnet_tasks_resumes_on_the_loop_thread()
    {
        using var h = NewLoop();
        int loopThread = Environment.CurrentManagedThreadId;
        var threads = h.Run(async () =>
        {
            var seen = new List<int>();
            await Task.Run(() => { });
            seen.Add(Environment.CurrentManagedThreadId);
            await Task.Delay(1);
            seen.Add(Environment.CurrentManagedThreadId);
            await new ValueTask<int>(Task.Run(() => 1));
            seen.Add(Environment.CurrentManagedThreadId);
            await Task.Yield();
            seen.Add(Environment.CurrentManagedThreadId);
            await Task.Run(() => { }).ConfigureAwait(false);
            seen.Add(Environment.CurrentManagedThreadId);
            return seen;
        });
        Assert.Equal(5, threads.Count);
        Assert.All(threads, t => Assert.Equal(loopThread, t));
    }

    [Fact]
    public void WrapTask_follows_completed_faulted_and_cancelled_dotnet_tasks()
    {
        using var h = NewLoop();
        var ok = h.Loop.WrapTask(Task.FromResult(5));
        var faulted = h.Loop.WrapTask(Task.FromException<int>(new FormatException("f")));
        var cancelled = h.Loop.WrapTask(Task.FromCanceled<int>(new CancellationToken(true)));
        var voidOk = h.Loop.WrapTask(Task.CompletedTask);
        var tcs = new TaskCompletionSource<int>();
        var later = h.Loop.WrapTask(tcs.Task);
        h.Run(async () =>
        {
            Assert.Equal(5, await ok);
            await Assert.ThrowsAsync<FormatException>(async () => await faulted);
            await Assert.ThrowsAsync<CancelledError>(async () => await cancelled);
            await voidOk;
            _ = Task.Run(() => tcs.SetResult(8));
            Assert.Equal(8, await later);
        });
        Assert.True(cancelled.Cancelled);
    }

    [Fact]
    public void A_coroutine_cannot_start_without_a_running_loop()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => Body());
        Assert.Contains("no running event loop", ex.Message);

        static async LoopTask Body() => await Tasks.Sleep(0);
    }

    [Fact]
    public void RunUntilComplete_returns_the_result_or_throws_the_exception()
    {
        using var h = NewLoop();
        Assert.Equal(3, h.Loop.RunUntilComplete(async () => { await Tasks.Sleep(0); return 3; }));
        Assert.Throws<FormatException>(() => h.Loop.RunUntilComplete(async () =>
        {
            await Tasks.Sleep(0);
            throw new FormatException();
        }));
        Assert.False(h.Loop.IsRunning);
    }
}

public abstract partial class EventLoopContractTests
{
    [Fact]
    public void Gather_of_a_child_cancelled_on_its_own_throws_CancelledError_at_the_await()
    {
        using var h = NewLoop();
        bool threw = h.Run(async () =>
        {
            var a = h.Loop.CreateFuture<int>();
            var b = h.Loop.CreateFuture<int>();
            var gather = Tasks.Gather(a, b);
            h.Loop.CallSoon(() => a.Cancel());
            try
            {
                await gather;
                return false;
            }
            catch (CancelledError)
            {
                b.Cancel();
                return true;
            }
        });
        Assert.True(threw);
    }

    [Fact]
    public void Gather_returns_results_in_order()
    {
        using var h = NewLoop();
        var results = h.Run(async () =>
        {
            var a = h.Loop.CreateFuture<int>();
            var b = h.Loop.CreateFuture<int>();
            h.Loop.CallSoon(() => b.SetResult(2));
            h.Loop.CallLater(0.001, () => a.SetResult(1));
            return await Tasks.Gather(a, b);
        });
        Assert.Equal([1, 2], results);
    }
}

public abstract partial class EventLoopContractTests
{
    [Fact]
    public void Cancelling_a_task_awaiting_RunInExecutor_cancels_it_without_waiting_for_the_work()
    {
        using var h = NewLoop();
        using var started = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        LoopTask<int>? task = null;
        Future<int>? work = null;
        h.Run(async () =>
        {
            task = Body();
            await h.Loop.RunInExecutor(() => started.Wait(LoopHarness.Patience));
            task.Cancel();
            try
            {
                await task;
            }
            catch (CancelledError)
            {
            }

            Assert.False(release.IsSet);
        });
        Assert.True(task!.Cancelled);
        Assert.True(work!.Cancelled);
        release.Set();
        h.Run(() => h.Loop.ShutdownDefaultExecutorAsync());

        async LoopTask<int> Body()
        {
            work = h.Loop.RunInExecutor(() =>
            {
                started.Set();
                release.Wait(LoopHarness.Patience);
                return 1;
            });
            return await work;
        }
    }


    [Fact]
    public void A_token_given_to_Sleep_cancels_it()
    {
        using var h = NewLoop();
        using var cts = new CancellationTokenSource();
        bool cancelled = h.Run(async () =>
        {
            h.Loop.CallSoon(cts.Cancel);
            try
            {
                await Tasks.Sleep(3600, cts.Token);
                return false;
            }
            catch (CancelledError)
            {
                return true;
            }
        });
        Assert.True(cancelled);
        Assert.Equal(0, h.Loop.TimerCount);
    }

    [Fact]
    public void A_task_exception_never_retrieved_is_reported()
    {
        using var h = NewLoop();
        StartFailingTask(h.Loop);
        // Start, sleep, fail, deferred task follows: a handful of iterations, counted, not timed.
        for (int i = 0; i < 10; i++)
        {
            h.RunOnce();
        }

        GC.Collect();
        GC.WaitForPendingFinalizers();
        h.RunOnce();
        var context = Assert.Single(h.TakeContexts());
        Assert.Contains("Task exception was never retrieved", context.Message);
        Assert.IsType<FormatException>(context.Exception);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void StartFailingTask(BaseEventLoop loop) => loop.CreateTask(async () =>
    {
        await Tasks.Sleep(0);
        throw new FormatException("lost");
    });

    [Fact]
    public void After_Uncancel_to_zero_the_task_hands_out_a_fresh_token()
    {
        using var h = NewLoop();
        h.Run(async () =>
        {
            var task = Body();
            var first = task.CancellationToken;
            task.Cancel();
            Assert.True(first.IsCancellationRequested);
            task.Uncancel();
            Assert.False(task.CancellationToken.IsCancellationRequested);
            try
            {
                await task;
            }
            catch (CancelledError)
            {
            }
        });

        static async LoopTask Body() => await Tasks.Sleep(3600);
    }
}

public abstract partial class EventLoopContractTests
{
    [Fact]
    public void Gather_token_cancels_the_gather_and_its_children()
    {
        using var h = NewLoop();
        using var cts = new CancellationTokenSource();
        var (gatherCancelled, childCancelled) = h.Run(async () =>
        {
            var a = h.Loop.CreateFuture<int>();
            var gather = Tasks.Gather([a], cancellationToken: cts.Token);
            h.Loop.CallSoon(() => cts.Cancel());
            await Assert.ThrowsAsync<CancelledError>(async () => await gather);
            return (gather.Cancelled, a.Cancelled);
        });
        Assert.True(gatherCancelled);
        Assert.True(childCancelled);
    }
}
