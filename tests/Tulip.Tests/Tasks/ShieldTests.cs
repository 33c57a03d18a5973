using Tulip;
using static Tulip.Tests.Combinators.LoopRunner;

namespace Tulip.Tests.Combinators;

public class ShieldTests
{
    [Fact]
    public void ResultPassesThrough() => Run(async () =>
    {
        Assert.Equal(5, await Tasks.Shield(After(0.001, 5)));
    });

    [Fact]
    public void ExceptionPassesThrough() => Run(async () =>
    {
        var error = await Throws<FormatException>(Tasks.Shield(FailAfter(0.001, new FormatException("s"))));
        Assert.Equal("s", error.Message);
    });

    [Fact]
    public void DoneInnerIsReturnedAsIs() => Run(async () =>
    {
        var loop = Tasks.CurrentTask()!.Loop;
        var f = loop.CreateFuture<int>();
        f.SetResult(1);
        Assert.Same(f, Tasks.Shield(f));
        await Tasks.Yield();
    });

    [Fact]
    public void CancellingTheOuterLeavesTheInnerRunning() => Run(async () =>
    {
        var inner = After(0.01, 5);
        var outer = Tasks.Shield(inner);
        Assert.True(outer.Cancel());
        await Throws<CancelledError>(outer);
        Assert.False(inner.Done);
        Assert.Equal(5, await inner);
    });

    [Fact]
    public void CancellingTheAwaitingTaskLeavesTheInnerRunning() => Run(async () =>
    {
        var inner = After(0.01, 5);
        async LoopTask<int> Waiter() => await Tasks.Shield(inner);
        var waiter = Waiter();
        await Tasks.Yield();
        waiter.Cancel();
        await Throws<CancelledError>(waiter);
        Assert.True(waiter.Cancelled);
        Assert.False(inner.Cancelled);
        Assert.Equal(5, await inner);
    });

    [Fact]
    public void CancellingTheInnerCancelsTheOuter() => Run(async () =>
    {
        var inner = After(100, 5);
        var outer = Tasks.Shield(inner);
        inner.Cancel();
        await Throws<CancelledError>(outer);
        Assert.True(outer.Cancelled);
    });

    [Fact]
    public void InnerExceptionAfterOuterCancelIsMarkedObserved()
    {
        // The runner fails on anything reported to the exception handler; collect the inner first
        // so that an unobserved exception would be reported.
        Run(async () =>
        {
            WeakReference inner = await StartAndAbandon();
            await Tasks.Sleep(0.03);
            for (int i = 0; i < 3 && inner.IsAlive; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                await Tasks.Yield();
            }

            Assert.False(inner.IsAlive);
            await Tasks.Yield();
        });

        static async LoopTask<WeakReference> StartAndAbandon()
        {
            var task = FailAfter(0.01, new FormatException("lost"));
            var outer = Tasks.Shield(task);
            outer.Cancel();
            await Tasks.Yield();
            return new WeakReference(task);
        }
    }

    [Fact]
    public void CancellationTokenCancelsOnlyTheOuter() => Run(async () =>
    {
        using var cts = new CancellationTokenSource();
        var inner = After(0.01, 5);
        var outer = Tasks.Shield(inner, cts.Token);
        cts.Cancel();
        await Throws<CancelledError>(outer);
        Assert.Equal(5, await inner);
    });
}
