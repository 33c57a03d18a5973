using Tulip;
using static Tulip.Tests.Combinators.LoopRunner;

namespace Tulip.Tests.Combinators;

/// <summary>TaskGroup as an IAsyncDisposable: the same exit as <c>await using</c>, as a ValueTask.</summary>
public class TaskGroupAsyncDisposableTests
{
    [Fact]
    public void ThroughTheInterface_WaitsForEveryTask() => Run(async () =>
    {
        var tg = new TaskGroup();
        var a = tg.CreateTask(() => After(5, 1));
        var b = tg.CreateTask(() => After(0, 2));
        IAsyncDisposable disposable = tg;
        await disposable.DisposeAsync();
        Assert.Equal(1, a.Result());
        Assert.Equal(2, b.Result());
    });

    [Fact]
    public void ThroughTheInterface_AFailureIsAnExceptionGroup() => Run(async () =>
    {
        LoopTask<int>? sibling = null;
        async LoopTask Group()
        {
            var tg = new TaskGroup();
            sibling = tg.CreateTask(() => After(3600, 1));
            _ = tg.CreateTask(() => FailAfter(1, new FormatException("bad")));
            IAsyncDisposable disposable = tg;
            await disposable.DisposeAsync();
        }

        var error = await Throws<ExceptionGroup>(Group());
        Assert.IsType<FormatException>(Assert.Single(error.InnerExceptions));
        Assert.True(sibling!.Cancelled);
    });

    [Fact]
    public void ThroughTheInterface_CancellingTheParentWhileItWaits_CancelsTheTasksAtOnce() => Run(async () =>
    {
        var loop = EventLoop.GetRunningLoop();
        LoopTask<int>? child = null;
        var waiting = loop.CreateFuture<VoidResult>();
        async LoopTask Parent()
        {
            var tg = new TaskGroup();
            child = tg.CreateTask(() => After(3600, 1));
            IAsyncDisposable disposable = tg;
            var leaving = disposable.DisposeAsync();
            waiting.SetResult(default);
            await leaving;
        }

        var parent = loop.CreateTask(Parent);
        await waiting;
        double before = loop.Time();
        parent.Cancel();
        await Throws<CancelledError>(parent);
        Assert.True(parent.Cancelled);
        Assert.True(child!.Cancelled);
        Assert.Equal(before, loop.Time());
    });

    [Fact]
    public void LeavingTwice_IsRefused() => Run(async () =>
    {
        var tg = new TaskGroup();
        IAsyncDisposable disposable = tg;
        await disposable.DisposeAsync();
#pragma warning disable CA2012 // it throws before making a ValueTask
        Assert.Throws<InvalidOperationException>(() => { _ = disposable.DisposeAsync(); });
#pragma warning restore CA2012
    });
}
