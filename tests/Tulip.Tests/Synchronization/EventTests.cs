using static Tulip.Tests.Synchronization.SyncRunner;

namespace Tulip.Tests.Synchronization;

using Tulip.Synchronization;

/// <summary>asyncio's test_locks.py EventTests, on Tulip's <see cref="Event"/>.</summary>
public sealed class EventTests
{
    [Fact]
    public void Repr_SaysSetOrUnsetAndTheWaiters() => Run(async () =>
    {
        var ev = new Event();
        Assert.Equal("<Event [unset]>", ev.ToString());
        var waiter = ev.WaitAsync().AsFuture();
        Assert.Equal("<Event [unset, waiters:1]>", ev.ToString());
        ev.Set();
        Assert.StartsWith("<Event [set", ev.ToString(), StringComparison.Ordinal);
        await waiter;
        await Tick();
        Assert.Equal("<Event [set]>", ev.ToString());
    });

    [Fact]
    public void Wait_EveryWaiterIsWokenInOrder_AndALateWaiterPassesAtOnce() => Run(async () =>
    {
        var ev = new Event();
        Assert.False(ev.IsSet);
        var result = new List<int>();

        async LoopTask C(int n)
        {
            await ev.WaitAsync();
            result.Add(n);
        }

        var t1 = Spawn(() => C(1));
        var t2 = Spawn(() => C(2));
        await Tick();
        Assert.Empty(result);

        var t3 = Spawn(() => C(3));
        ev.Set();
        await Tick();
        Assert.Equal([3, 1, 2], result);
        Assert.True(t1.Done && t2.Done && t3.Done);
    });

    [Fact]
    public void Wait_OnASetEvent_CompletesAtOnce() => Run(async () =>
    {
        var ev = new Event();
        ev.Set();
        var wait = ev.WaitAsync();
        Assert.True(wait.IsCompletedSuccessfully);
        await wait;
    });

    [Fact]
    public void WaitCancelled_LeavesTheQueue() => Run(async () =>
    {
        var ev = new Event();
        var wait = Spawn(async () => { await ev.WaitAsync(); });
        EventLoop.GetRunningLoop().CallSoon(() => wait.Cancel());
        await Throws<CancelledError>(wait);
        Assert.Equal(0, ev.WaiterCount);
    });

    [Fact]
    public void Clear_ResetsTheFlag() => Run(() =>
    {
        var ev = new Event();
        Assert.False(ev.IsSet);
        ev.Set();
        Assert.True(ev.IsSet);
        ev.Clear();
        Assert.False(ev.IsSet);
        return Ticks(0);
    });

    /// <summary>A set followed at once by a clear still wakes the waiters that were there.</summary>
    [Fact]
    public void ClearRightAfterSet_StillWakesTheWaiter() => Run(async () =>
    {
        var ev = new Event();
        var result = new List<int>();
        var t = Spawn(async () =>
        {
            await ev.WaitAsync();
            result.Add(1);
        });
        await Tick();
        Assert.Empty(result);

        ev.Set();
        ev.Clear();
        Assert.False(ev.IsSet);
        ev.Set();
        ev.Set();
        Assert.Equal(1, ev.WaiterCount);

        await Tick();
        Assert.Equal([1], result);
        Assert.Equal(0, ev.WaiterCount);
        Assert.True(t.Done);
    });

    /// <summary>A waiter cancelled before the set takes nothing from the others.</summary>
    [Fact]
    public void CancelledWaiter_DoesNotKeepTheOthersWaiting() => Run(async () =>
    {
        var ev = new Event();
        var t1 = Spawn(async () => { await ev.WaitAsync(); });
        var t2 = Spawn(async () => { await ev.WaitAsync(); });
        await Tick();
        t1.Cancel();
        ev.Set();
        await Throws<CancelledError>(t1);
        await t2;
        Assert.Equal(0, ev.WaiterCount);
    });

    /// <summary>A waiter woken by Set and cancelled before it runs still returns from its wait; the
    /// cancellation comes at its next await.</summary>
    [Fact]
    public void WaiterCancelledAsItIsWoken_ReturnsFromTheWait() => Run(async () =>
    {
        var ev = new Event();
        var steps = new List<string>();
        var t = Spawn(async () =>
        {
            await ev.WaitAsync();
            steps.Add("woken");
            await Tick();
            steps.Add("not cancelled");
        });
        await Tick();
        ev.Set();
        t.Cancel();
        await Throws<CancelledError>(t);
        Assert.Equal(["woken"], steps);
    });

    [Fact]
    public void CancellationToken_CancelsTheWait() => Run(async () =>
    {
        var ev = new Event();
        using var cts = new CancellationTokenSource();
        var wait = ev.WaitAsync(cts.Token).AsFuture();
        await Tick();
        cts.Cancel();
        await Throws<CancelledError>(wait);
        Assert.Equal(0, ev.WaiterCount);

        var refused = ev.WaitAsync(cts.Token);
        Assert.True(refused.IsCompleted && !refused.IsCompletedSuccessfully);
        Assert.Equal(0, ev.WaiterCount);
    });
}
