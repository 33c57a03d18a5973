using static Tulip.Tests.Synchronization.SyncRunner;

namespace Tulip.Tests.Synchronization;

using Tulip.Synchronization;

/// <summary>asyncio's test_locks.py ConditionTests (3.13, with gh-111693 and gh-112202), on Tulip's <see cref="Condition"/>.</summary>
public sealed class ConditionTests
{
    [Fact]
    public void Wait_ReleasesTheLock_AndNotifiedWaitersReacquireItInOrder() => Run(async () =>
    {
        var cond = new Condition();
        var result = new List<int>();

        async LoopTask C(int n)
        {
            await cond.AcquireAsync();
            await cond.WaitAsync();
            result.Add(n);
        }

        var t1 = Spawn(() => C(1));
        var t2 = Spawn(() => C(2));
        var t3 = Spawn(() => C(3));
        await Ticks(3);
        Assert.Empty(result);
        Assert.False(cond.Locked);
        Assert.Equal(3, cond.WaiterCount);

        await cond.AcquireAsync();
        cond.Notify();
        await Ticks(3);
        Assert.Empty(result);
        Assert.True(cond.Locked);

        cond.Release();
        await Ticks(3);
        Assert.Equal([1], result);
        Assert.True(cond.Locked);

        cond.Notify(2);
        await Ticks(3);
        Assert.Equal([1], result);
        Assert.True(cond.Locked);

        cond.Release();
        await Ticks(3);
        Assert.Equal([1, 2], result);
        Assert.True(cond.Locked);

        cond.Release();
        await Ticks(3);
        Assert.Equal([1, 2, 3], result);
        Assert.True(cond.Locked);
        Assert.True(t1.Done && t2.Done && t3.Done);
    });

    [Fact]
    public void WaitCancelled_StillReacquiresTheLock() => Run(async () =>
    {
        var cond = new Condition();
        await cond.AcquireAsync();
        var wait = Spawn(() => cond.WaitAsync());
        EventLoop.GetRunningLoop().CallSoon(() => wait.Cancel());
        await Throws<CancelledError>(wait);
        Assert.Equal(0, cond.WaiterCount);
        Assert.True(cond.Locked);
    });

    /// <summary>Notified, then cancelled while the lock is contested: the wait ends holding the lock.</summary>
    [Fact]
    public void WaitCancelledWhileContested_EndsHoldingTheLock() => Run(async () =>
    {
        var cond = new Condition();
        await cond.AcquireAsync();
        var waitTask = Spawn(() => cond.WaitAsync());
        await Tick();
        Assert.False(cond.Locked);

        await cond.AcquireAsync();
        cond.Notify();
        var loop = EventLoop.GetRunningLoop();
        loop.CallSoon(() => waitTask.Cancel());
        loop.CallSoon(cond.Release);
        await Settle([waitTask]);
        Assert.True(cond.Locked);
    });

    /// <summary>bpo-32841: cancelled after the notification, while re-acquiring: cancelled, and it did run.</summary>
    [Fact]
    public void WaitCancelledAfterNotify_IsCancelledOnceItHasTheLock() => Run(async () =>
    {
        var cond = new Condition();
        bool waited = false;
        var waiter = Spawn(async () =>
        {
            using (await cond.AcquireAsync())
            {
                waited = true;
                await cond.WaitAsync();
            }
        });
        await Tick();

        await cond.AcquireAsync();
        cond.Notify();
        await Ticks(2);
        waiter.Cancel();
        await Tick();
        cond.Release();
        await Settle([waiter]);

        Assert.True(waiter.Cancelled);
        Assert.True(waited);
        Assert.False(cond.Locked);
    });

    [Fact]
    public void Wait_WithoutTheLock_Throws() => Run(async () =>
    {
        var cond = new Condition();
        var ex = Assert.Throws<InvalidOperationException>(() => cond.WaitAsync());
        Assert.Contains("lock", ex.Message, StringComparison.Ordinal);
        await Tick();
    });

    [Fact]
    public void WaitFor_WaitsUntilThePredicateHolds() => Run(async () =>
    {
        var cond = new Condition();
        bool ready = false;
        var result = new List<int>();
        var t = Spawn(async () =>
        {
            await cond.AcquireAsync();
            await cond.WaitForAsync(() => ready);
            result.Add(1);
            cond.Release();
        });
        await Ticks(2);
        Assert.Empty(result);

        await cond.AcquireAsync();
        cond.Notify();
        cond.Release();
        await Ticks(4);
        Assert.Empty(result);

        ready = true;
        await cond.AcquireAsync();
        cond.Notify();
        cond.Release();
        await t;
        Assert.Equal([1], result);
    });

