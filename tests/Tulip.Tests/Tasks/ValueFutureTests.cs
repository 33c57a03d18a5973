using Tulip;
using static Tulip.Tests.Combinators.LoopRunner;

namespace Tulip.Tests.Combinators;

/// <summary>
/// <see cref="ValueFuture{T}"/>: a result already there, or a future; and the reusable future behind
/// the hot paths, which is reset for the next wait only when no one can still see the old one.
/// </summary>
public class ValueFutureTests
{
    [Fact]
    public void ADoneValueGivesItsResultWithoutAFuture() => Run(async () =>
    {
        var value = new ValueFuture<int>(7);
        Assert.True(value.IsCompleted);
        Assert.True(value.IsCompletedSuccessfully);
        Assert.Equal(7, await value);
        Assert.Equal(7, value.Result());
        Assert.Equal(7, await value.AsFuture());
    });

    [Fact]
    public void APendingValueCompletesWithItsFuture() => Run(async () =>
    {
        var loop = (BaseEventLoop)Tasks.CurrentTask()!.Loop;
        var future = loop.CreateFuture<int>();
        var value = new ValueFuture<int>(future);
        Assert.False(value.IsCompleted);
        Assert.Throws<InvalidStateError>(() => value.Result());
        loop.CallLater(0.01, () => future.SetResult(3));
        Assert.Equal(3, await value);
    });

    [Fact]
    public void CancellingATaskAwaitingAValueFutureDeliversCancelledErrorAtTheAwait() => Run(async () =>
    {
        var loop = (BaseEventLoop)Tasks.CurrentTask()!.Loop;
        var future = loop.CreateFuture<int>();
        async LoopTask<int> Waiter() => await new ValueFuture<int>(future);
        var waiter = Waiter();
        await Tasks.Yield();
        waiter.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await waiter);
        Assert.True(future.Cancelled); // the task handed the cancel to the future it waited on
    });

    [Fact]
    public void AReusableFutureIsResetOnlyAfterItsAwaiterTookTheResult() => Run(async () =>
    {
        var loop = (BaseEventLoop)Tasks.CurrentTask()!.Loop;
        ReusableFuture<int>? slot = null;
        var first = ReusableFuture<int>.Next(ref slot, loop);
        Assert.NotSame(first, ReusableFuture<int>.Next(ref slot, loop)); // pending: never reset, a new one
        slot = first;
        first.SetResult(1);
        Assert.NotSame(first, ReusableFuture<int>.Next(ref slot, loop)); // done but not taken: a new one
        slot = first;
        Assert.Equal(1, await new ValueFuture<int>(first));
        var again = ReusableFuture<int>.Next(ref slot, loop);
        Assert.Same(first, again);
        Assert.False(again.Done);
        again.SetResult(2);
        Assert.Equal(2, await new ValueFuture<int>(again));
    });

    [Fact]
    public void AReusableFutureGivenOutAsAFutureIsNeverReset() => Run(async () =>
    {
        var loop = (BaseEventLoop)Tasks.CurrentTask()!.Loop;
        ReusableFuture<int>? slot = null;
        var first = ReusableFuture<int>.Next(ref slot, loop);
        var kept = new ValueFuture<int>(first).AsFuture();
        first.SetResult(5);
        Assert.Equal(5, await new ValueFuture<int>(first));
        Assert.NotSame(first, ReusableFuture<int>.Next(ref slot, loop));
        Assert.Equal(5, kept.Result());
    });

    [Fact]
    public void AFailureIsTakenAndTheFutureReused() => Run(async () =>
    {
        var loop = (BaseEventLoop)Tasks.CurrentTask()!.Loop;
        ReusableFuture<int>? slot = null;
        var first = ReusableFuture<int>.Next(ref slot, loop);
        first.SetException(new FormatException("bad"));
        await Assert.ThrowsAsync<FormatException>(async () => await new ValueFuture<int>(first));
        var again = ReusableFuture<int>.Next(ref slot, loop);
        Assert.Same(first, again);
        Assert.False(again.Done);
        again.SetResult(1);
        Assert.Equal(1, await new ValueFuture<int>(again));
    });

    [Fact]
    public void AskingWhetherItSucceededDoesNotMarkAFailureObserved()
    {
        using var loop = new Tulip.Testing.TestEventLoop();
        var reported = new List<ExceptionContext>();
        loop.SetExceptionHandler((_, context) => reported.Add(context));
        FailAskAndDrop(loop);

        // The failure was never looked at: it must still be reported once the future is collected.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        loop.RunUntilIdle();
        Assert.Contains(reported, c => c.Exception is FormatException);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void FailAskAndDrop(BaseEventLoop loop)
    {
        var future = loop.CreateFuture<int>();
        future.SetException(new FormatException("never awaited"));
        Assert.False(new ValueFuture<int>(future).IsCompletedSuccessfully);
    }
}
