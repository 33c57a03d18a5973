namespace Tulip.Tests.Loop;

/// <summary>asyncio's <c>to_thread</c> and <c>run_in_executor(executor, func)</c>.</summary>
public abstract partial class EventLoopContractTests
{
    [Fact]
    public void ToThread_runs_off_the_loop_thread_with_the_callers_AsyncLocal_and_returns_a_loop_task()
    {
        using var h = NewLoop();
        var local = new AsyncLocal<string>();
        int loopThread = 0;
        var (value, thread, after) = h.Run(async () =>
        {
            loopThread = Environment.CurrentManagedThreadId;
            local.Value = "from the task";
            var work = Tasks.ToThread<(string?, int)>(() =>
            {
                var seen = local.Value;
                local.Value = "changed on the thread";
                return (seen, Environment.CurrentManagedThreadId);
            });
            Assert.Same(h.Loop, work.Loop);
            var (seen, id) = await work;
            return (seen, id, local.Value);
        });
        Assert.Equal("from the task", value);
        Assert.NotEqual(loopThread, thread);
        Assert.Equal("from the task", after);
    }

    [Fact]
    public void ToThread_with_a_token_sees_the_cancellation_of_its_task()
    {
        using var h = NewLoop();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stopped = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        h.Run(async () =>
        {
            var work = Tasks.ToThread(token =>
            {
                started.SetResult();
                bool cancelled = token.WaitHandle.WaitOne(LoopHarness.Patience);
                stopped.SetResult(cancelled);
                return 0;
            });
            await started.Task;
            work.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await work);
            Assert.True(await stopped.Task);
        });
    }

    [Fact]
    public void A_disposable_that_executor_work_returns_after_its_task_was_cancelled_is_disposed()
    {
        using var h = NewLoop();
        var resource = new TrackedResource();
        using var release = new ManualResetEventSlim();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        h.Run(async () =>
        {
            var work = h.Loop.RunInExecutor(() =>
            {
                started.SetResult();
                release.Wait(LoopHarness.Patience);
                return resource;
            });
            await started.Task;
            Assert.True(work.Cancel());
            Assert.True(work.Cancelled);
            release.Set();
            await resource.Disposed.Task.WaitAsync(LoopHarness.Patience);
        });
        Assert.True(resource.IsDisposed);
    }

    [Fact]
    public void RunInExecutor_with_an_explicit_executor_runs_there_and_ShutdownDefaultExecutor_does_not_touch_it()
    {
        using var h = NewLoop();
        var pair = new ConcurrentExclusiveSchedulerPair();
        var executor = pair.ExclusiveScheduler;
        h.Run(async () =>
        {
            var onExecutor = await h.Loop.RunInExecutor(executor, () => TaskScheduler.Current == executor);
            Assert.True(onExecutor);
            bool ran = false;
            await h.Loop.RunInExecutor(executor, () => { ran = true; });
            Assert.True(ran);
            await h.Loop.ShutdownDefaultExecutorAsync();
            Assert.Throws<InvalidOperationException>(() => h.Loop.RunInExecutor(() => 1));
            Assert.Throws<InvalidOperationException>(() => h.Loop.RunInExecutor(null, () => 1));
            Assert.Equal(5, await h.Loop.RunInExecutor(executor, token => token.CanBeCanceled ? 5 : 0));
        });
        pair.Complete();
        Assert.True(pair.Completion.Wait(LoopHarness.Patience));
    }
}