    [Fact]
    public void WaitFor_APredicateTrueAtOnce_NeedsNoLock_AFalseOneDoes() => Run(async () =>
    {
        var cond = new Condition();
        var done = cond.WaitForAsync(() => true);
        Assert.True(done.IsCompletedSuccessfully);
        await done;
        Assert.Throws<InvalidOperationException>(() => cond.WaitForAsync(() => false));
        Assert.Throws<ArgumentNullException>(() => cond.WaitForAsync(null!));
    });

    [Fact]
    public void Notify_WakesThatManyOldestFirst() => Run(async () =>
    {
        var cond = new Condition();
        var result = new List<int>();

        async LoopTask C(int n)
        {
            await cond.AcquireAsync();
            await cond.WaitAsync();
            result.Add(n);
            cond.Release();
        }

        var tasks = new[] { Spawn(() => C(1)), Spawn(() => C(2)), Spawn(() => C(3)) };
        await Ticks(2);
        Assert.Empty(result);

        await cond.AcquireAsync();
        cond.Notify(1);
        cond.Release();
        await Ticks(4);
        Assert.Equal([1], result);

        await cond.AcquireAsync();
        cond.Notify(1);
        cond.Notify(2048);
        cond.Release();
        await Settle(tasks);
        Assert.Equal([1, 2, 3], result);
        Assert.All(tasks, t => Assert.False(t.Cancelled));
    });

    [Fact]
    public void NotifyAll_WakesEveryWaiter() => Run(async () =>
    {
        var cond = new Condition();
        var result = new List<int>();

        async LoopTask C(int n)
        {
            await cond.AcquireAsync();
            await cond.WaitAsync();
            result.Add(n);
            cond.Release();
        }

        var t1 = Spawn(() => C(1));
        var t2 = Spawn(() => C(2));
        await Ticks(2);
        Assert.Empty(result);

        await cond.AcquireAsync();
        cond.NotifyAll();
        cond.Release();
        await t1;
        await t2;
        Assert.Equal([1, 2], result);
    });

    [Fact]
    public void Notify_WithoutTheLock_Throws_AndANegativeCountIsRefused() => Run(async () =>
    {
        var cond = new Condition();
        Assert.Throws<InvalidOperationException>(() => cond.Notify());
        Assert.Throws<InvalidOperationException>(cond.NotifyAll);
        await cond.AcquireAsync();
        Assert.Throws<ArgumentOutOfRangeException>(() => cond.Notify(-1));
        cond.Release();
    });

    [Fact]
    public void Repr_SaysLockedOrUnlockedAndTheWaiters() => Run(async () =>
    {
        var cond = new Condition();
        Assert.Equal("<Condition [unlocked]>", cond.ToString());
        await cond.AcquireAsync();
        Assert.Equal("<Condition [locked]>", cond.ToString());
        var waiter = Spawn(async () =>
        {
            await cond.AcquireAsync();
            await cond.WaitAsync();
            cond.Release();
        });
        cond.Release();
        await Ticks(2);
        Assert.Equal("<Condition [unlocked, waiters:1]>", cond.ToString());
        waiter.Cancel();
        await Settle([waiter]);
    });

    [Fact]
    public void UsingBlock_HoldsTheLockInside() => Run(async () =>
    {
        var cond = new Condition();
        Assert.False(cond.Locked);
        using (await cond.AcquireAsync())
        {
            Assert.True(cond.Locked);
        }

        Assert.False(cond.Locked);
    });

    [Fact]
    public void ExplicitLock_IsTheConditionsLock() => Run(async () =>
    {
        async LoopTask Check(Lock? given, Condition? cond)
        {
            var gate = given ?? new Lock();
            cond ??= new Condition(gate);
            Assert.Same(gate, cond.Lock);
            Assert.False(gate.Locked || cond.Locked);
            using (await cond.AcquireAsync())
            {
                Assert.True(gate.Locked && cond.Locked);
            }

            Assert.False(gate.Locked || cond.Locked);
            using (await gate.AcquireAsync())
            {
                Assert.True(gate.Locked && cond.Locked);
            }

            Assert.False(gate.Locked || cond.Locked);
        }

        await Check(null, null);
        await Check(new Lock(), null);
        var shared = new Lock();
        await Check(shared, new Condition(shared));
    });

