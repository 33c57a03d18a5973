using Tulip;
using static Tulip.Tests.Combinators.LoopRunner;

namespace Tulip.Tests.Combinators; // not ".Tasks": that would hide the Tasks class from Tulip.Tests.*

public class WaitTests
{
    [Fact]
    public void AllCompletedWaitsForEveryFuture() => Run(async () =>
    {
        var a = After(0, 1);
        var b = After(0.01, 2);
        var (done, pending) = await Tasks.Wait([a, b]);
        Assert.Equal(2, done.Count);
        Assert.Empty(pending);
        Assert.Equal(1, a.Result());
        Assert.Equal(2, b.Result());
    });

    [Fact]
    public void FirstCompletedReturnsAtTheFirstDone() => Run(async () =>
    {
        var fast = After(0, 1);
        var slow = After(100, 2);
        var (done, pending) = await Tasks.Wait([fast, slow], mode: WaitMode.FirstCompleted);
        Assert.Equal([fast], done);
        Assert.Equal([slow], pending);
        Assert.False(slow.Done);
        slow.Cancel();
    });

    [Fact]
    public void FirstExceptionReturnsAtTheFirstError() => Run(async () =>
    {
        var ok = After(0, 1);
        var bad = FailAfter(0.01, new InvalidOperationException("boom"));
        var slow = After(100, 3);
        var (done, pending) = await Tasks.Wait([ok, bad, slow], mode: WaitMode.FirstException);
        Assert.Equal(new HashSet<Future> { ok, bad }, done.ToHashSet());
        Assert.Equal([slow], pending);
        Assert.IsType<InvalidOperationException>(bad.Exception());
        slow.Cancel();
    });

    [Fact]
    public void FirstExceptionWithoutErrorsWaitsForAll() => Run(async () =>
    {
        var a = After(0, 1);
        var b = After(0.01, 2);
        var (done, pending) = await Tasks.Wait([a, b], mode: WaitMode.FirstException);
        Assert.Equal(2, done.Count);
        Assert.Empty(pending);
    });

    [Fact]
    public void FirstExceptionDoesNotCountCancellation() => Run(async () =>
    {
        var cancelled = After(100, 1);
        var slow = After(0.02, 2);
        cancelled.Cancel();
        var (done, pending) = await Tasks.Wait([cancelled, slow], mode: WaitMode.FirstException);
        Assert.Equal(2, done.Count);
        Assert.Empty(pending);
    });

    [Fact]
    public void TimeoutReturnsPendingWithoutCancelling() => Run(async () =>
    {
        var slow = After(100, 1);
        var (done, pending) = await Tasks.Wait([slow], timeout: 0.01);
        Assert.Empty(done);
        Assert.Equal([slow], pending);
        Assert.False(slow.Done);
        Assert.False(slow.Cancelled);
        slow.Cancel();
    });

    [Fact]
    public void AlreadyDoneFuturesAreDone() => Run(async () =>
    {
        var loop = (IEventLoop)Tasks.CurrentTask()!.Loop;
        var f = loop.CreateFuture<int>();
        f.SetResult(5);
        var (done, pending) = await Tasks.Wait([f, f], timeout: 0);
        Assert.Equal([f], done);
        Assert.Empty(pending);
    });

    [Fact]
    public void EmptySetIsRefused() => Run(async () =>
    {
        Assert.Throws<ArgumentException>(() => Tasks.Wait([]));
        await Tasks.Yield();
    });

    [Fact]
    public void CancellingTheWaiterLeavesTheFuturesRunning() => Run(async () =>
    {
        var slow = After(100, 1);
        var wait = Tasks.Wait([slow]);
        await Tasks.Yield();
        wait.Cancel();
        await Throws<CancelledError>(wait);
        Assert.False(slow.Done);
        slow.Cancel();
    });

    [Fact]
    public void CancellationTokenCancelsTheWait() => Run(async () =>
    {
        using var cts = new CancellationTokenSource();
        var slow = After(100, 1);
        var wait = Tasks.Wait([slow], cancellationToken: cts.Token);
        await Tasks.Yield();
        cts.Cancel();
        await Throws<OperationCanceledException>(wait);
        Assert.True(wait.Cancelled);
        Assert.False(slow.Done);
        slow.Cancel();
    });
}
