using Tulip.Testing;
using static Tulip.Tests.Synchronization.SyncRunner;

namespace Tulip.Tests.Synchronization;

using Tulip.Synchronization;

/// <summary>asyncio's test_locks.py LockTests, on Tulip's <see cref="Lock"/>.</summary>
public sealed class LockTests
{
    [Fact]
    public void Repr_SaysLockedOrUnlockedAndTheWaiters() => Run(async () =>
    {
        var gate = new Lock();
        Assert.Equal("<Lock [unlocked]>", gate.ToString());
        await gate.AcquireAsync();
        Assert.Equal("<Lock [locked]>", gate.ToString());
        var waiter = Spawn(async () => { await gate.AcquireAsync(); });
        await Tick();
        Assert.Equal("<Lock [locked, waiters:1]>", gate.ToString());
        waiter.Cancel();
        await Settle([waiter]);
    });

    [Fact]
    public void Acquire_WakesWaitersOneAtATimeInFifoOrder() => Run(async () =>
    {
        var gate = new Lock();
        var result = new List<int>();
        await gate.AcquireAsync();

        async LoopTask C(int n)
        {
            await gate.AcquireAsync();
            result.Add(n);
        }

        var t1 = Spawn(() => C(1));
        var t2 = Spawn(() => C(2));
        await Tick();
        Assert.Empty(result);

        gate.Release();
        await Tick();
        Assert.Equal([1], result);
        await Tick();
        Assert.Equal([1], result);

        var t3 = Spawn(() => C(3));
        gate.Release();
        await Tick();
        Assert.Equal([1, 2], result);

        gate.Release();
        await Tick();
        Assert.Equal([1, 2, 3], result);
        Assert.True(t1.Done && t2.Done && t3.Done);
        Assert.True(gate.Locked);
    });

    [Fact]
    public void AcquireCancelledWhileWaiting_LeavesTheQueue() => Run(async () =>
    {
        var gate = new Lock();
        await gate.AcquireAsync();
        var task = Spawn(async () => { await gate.AcquireAsync(); });
        EventLoop.GetRunningLoop().CallSoon(() => task.Cancel());
        await Throws<CancelledError>(task);
        Assert.Equal(0, gate.WaiterCount);
        Assert.True(gate.Locked);
    });

    /// <summary>
    /// A holds the lock, B and C wait; B is cancelled as A releases. The release must not be spent
    /// on B's cancelled waiter: C gets the lock (asyncio's test_cancel_race).
    /// </summary>
    [Fact]
    public void CancelRace_TheReleaseReachesTheNextWaiter() => Run(async () =>
    {
        var gate = new Lock();
        var loop = EventLoop.GetRunningLoop();

        async LoopTask LockIt(Future? blocker)
        {
            await gate.AcquireAsync();
            try
            {
                if (blocker is not null)
                {
                    await blocker;
                }
            }
            finally
            {
                gate.Release();
            }
        }

        var fa = loop.CreateFuture<VoidResult>();
        var ta = Spawn(() => LockIt(fa));
        await Tick();
        Assert.True(gate.Locked);
        var tb = Spawn(() => LockIt(null));
        await Tick();
        Assert.Equal(1, gate.WaiterCount);
        var tc = Spawn(() => LockIt(null));
        await Tick();
        Assert.Equal(2, gate.WaiterCount);

        fa.SetResult(default);
        tb.Cancel();
        await Tick();
        Assert.True(ta.Done);
        Assert.True(tb.Cancelled);
        await tc;
        Assert.False(gate.Locked);
    });

    /// <summary>bpo-32734: four acquirers, cancel the second as the first releases: only one takes the lock.</summary>
    [Fact]
    public void CancelReleaseRace_OnlyOneTakesTheLock() => Run(async () =>
    {
        var gate = new Lock();
        int lockCount = 0;
        int callCount = 0;

        async LoopTask LockIt()
        {
            callCount++;
            await gate.AcquireAsync();
            lockCount++;
        }

        await gate.AcquireAsync();
        LoopTask t1 = Spawn(LockIt);
        LoopTask t2 = Spawn(LockIt);
        LoopTask t3 = Spawn(LockIt);
        await Tick();

        EventLoop.GetRunningLoop().CallSoon(() =>
        {
            t1.Cancel();
            gate.Release();
        });
        await Throws<CancelledError>(t1);
        await Tick();

        Assert.Equal(1, lockCount);
        Assert.Equal(3, callCount);
        Assert.True(t1.Cancelled && t2.Done);

        t3.Cancel();
        await Tick();
        Assert.True(t3.Cancelled);
    });

    /// <summary>bpo-27585: the woken-to-be waiter is cancelled before the release; the next one must not deadlock.</summary>
    [Fact]
    public void FinishedWaiterCancelled_TheNextWaiterGetsTheLock() => Run(async () =>
    {
        var gate = new Lock();
        await gate.AcquireAsync();
        var tb = Spawn(async () => { await gate.AcquireAsync(); });
        await Tick();
        Assert.Equal(1, gate.WaiterCount);

        var tc = Spawn(async () => { await gate.AcquireAsync(); });
        tb.Cancel();
        gate.Release();
        await Tick();

        Assert.True(gate.Locked);
        Assert.True(tb.Cancelled);
        await tc;
    });

