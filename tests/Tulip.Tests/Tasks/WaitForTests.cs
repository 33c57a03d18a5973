using Tulip;
using static Tulip.Tests.Combinators.LoopRunner;

namespace Tulip.Tests.Combinators;

public class WaitForTests
{
    [Fact]
    public void ReturnsTheResultInTime() => Run(async () =>
    {
        Assert.Equal(3, await Tasks.WaitFor(After(0, 3), 100));
        Assert.Equal(4, await Tasks.WaitFor(After(0, 4), null));
    });

    [Fact]
    public void TimeoutCancelsTheInnerAndThrowsTimeoutError() => Run(async () =>
    {
        var inner = After(100, 1);
        await Throws<TimeoutError>(Tasks.WaitFor(inner, 0.01));
        Assert.True(inner.Cancelled);
    });

    [Fact]
    public void TimeoutCancelsAPlainFuture() => Run(async () =>
    {
        var loop = Tasks.CurrentTask()!.Loop;
        var future = loop.CreateFuture<int>();
        await Throws<TimeoutError>(Tasks.WaitFor(future, 0.01));
        Assert.True(future.Cancelled);
    });

    [Fact]
    public void InnerThatIgnoresTheCancellationGivesItsResult() => Run(async () =>
    {
        async LoopTask<int> Stubborn()
        {
            try
            {
                await Tasks.Sleep(100);
            }
            catch (CancelledError)
            {
            }

            return 9;
        }

        Assert.Equal(9, await Tasks.WaitFor(Stubborn(), 0.01));
    });

    [Fact]
    public void AlreadyDoneWithZeroTimeoutGivesTheResult() => Run(async () =>
    {
        var loop = Tasks.CurrentTask()!.Loop;
        var future = loop.CreateFuture<int>();
        future.SetResult(5);
        Assert.Equal(5, await Tasks.WaitFor(future, 0));
        Assert.Equal(5, await Tasks.WaitFor(future, 100));
    });

    [Fact]
    public void ZeroTimeoutCancelsAPendingFuture() => Run(async () =>
    {
        var inner = After(100, 1);
        await Throws<TimeoutError>(Tasks.WaitFor(inner, 0));
        Assert.True(inner.Cancelled);
    });

    [Fact]
    public void InnerExceptionPropagates() => Run(async () =>
    {
        var error = await Throws<FormatException>(Tasks.WaitFor(FailAfter(0, new FormatException("x")), 100));
        Assert.Equal("x", error.Message);
    });

    [Fact]
    public void CancellingTheOuterCancelsTheInner() => Run(async () =>
    {
        var inner = After(100, 1);
        var outer = Tasks.WaitFor(inner, 100);
        await Tasks.Yield();
        outer.Cancel();
        await Throws<CancelledError>(outer);
        Assert.True(outer.Cancelled);
        Assert.True(inner.Cancelled);
    });

    [Fact]
    public void CancellationTokenCancelsTheInner() => Run(async () =>
    {
        using var cts = new CancellationTokenSource();
        var inner = After(100, 1);
        var outer = Tasks.WaitFor(inner, 100, cts.Token);
        await Tasks.Yield();
        cts.Cancel();
        await Throws<OperationCanceledException>(outer);
        Assert.True(inner.Cancelled);
    });

    [Fact]
    public void UntypedFutureOverload() => Run(async () =>
    {
        Future inner = After(100, 1);
        await Throws<TimeoutError>(Tasks.WaitFor(inner, 0.01));
        Assert.True(inner.Cancelled);
        Future done = After(0, 1);
        await Tasks.WaitFor(done, 1);
    });
}