    /// <summary>asyncio's test_timeout_in_block: a wait that times out ends with TimeoutError holding the lock again.</summary>
    [Fact]
    public void WaitUnderTimeout_TimesOutAndHoldsTheLockAgain() => Run(async () =>
    {
        var cond = new Condition();
        using (await cond.AcquireAsync())
        {
            await Throws<TimeoutError>(Tasks.WaitFor(cond.WaitAsync(), 0.5));
            Assert.True(cond.Locked);
            Assert.Equal(0, cond.WaiterCount);
        }

        Assert.False(cond.Locked);
    });

    /// <summary>gh-111693: the CancelledError of a wait cancelled while it waits comes out as it was raised.</summary>
    [Fact]
    public void CancelledWhileWaiting_TheCancellationComesOutWithItsMessage() => Run(async () =>
    {
        var cond = new Condition();
        var task = Spawn(async () =>
        {
            using (await cond.AcquireAsync())
            {
                await cond.WaitForAsync(() => false);
            }
        });
        await Ticks(2);
        task.Cancel("foo");
        var error = await Throws<CancelledError>(task);
        Assert.Equal("foo", error.Message);
        Assert.False(cond.Locked);
    });

    /// <summary>gh-111693: cancelled while re-acquiring the lock: the cancellation comes out once the lock is back.</summary>
    [Fact]
    public void CancelledWhileReacquiring_TheCancellationComesOutWithItsMessage() => Run(async () =>
    {
        var cond = new Condition();
        bool wake = false;
        bool heldAtCancel = false;
        var task = Spawn(async () =>
        {
            await cond.AcquireAsync();
            try
            {
                await cond.WaitForAsync(() => wake);
            }
            catch (CancelledError)
            {
                heldAtCancel = cond.Locked;
                throw;
            }
            finally
            {
                cond.Release();
            }
        });
        await Ticks(2);
        await cond.AcquireAsync();
        wake = true;
        cond.Notify();
        await Ticks(2);
        // The task now waits for the lock again; cancel it there.
        task.Cancel("foo");
        cond.Release();
        var error = await Throws<CancelledError>(task);
        Assert.Equal("foo", error.Message);
        Assert.True(heldAtCancel);
        Assert.False(cond.Locked);
    });

    /// <summary>
    /// gh-112202: a consumer notified and cancelled in the same iteration must not swallow the
    /// notification: the other consumer takes the item.
    /// </summary>
    [Fact]
    public void CancelledAsItIsNotified_TheNotificationIsNotLost() => Run(async () =>
    {
        await NotifiedConsumerCancelled(settleBeforeCancel: false);
    });

    /// <summary>gh-112202: as above, but the consumer is cancelled while it re-acquires the lock.</summary>
    [Fact]
    public void CancelledWhileReacquiringAfterNotify_TheNotificationIsNotLost() => Run(async () =>
    {
        await NotifiedConsumerCancelled(settleBeforeCancel: true);
    });

    [Fact]
    public void CancellationToken_CancelsTheWait_WhichStillReacquires() => Run(async () =>
    {
        var cond = new Condition();
        using var cts = new CancellationTokenSource();
        await cond.AcquireAsync();
        var wait = cond.WaitAsync(cts.Token);
        Assert.False(cond.Locked);
        cts.Cancel();
        await Throws<CancelledError>(wait);
        Assert.True(cond.Locked);
        Assert.Equal(0, cond.WaiterCount);
        cond.Release();
    });

    private static async LoopTask NotifiedConsumerCancelled(bool settleBeforeCancel)
    {
        var cond = new Condition();
        int state = 0;

        async LoopTask Consumer()
        {
            using (await cond.AcquireAsync())
            {
                while (true)
                {
                    await cond.WaitForAsync(() => state != 0);
                    if (state < 0)
                    {
                        return;
                    }

                    state--;
                }
            }
        }

        var c0 = Spawn(Consumer);
        var c1 = Spawn(Consumer);
        await Ticks(3);
        using (await cond.AcquireAsync())
        {
            state++;
            cond.Notify(1);
            if (settleBeforeCancel)
            {
                // The notified consumer wakes and now waits to get the lock back.
                await Ticks(3);
            }

            c0.Cancel();
            try
            {
                await Tasks.WaitFor(cond.WaitForAsync(() => state == 0).AsFuture(), 0.01);
            }
            catch (TimeoutError)
            {
            }

            Assert.Equal(0, state);
            state = -1;
            cond.NotifyAll();
        }

        await c1;
        await Settle([c0]);
        Assert.True(c0.Cancelled);
    }
}