    /// <summary>
    /// A waiter woken by the release and cancelled before it runs keeps the lock (Tulip keeps a result
    /// that arrived); its cancellation comes at its next await, inside its using block, whose exit
    /// passes the lock to the next waiter: the wake-up is not swallowed.
    /// </summary>
    [Fact]
    public void WaiterCancelledAsItIsWoken_KeepsTheLockAndPassesItOn() => Run(async () =>
    {
        var gate = new Lock();
        var order = new List<string>();
        await gate.AcquireAsync();
        var tb = Spawn(async () =>
        {
            using (await gate.AcquireAsync())
            {
                order.Add("b holds it");
                await Tick();
                order.Add("b was not cancelled");
            }
        });
        var tc = Spawn(async () =>
        {
            using (await gate.AcquireAsync())
            {
                order.Add("c holds it");
            }
        });
        await Tick();
        Assert.Equal(2, gate.WaiterCount);

        gate.Release();
        tb.Cancel();
        await Throws<CancelledError>(tb);
        await tc;

        Assert.Equal(["b holds it", "c holds it"], order);
        Assert.False(gate.Locked);
        Assert.Equal(0, gate.WaiterCount);
    });

    [Fact]
    public void CancellationToken_CancelsAWaitLikeTaskCancellation() => Run(async () =>
    {
        var gate = new Lock();
        await gate.AcquireAsync();
        using var cts = new CancellationTokenSource();
        var waiting = gate.AcquireAsync(cts.Token).AsFuture();
        var next = Spawn(async () => { await gate.AcquireAsync(); });
        await Tick();
        cts.Cancel();
        await Throws<CancelledError>(waiting);
        Assert.True(waiting.Cancelled);

        gate.Release();
        await next;
        Assert.True(gate.Locked);
    });

    [Fact]
    public void CancellationToken_AlreadyCancelled_DoesNotTakeAFreeLock() => Run(async () =>
    {
        var gate = new Lock();
        var acquire = gate.AcquireAsync(new CancellationToken(canceled: true));
        Assert.True(acquire.IsCompleted);
        Assert.False(acquire.IsCompletedSuccessfully);
        Assert.False(gate.Locked);
        await Throws<CancelledError>(acquire.AsFuture());
    });

    [Fact]
    public void Release_NotAcquired_ThrowsSayingWhatToDo() => Run(() =>
    {
        var gate = new Lock();
        var ex = Assert.Throws<InvalidOperationException>(gate.Release);
        Assert.Contains("not locked", ex.Message, StringComparison.Ordinal);
        Assert.Contains("AcquireAsync", ex.Message, StringComparison.Ordinal);
        return Completed();
    });

    [Fact]
    public void Release_NoWaiters_Unlocks() => Run(async () =>
    {
        var gate = new Lock();
        await gate.AcquireAsync();
        Assert.True(gate.Locked);
        gate.Release();
        Assert.False(gate.Locked);
    });

    [Fact]
    public void UsingBlock_HoldsTheLockInside() => Run(async () =>
    {
        var gate = new Lock();
        using (await gate.AcquireAsync())
        {
            Assert.True(gate.Locked);
        }

        Assert.False(gate.Locked);
        default(LockReleaser).Dispose();
        Assert.False(gate.Locked);
    });

    [Fact]
    public void Releaser_DisposedTwice_ThrowsInsteadOfReleasingAgain() => Run(async () =>
    {
        var gate = new Lock();
        var releaser = await gate.AcquireAsync();
        releaser.Dispose();
        var ex = Assert.Throws<InvalidOperationException>(releaser.Dispose);
        Assert.Contains("not locked", ex.Message, StringComparison.Ordinal);
        Assert.False(gate.Locked);
    });

    [Fact]
    public void UsingBlock_ReleasesWhenTheBodyThrows() => Run(async () =>
    {
        var gate = new Lock();
        try
        {
            using (await gate.AcquireAsync())
            {
                throw new FormatException("body failed");
            }
        }
        catch (FormatException)
        {
        }

        Assert.False(gate.Locked);
    });

    [Fact]
    public void Acquire_JumpsAQueueOfCancelledWaitersOnly() => Run(async () =>
    {
        var gate = new Lock();
        await gate.AcquireAsync();
        var cancelled = gate.AcquireAsync().AsFuture();
        cancelled.Cancel();
        gate.Release();
        // The cancelled waiter is still queued (its callback has not run), yet the lock is free.
        var fast = gate.AcquireAsync();
        Assert.True(fast.IsCompletedSuccessfully);
        await fast;
        Assert.True(gate.Locked);
        await Tick();
        Assert.Equal(0, gate.WaiterCount);
    });

    private static LoopTask Completed() => Completer();

#pragma warning disable CS1998 // an async body with nothing to await: a task that is done at once
    private static async LoopTask Completer()
    {
    }
#pragma warning restore CS1998
}
