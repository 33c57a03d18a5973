using Tulip;
using static Tulip.Tests.Combinators.LoopRunner;

namespace Tulip.Tests.Combinators;

public class TaskGroupTests
{
    [Fact]
    public void AwaitUsingWaitsForEveryTask() => Run(async () =>
    {
        LoopTask<int> a, b;
        await using (var tg = new TaskGroup())
        {
            a = tg.CreateTask(() => After(0.01, 1));
            b = tg.CreateTask(() => After(0, 2));
        }

        Assert.Equal(1, a.Result());
        Assert.Equal(2, b.Result());
    });

    [Fact]
    public void RunAsyncWaitsForEveryTaskAndReturnsTheBodyResult() => Run(async () =>
    {
        var results = new List<int>();
        int r = await TaskGroup.RunAsync(async tg =>
        {
            _ = tg.CreateTask(async () => { await Tasks.Sleep(0.01); results.Add(1); });
            _ = tg.CreateTask(async () => { await Tasks.Sleep(0); results.Add(2); });
            await Tasks.Yield();
            return 42;
        });
        Assert.Equal(42, r);
        Assert.Equal([2, 1], results);
    });

    [Fact]
    public void OneFailureCancelsSiblingsAndTheParent() => Run(async () =>
    {
        LoopTask<int>? sibling = null;
        bool bodyCancelled = false;
        var parent = (LoopTask)Tasks.CurrentTask()!;
        var error = await Throws<ExceptionGroup>(Group());
        Assert.IsType<FormatException>(Assert.Single(error.InnerExceptions));
        Assert.True(sibling!.Cancelled);
        Assert.True(bodyCancelled);

        async LoopTask Group()
        {
            var me = (LoopTask)Tasks.CurrentTask()!;
            await using var tg = new TaskGroup();
            sibling = tg.CreateTask(() => After(100, 1));
            _ = tg.CreateTask(() => FailAfter(0.01, new FormatException("f")));
            try
            {
                await Tasks.Sleep(100);
            }
            catch (CancelledError)
            {
                bodyCancelled = true;
                Assert.Equal(1, me.Cancelling());
                throw;
            }
        }
    });

    [Fact]
    public void TheParentIsUncancelledAfterTheGroup() => Run(async () =>
    {
        var me = (LoopTask)Tasks.CurrentTask()!;
        try
        {
            await using var tg = new TaskGroup();
            _ = tg.CreateTask(() => FailAfter(0, new FormatException("f")));
            await Tasks.Sleep(100);
        }
        catch (ExceptionGroup)
        {
        }

        Assert.Equal(0, me.Cancelling());
        // No cancellation is left pending on the parent.
        await Tasks.Sleep(0.001);
    });

    [Fact]
    public void MultipleErrorsAreAggregated() => Run(async () =>
    {
        var error = await Throws<ExceptionGroup>(TaskGroup.RunAsync(async tg =>
        {
            _ = tg.CreateTask(() => FailAfter(0, new FormatException("a")));
            _ = tg.CreateTask(() => FailAfter(0, new InvalidOperationException("b")));
            await Tasks.Sleep(100);
        }));
        Assert.Equal(2, error.InnerExceptions.Count);
        Assert.Contains(error.InnerExceptions, e => e is FormatException);
        Assert.Contains(error.InnerExceptions, e => e is InvalidOperationException);
    });

    [Fact]
    public void ErrorWhileCancellingIsAlsoAggregated() => Run(async () =>
    {
        async LoopTask<int> FailsWhenCancelled()
        {
            try
            {
                await Tasks.Sleep(100);
            }
            catch (CancelledError)
            {
                throw new ArithmeticException("while cancelling");
            }

            return 0;
        }

        var error = await Throws<ExceptionGroup>(TaskGroup.RunAsync(async tg =>
        {
            _ = tg.CreateTask(FailsWhenCancelled);
            _ = tg.CreateTask(() => FailAfter(0.01, new FormatException("first")));
            await Tasks.Sleep(100);
        }));
        Assert.IsType<FormatException>(error.InnerExceptions[0]);
        Assert.IsType<ArithmeticException>(error.InnerExceptions[1]);
    });

    [Fact]
    public void BodyExceptionCancelsTheTasksAndJoinsTheGroup() => Run(async () =>
    {
        LoopTask<int>? child = null;
        var error = await Throws<ExceptionGroup>(TaskGroup.RunAsync(async tg =>
        {
            child = tg.CreateTask(() => After(100, 1));
            await Tasks.Yield();
            throw new FormatException("body");
        }));
        Assert.IsType<FormatException>(Assert.Single(error.InnerExceptions));
        Assert.True(child!.Cancelled);
    });

