namespace Tulip.Tests.Loop;

/// <summary>
/// The task model's rules for results and cancellation (LoopTask's remarks, ARCHITECTURE's "Futures
/// and tasks on async/await"): a result handed back across a cancelled await reaches the caller or
/// the body's cleanup, never nowhere. Also the typed current task and the lazy start.
/// </summary>
public abstract partial class EventLoopContractTests
{
    /// <summary>A resource whose disposal is observable.</summary>
    private sealed class TrackedResource : IDisposable
    {
        public TaskCompletionSource Disposed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool IsDisposed => Disposed.Task.IsCompleted;

        public void Dispose() => Disposed.TrySetResult();
    }

    [Fact]
    public void A_cancel_after_the_awaited_future_completed_lets_the_body_return_its_result_to_the_caller()
    {
        using var h = NewLoop();
        var resource = new TrackedResource();
        var ready = h.Loop.CreateFuture<TrackedResource>();
        LoopTask<TrackedResource>? task = null;
        var received = h.Run(async () =>
        {
            task = Body();
            await Tasks.Sleep(0);
            // The waiter completes and the task is woken on the next iteration; the cancel comes first.
            ready.SetResult(resource);
            Assert.True(task.Cancel("late"));
            return await task;
        });
        Assert.Same(resource, received);
        Assert.False(task!.Cancelled);
        Assert.Equal(1, task.Cancelling());
        Assert.False(resource.IsDisposed);

        async LoopTask<TrackedResource> Body() => await ready;
    }

    [Fact]
    public void A_cancel_after_the_awaited_future_completed_is_delivered_at_the_next_await_and_cleanup_runs()
    {
        using var h = NewLoop();
        var resource = new TrackedResource();
        var ready = h.Loop.CreateFuture<TrackedResource>();
        LoopTask<int>? task = null;
        bool sawResource = false;
        h.Run(async () =>
        {
            task = Body();
            await Tasks.Sleep(0);
            ready.SetResult(resource);
            task.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await task);
        });
        Assert.True(sawResource);
        Assert.True(task!.Cancelled);
        Assert.True(resource.IsDisposed);

