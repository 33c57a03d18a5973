using static Tulip.Tests.Synchronization.SyncRunner;

namespace Tulip.Tests.Synchronization;

using Tulip.Synchronization;

/// <summary>asyncio's test_locks.py SemaphoreTests (3.13, after gh-90155/bpo-45997 and gh-97545), on Tulip's <see cref="Semaphore"/>.</summary>
public sealed class SemaphoreTests
{
    [Fact]
    public void InitialValueZero_IsLocked() => Run(() =>
    {
        Assert.True(new Semaphore(0).Locked);
        Assert.False(new Semaphore().Locked);
        return Ticks(0);
    });

    [Fact]
    public void NegativeInitialValue_IsRefused()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new Semaphore(-1));
        Assert.Equal("value", ex.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => new BoundedSemaphore(-1));
    }

    [Fact]
    public void Repr_SaysLockedOrTheValueAndTheWaiters() => Run(async () =>
    {
        var sem = new Semaphore();
        Assert.Equal("<Semaphore [unlocked, value:1]>", sem.ToString());
        await sem.AcquireAsync();
        Assert.Equal("<Semaphore [locked]>", sem.ToString());
        var waiter = sem.AcquireAsync().AsFuture();
        Assert.Equal("<Semaphore [locked, waiters:1]>", sem.ToString());
        waiter.Cancel();
        await Tick();
        Assert.Equal("<BoundedSemaphore [unlocked, value:2]>", new BoundedSemaphore(2).ToString());
    });

    [Fact]
    public void Acquire_HandsReleasedPermitsToTheWaitersInOrder() => Run(async () =>
    {
        var sem = new Semaphore(3);
        var result = new List<int>();
        await sem.AcquireAsync();
        await sem.AcquireAsync();
        Assert.False(sem.Locked);

        async LoopTask C(int n)
        {
            await sem.AcquireAsync();
            result.Add(n);
        }

        var t1 = Spawn(() => C(1));
        var t2 = Spawn(() => C(2));
        var t3 = Spawn(() => C(3));
        await Tick();
        Assert.Equal([1], result);
        Assert.True(sem.Locked);
        Assert.Equal(2, sem.WaiterCount);
        Assert.Equal(0, sem.Value);

        var t4 = Spawn(() => C(4));
        sem.Release();
        sem.Release();
        Assert.Equal(0, sem.Value);

        await Tick();
        Assert.Equal(0, sem.Value);
        Assert.Equal([1, 2, 3], result);
        Assert.True(sem.Locked);
        Assert.Equal(1, sem.WaiterCount);
        Assert.True(t1.Done && t2.Done && t3.Done && !t4.Done);

        sem.Release();
        await t4;
        Assert.Equal([1, 2, 3, 4], result);
    });

    [Fact]
    public void AcquireCancelled_LeavesNoWaiterBehind() => Run(async () =>
    {
        var sem = new Semaphore();
        await sem.AcquireAsync();
        var acquire = Spawn(async () => { await sem.AcquireAsync(); });
        EventLoop.GetRunningLoop().CallSoon(() => acquire.Cancel());
        await Throws<CancelledError>(acquire);
        Assert.Equal(0, sem.WaiterCount);
        Assert.Equal(0, sem.Value);
    });

    /// <summary>Two waiters cancelled before a release: the permit goes to the third, not to the void.</summary>
    [Fact]
    public void CancelledBeforeAwoken_ThePermitGoesToTheNextWaiter() => Run(async () =>
    {
        var sem = new Semaphore(0);
        var tasks = Enumerable.Range(0, 4).Select(_ => Spawn(async () => { await sem.AcquireAsync(); })).ToArray();
        await Tick();

        tasks[0].Cancel();
        tasks[1].Cancel();
        sem.Release();
        await Ticks(2);
        Assert.True(tasks[2].Done && !tasks[2].Cancelled);
        Assert.False(tasks[3].Done);

        tasks[3].Cancel();
        await Settle(tasks);
        Assert.Equal(0, sem.Value);
        Assert.Equal(0, sem.WaiterCount);
    });

    [Fact]
    public void AcquireHang_ACancelledWaiterDoesNotStrandTheNext() => Run(async () =>
    {
        var sem = new Semaphore(0);
        var t1 = Spawn(async () => { await sem.AcquireAsync(); });
        var t2 = Spawn(async () => { await sem.AcquireAsync(); });
        await Tick();

        t1.Cancel();
        sem.Release();
        await Ticks(2);
        Assert.True(sem.Locked);
        Assert.True(t2.Done && !t2.Cancelled);
    });

    /// <summary>
    /// asyncio's test_acquire_no_hang: the holder releases, then cancels the waiter it just handed the
    /// permit to. In Tulip the waiter keeps the arrived permit (its body runs, the request is counted);
    /// what must hold in both: the permit comes back and the semaphore does not hang.
    /// </summary>
    [Fact]
    public void AcquireNoHang_CancellingTheWaiterThatWasJustHandedThePermit() => Run(async () =>
    {
        var sem = new Semaphore(1);
        var ran = new List<string>();
        LoopTask? t2 = null;
        var t1 = Spawn(async () =>
        {
            using (await sem.AcquireAsync())
            {
                await Tick();
            }

            t2!.Cancel();
        });
        t2 = Spawn(async () =>
        {
            using (await sem.AcquireAsync())
            {
                ran.Add("t2");
            }
        });

        await Settle([t1, t2]);
        Assert.False(t1.Cancelled);
        Assert.Equal(["t2"], ran);
        Assert.False(t2.Cancelled);
        Assert.Null(t2.Exception());
        Assert.Equal(1, t2.Cancelling());
        Assert.Equal(1, sem.Value);
        await Tasks.WaitFor(sem.AcquireAsync().AsFuture(), 1.0);
    });

    [Fact]
    public void BoundedSemaphore_ReleasedTooManyTimes_ThrowsSemaphoreFullException() => Run(async () =>
    {
        var sem = new BoundedSemaphore();
        var ex = Assert.Throws<SemaphoreFullException>(sem.Release);
        Assert.Contains("released too many times", ex.Message, StringComparison.Ordinal);

        using (await sem.AcquireAsync())
        {
            Assert.True(sem.Locked);
        }

        Assert.Throws<SemaphoreFullException>(sem.Release);
        Assert.Equal(1, sem.Value);
    });

    [Fact]
    public void UnboundedSemaphore_MayBeReleasedAboveItsInitialValue() => Run(async () =>
    {
        var sem = new Semaphore(1);
        sem.Release();
        Assert.Equal(2, sem.Value);
        await sem.AcquireAsync();
        await sem.AcquireAsync();
        Assert.True(sem.Locked);
    });

    [Fact]
    public void Release_NoWaiters_Unlocks() => Run(async () =>
    {
        var sem = new Semaphore();
        await sem.AcquireAsync();
        Assert.True(sem.Locked);
        sem.Release();
        Assert.False(sem.Locked);
    });

    [Fact]
    public void FifoOrder_EachTaskGetsItsTurnAgain() => Run(async () =>
    {
        var sem = new Semaphore(1);
        var result = new List<string>();

        async LoopTask Coro(string tag)
        {
            await sem.AcquireAsync();
            result.Add($"{tag}_1");
            await Tasks.Sleep(0.01);
            sem.Release();

            await sem.AcquireAsync();
            result.Add($"{tag}_2");
            await Tasks.Sleep(0.01);
            sem.Release();
        }

        await using (var tg = new TaskGroup())
        {
            _ = tg.CreateTask(() => Coro("c1"));
            _ = tg.CreateTask(() => Coro("c2"));
            _ = tg.CreateTask(() => Coro("c3"));
        }

        Assert.Equal(["c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"], result);
    });

    [Fact]
    public void FifoOrder2_AReleaseAndReacquireGoesToTheBackOfTheQueue() => Run(async () =>
    {
        var sem = new Semaphore(1);
        var result = new List<int>();
        var t1 = Spawn(async () =>
        {
            await sem.AcquireAsync();
            result.Add(1);
        });
        var t2 = Spawn(async () =>
        {
            await sem.AcquireAsync();
            result.Add(2);
            sem.Release();
            await sem.AcquireAsync();
            result.Add(4);
        });
        var t3 = Spawn(async () =>
        {
            await sem.AcquireAsync();
            result.Add(3);
        });
        await Tick();

        sem.Release();
        sem.Release();
        await t1;
        await t2;
        await t3;
        Assert.Equal([1, 2, 3, 4], result);
    });

    [Fact]
    public void FifoOrder3_ACancelledWaiterIsSkipped() => Run(async () =>
    {
        var sem = new Semaphore(0);
        var result = new List<int>();

        async LoopTask C(int n)
        {
            await sem.AcquireAsync();
            result.Add(n);
        }

        var tasks = new[] { Spawn(() => C(1)), Spawn(() => C(2)), Spawn(() => C(3)) };
        await Tick();
        tasks[0].Cancel();
        await Tick();

        sem.Release();
        sem.Release();
        await Settle(tasks);
        Assert.Equal([2, 3], result);
    });

    /// <summary>
    /// gh-90155: permits released while the first waiter has not run yet are not taken out of turn by a
    /// newcomer; once the first waiter runs it wakes as many queued waiters as there are permits.
    /// </summary>
    [Fact]
    public void FifoOrder4_AWokenWaiterWakesTheOnesQueuedBehindIt() => Run(async () =>
    {
        var sem = new Semaphore(0);
        var result = new List<int>();
        LoopTask? t4 = null;

        var t1 = Spawn(async () =>
        {
            Assert.Equal(0, sem.Value);
            await sem.AcquireAsync();
            Assert.Equal(0, sem.Value);
            t4 = Spawn(async () =>
            {
                result.Add(4);
                await Tick();
            });
            result.Add(1);
        });
        var t2 = Spawn(async () =>
        {
            sem.Release();
            sem.Release();
            sem.Release();
            Assert.Equal(2, sem.Value);
            // Locked although two permits are free: t1 was woken and has not run yet (FIFO).
            Assert.True(sem.Locked);
            await sem.AcquireAsync();
            result.Add(2);
        });
        var t3 = Spawn(async () =>
        {
            await sem.AcquireAsync();
            Assert.True(sem.Locked);
            result.Add(3);
        });

        await t1;
        await t2;
        await t3;
        await t4!;
        Assert.Equal([1, 2, 3, 4], result);
        Assert.Equal(0, sem.Value);
    });

    /// <summary>A waiter handed a permit and cancelled before it runs keeps it and gives it back on the way out.</summary>
    [Fact]
    public void WaiterCancelledAsItIsWoken_KeepsThePermitAndGivesItBack() => Run(async () =>
    {
        var sem = new Semaphore(0);
        var order = new List<string>();
        var tb = Spawn(async () =>
        {
            using (await sem.AcquireAsync())
            {
                order.Add("b");
                await Tick();
                order.Add("b was not cancelled");
            }
        });
        var tc = Spawn(async () =>
        {
            using (await sem.AcquireAsync())
            {
                order.Add("c");
            }
        });
        await Tick();

        sem.Release();
        tb.Cancel();
        await Throws<CancelledError>(tb);
        await tc;
        Assert.Equal(["b", "c"], order);
        Assert.Equal(1, sem.Value);
        Assert.Equal(0, sem.WaiterCount);
    });

    [Fact]
    public void CancellationToken_CancelsAWaitAndTakesNoPermit() => Run(async () =>
    {
        var sem = new Semaphore(0);
        using var cts = new CancellationTokenSource();
        var wait = sem.AcquireAsync(cts.Token).AsFuture();
        var next = sem.AcquireAsync().AsFuture();
        cts.Cancel();
        await Throws<CancelledError>(wait);
        sem.Release();
        await next;
        await Tick();
        Assert.Equal(0, sem.Value);
        Assert.Equal(0, sem.WaiterCount);

        sem.Release();
        var refused = sem.AcquireAsync(cts.Token);
        Assert.False(refused.IsCompletedSuccessfully);
        Assert.Equal(1, sem.Value);
    });
}