    [Fact]
    public void CancellingTheParentFromOutsideCancelsTheTasksAndPropagates() => Run(async () =>
    {
        LoopTask<int>? child = null;
        async LoopTask Parent()
        {
            await using var tg = new TaskGroup();
            child = tg.CreateTask(() => After(100, 1));
            await Tasks.Sleep(100);
        }

        var parent = Parent();
        await Tasks.Yield();
        parent.Cancel();
        await Throws<CancelledError>(parent);
        Assert.True(parent.Cancelled);
        Assert.True(child!.Cancelled);
    });

    [Fact]
    public void CancellingTheParentWhileTheGroupWaitsCancelsTheTasks() => Run(async () =>
    {
        LoopTask<int>? child = null;
        var parent = TaskGroup.RunAsync(async tg =>
        {
            child = tg.CreateTask(() => After(100, 1));
            await Tasks.Yield();
        });
        // Let the body finish, so the group is waiting for the child when the cancel comes.
        await Tasks.Sleep(0.01);
        parent.Cancel();
        await Throws<CancelledError>(parent);
        Assert.True(child!.Cancelled);
    });

    [Fact]
    public void CancellationTokenCancelsTheGroup() => Run(async () =>
    {
        using var cts = new CancellationTokenSource();
        LoopTask<int>? child = null;
        var run = TaskGroup.RunAsync(async tg =>
        {
            child = tg.CreateTask(() => After(100, 1));
            await Tasks.Sleep(100);
        }, cts.Token);
        await Tasks.Yield();
        cts.Cancel();
        await Throws<OperationCanceledException>(run);
        Assert.True(run.Cancelled);
        Assert.True(child!.Cancelled);
    });

    [Fact]
    public void CreateTaskAfterExitIsRefused() => Run(async () =>
    {
        TaskGroup? group = null;
        await TaskGroup.RunAsync(async tg =>
        {
            group = tg;
            await Tasks.Yield();
        });
        var error = Assert.Throws<InvalidOperationException>(() => group!.CreateTask(() => After(0, 1)));
        Assert.Contains("finished", error.Message);
    });

    [Fact]
    public void CreateTaskWhileShuttingDownIsRefused() => Run(async () =>
    {
        Exception? refused = null;
        await Throws<ExceptionGroup>(TaskGroup.RunAsync(async tg =>
        {
            _ = tg.CreateTask(() => FailAfter(0, new FormatException("f")));
            try
            {
                await Tasks.Sleep(100);
            }
            catch (CancelledError)
            {
                refused = Record.Exception(() => tg.CreateTask(() => After(0, 1)));
                throw;
            }
        }));
        Assert.IsType<InvalidOperationException>(refused);
        Assert.Contains("shutting down", refused!.Message);
    });

    [Fact]
    public void TasksMayAddSiblingsWhileTheGroupWaits() => Run(async () =>
    {
        LoopTask<int>? late = null;
        await TaskGroup.RunAsync(async tg =>
        {
            _ = tg.CreateTask(async () =>
            {
                await Tasks.Sleep(0.01);
                late = tg.CreateTask(() => After(0.01, 5));
            });
            await Tasks.Yield();
        });
        Assert.Equal(5, late!.Result());
    });

    [Fact]
    public void EagerlyFailingTaskCancelsTheParentAtItsNextAwait() => Run(async () =>
    {
        static async LoopTask<int> FailNow()
        {
            await Task.CompletedTask;
            throw new FormatException("now");
        }

        bool reachedAfterSleep = false;
        await Throws<ExceptionGroup>(TaskGroup.RunAsync(async tg =>
        {
            _ = tg.CreateTask(FailNow);
            await Tasks.Sleep(100);
            reachedAfterSleep = true;
        }));
        Assert.False(reachedAfterSleep);
    });

    [Fact]
    public void GroupOutsideATaskIsRefused()
    {
        using var loop = new Tulip.Testing.TestEventLoop(); // any loop: what is refused is the call outside a task
        Exception? error = null;
        loop.CallSoon(() =>
        {
            error = Record.Exception(() => new TaskGroup());
            loop.Stop();
        });
        loop.RunForever();
        Assert.IsType<InvalidOperationException>(error);
    }
}