        async LoopTask<int> Body()
        {
            using var r = await ready;
            sawResource = ReferenceEquals(r, resource);
            await Tasks.Sleep(3600);
            return 1;
        }
    }

    [Fact]
    public void A_body_cancelled_during_a_dotnet_await_returns_the_resource_it_got_to_the_caller()
    {
        using var h = NewLoop();
        var resource = new TrackedResource();
        var tcs = new TaskCompletionSource<TrackedResource>(TaskCreationOptions.RunContinuationsAsynchronously);
        LoopTask<TrackedResource>? task = null;
        var received = h.Run(async () =>
        {
            task = Body();
            await Tasks.Sleep(0);
            task.Cancel();
            Assert.True(task.CancellationToken.IsCancellationRequested);
            tcs.SetResult(resource);
            return await task;
        });
        Assert.Same(resource, received);
        Assert.False(task!.Cancelled);
        Assert.Equal(1, task.Cancelling());

        async LoopTask<TrackedResource> Body() => await tcs.Task;
    }

    [Fact]
    public void A_task_whose_cancel_was_handed_to_a_task_that_returned_anyway_gets_the_result_then_the_cancel()
    {
        using var h = NewLoop();
        var resource = new TrackedResource();
        var ready = h.Loop.CreateFuture<TrackedResource>();
        LoopTask<int>? outer = null;
        TrackedResource? seen = null;
        h.Run(async () =>
        {
            outer = Outer();
            await Tasks.Sleep(0);
            // Outer waits on Inner, which waits on ready. ready completes, then outer is cancelled:
            // the cancel goes on to Inner, which returns the resource before reaching another await.
            ready.SetResult(resource);
            outer.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await outer);
        });
        Assert.Same(resource, seen);
        Assert.True(outer!.Cancelled);
        Assert.True(resource.IsDisposed);

        async LoopTask<TrackedResource> Inner() => await ready;

        async LoopTask<int> Outer()
        {
            using var r = await Inner();
            seen = r;
            // The outer task's own request is not lost: it arrives here.
            await Tasks.Sleep(0);
            return 1;
        }
    }

    [Fact]
    public void Two_cancels_before_the_task_resumes_throw_one_CancelledError()
    {
        using var h = NewLoop();
        LoopTask<int>? task = null;
        var result = h.Run(async () =>
        {
            task = Body();
            await Tasks.Sleep(0);
            task.Cancel();
            task.Cancel();
            return await task;
        });
        Assert.Equal(2, result);
        Assert.Equal(2, task!.Cancelling());

        async LoopTask<int> Body()
        {
            try
            {
                await Tasks.Sleep(3600);
            }
            catch (CancelledError)
            {
            }

            // Both requests were delivered by the one CancelledError: this await is not interrupted.
            await Tasks.Sleep(0);
            return 2;
        }
    }

    [Fact]
    public void CurrentTask_is_typed_and_gives_the_task_api()
    {
        using var h = NewLoop();
        ILoopTask? current = null;
        var task = h.Loop.CreateTask(async () =>
        {
            current = Tasks.CurrentTask();
            Assert.NotNull(current);
            Assert.Equal("worker", current!.Name);
            Assert.Same(h.Loop, current.Loop);
            Assert.False(current.Done);
            Assert.Contains(current, Tasks.AllTasks());
            current.Cancel("self");
            Assert.Equal(1, current.Cancelling());
            Assert.True(current.CancellationToken.IsCancellationRequested);
            Assert.Equal(0, current.Uncancel());
            current.Name = "renamed";
            await Tasks.Sleep(0);
            return 7;
        }, name: "worker");
        Assert.Equal(7, h.Loop.RunUntilComplete(task));
        Assert.NotNull(current);
        Assert.Equal("renamed", current!.Name);
        Assert.True(current.Done);
        Assert.Equal(7, current.ResultObject());
        Assert.Null(current.Exception());
    }

    [Fact]
    public void CreateTask_with_eagerStart_false_runs_the_body_on_the_next_iteration_in_the_callers_context()
    {
        using var h = NewLoop();
        var local = new AsyncLocal<string>();
        var order = new List<string>();
        h.Run(async () =>
        {
            local.Value = "creator";
            var lazy = h.Loop.CreateTask(async () =>
            {
                order.Add("body:" + local.Value);
                Assert.Equal("lazy", Tasks.CurrentTask()!.Name);
                await Tasks.Sleep(0);
                return 1;
            }, name: "lazy", eagerStart: false);
            order.Add("caller");
            Assert.Contains<ILoopTask>(lazy, h.Loop.AllTasks());
            var eager = h.Loop.CreateTask(async () =>
            {
                order.Add("eager");
                await Tasks.Sleep(0);
                return 2;
            });
            order.Add("after eager");
            Assert.Equal(1, await lazy);
            Assert.Equal(2, await eager);
        });
        Assert.Equal(["caller", "eager", "after eager", "body:creator"], order);
    }

    [Fact]
    public void A_lazy_task_cancelled_before_its_first_step_never_runs_its_body()
    {
        using var h = NewLoop();
        bool ran = false;
        LoopTask? lazy = null;
        h.Run(async () =>
        {
            lazy = h.Loop.CreateTask(async () =>
            {
                ran = true;
                await Tasks.Sleep(0);
            }, eagerStart: false);
            Assert.True(lazy.Cancel("early"));
            var error = await Assert.ThrowsAsync<CancelledError>(async () => await lazy);
            Assert.Equal("early", error.Message);
        });
        Assert.False(ran);
        Assert.True(lazy!.Cancelled);
    }

    [Fact]
    public void A_task_created_off_the_loop_and_cancelled_before_it_starts_never_calls_its_coroutine()
    {
        using var h = NewLoop();
        bool called = false;
        var task = h.Loop.CreateTask(() =>
        {
            called = true;
            return Tasks.Sleep(0, 1);
        });
        Assert.True(task.Cancel());
        Assert.Throws<CancelledError>(() => h.Loop.RunUntilComplete(task));
        Assert.False(called);
    }

    [Fact]
    public void TaskGroup_CreateTask_takes_eagerStart_too()
    {
        using var h = NewLoop();
        var order = new List<string>();
        h.Run(async () =>
        {
            await TaskGroup.RunAsync(async tg =>
            {
                _ = tg.CreateTask(async () =>
                {
                    order.Add("lazy");
                    await Tasks.Sleep(0);
                }, eagerStart: false);
                order.Add("caller");
                await Tasks.Sleep(0);
            });
        });
        Assert.Equal(["caller", "lazy"], order);
    }
}
