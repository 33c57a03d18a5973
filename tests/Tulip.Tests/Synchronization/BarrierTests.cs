using static Tulip.Tests.Synchronization.SyncRunner;

namespace Tulip.Tests.Synchronization;

using Tulip.Synchronization;

/// <summary>asyncio's test_locks.py BarrierTests (3.11+), on Tulip's <see cref="Barrier"/>.</summary>
public sealed class BarrierTests
{
    private const int N = 5;

    [Fact]
    public void Parties_BelowOneAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Barrier(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Barrier(-4));
        Assert.Equal(N, new Barrier(N).Parties);
    }

    [Fact]
    public void Repr_ShowsEachState() => Run(async () =>
    {
        var barrier = new Barrier(N);
        Assert.Equal("<Barrier [filling, waiters:0/5]>", barrier.ToString());
        var waiters = new List<LoopTask<int>>();
        for (int i = 0; i < 2; i++)
        {
            waiters.Add(Spawn(() => barrier.WaitAsync()));
        }

        await Tick();
        Assert.Equal("<Barrier [filling, waiters:2/5]>", barrier.ToString());

        for (int i = barrier.NWaiting; i < barrier.Parties; i++)
        {
            waiters.Add(Spawn(() => barrier.WaitAsync()));
        }

        await Tick();
        Assert.Contains("draining", barrier.ToString(), StringComparison.Ordinal);
        await Settle(waiters);

        for (int i = 0; i < 2; i++)
        {
            waiters.Add(Spawn(() => barrier.WaitAsync()));
        }

        await Tick();
        await barrier.ResetAsync();
        Assert.Contains("resetting", barrier.ToString(), StringComparison.Ordinal);

        await barrier.AbortAsync();
        Assert.Equal("<Barrier [broken]>", barrier.ToString());
        Assert.True(barrier.Broken);
        await Settle(waiters);
    });

    [Fact]
    public void Wait_ReleasesAllPartiesWithDistinctIndexes() => Run(async () =>
    {
        var barrier = new Barrier(3);
        var tasks = Enumerable.Range(0, 3).Select(_ => Spawn(() => barrier.WaitAsync())).ToList();
        var indexes = new List<int>();
        foreach (var t in tasks)
        {
            indexes.Add(await t);
        }

        Assert.Equal([0, 1, 2], indexes.Order());
        Assert.Equal(0, barrier.NWaiting);
        Assert.False(barrier.Broken);
    });

    [Fact]
    public void OneParty_PassesAtOnce_Twice() => Run(async () =>
    {
        var barrier = new Barrier(1);
        Assert.Equal(0, await barrier.WaitAsync());
        var t1 = Spawn(() => barrier.WaitAsync());
        await Tick();
        Assert.Equal(0, barrier.NWaiting);
        var t2 = Spawn(() => barrier.WaitAsync());
        await Ticks(3);
        Assert.Equal(t1.Result(), t2.Result());
        Assert.Equal(0, barrier.NWaiting);
        Assert.False(barrier.Broken);
    });

    [Fact]
    public void FillingTaskByTask_CountsTheWaiters() => Run(async () =>
    {
        var barrier = new Barrier(3);
        var t1 = Spawn(() => barrier.WaitAsync());
        await Tick();
        Assert.Equal(1, barrier.NWaiting);
        var t2 = Spawn(() => barrier.WaitAsync());
        await Tick();
        Assert.Equal(2, barrier.NWaiting);
        Assert.Contains("filling", barrier.ToString(), StringComparison.Ordinal);
        var t3 = Spawn(() => barrier.WaitAsync());
        await t1;
        await t2;
        await t3;
        Assert.Equal(0, barrier.NWaiting);
        Assert.False(barrier.Broken);
    });

    [Fact]
    public void EachTaskWaitsTwice_BothRoundsReturnEveryIndex() => Run(async () =>
    {
        var barrier = new Barrier(N);
        var first = new List<int>();
        var second = new List<int>();

        async LoopTask Coro()
        {
            first.Add(await barrier.WaitAsync());
            second.Add(await barrier.WaitAsync());
        }

        var tasks = Enumerable.Range(0, N).Select(_ => Spawn(Coro)).ToList();
        foreach (var t in tasks)
        {
            await t;
        }

        Assert.Equal(Enumerable.Range(0, N), first.Order());
        Assert.Equal(Enumerable.Range(0, N), second.Order());
        Assert.Equal(0, barrier.NWaiting);
        Assert.False(barrier.Broken);
    });

    [Fact]
    public void Draining_LastsUntilTheLastReleasedTaskHasLeft() => Run(async () =>
    {
        var barrier = new Barrier(N);
        var draining = new List<bool>();

        async LoopTask Coro()
        {
            await barrier.WaitAsync();
            draining.Add(barrier.ToString().Contains("draining", StringComparison.Ordinal));
        }

        var tasks = Enumerable.Range(0, N).Select(_ => Spawn(Coro)).ToList();
        foreach (var t in tasks)
        {
            await t;
        }

        Assert.Equal(N, draining.Count);
        Assert.All(draining.Take(N - 1), Assert.True);
        Assert.False(draining[^1]);
        Assert.False(barrier.Broken);
    });

    /// <summary>Tasks that come back while the barrier drains wait for the draining to end.</summary>
    [Fact]
    public void BlockingWhileDraining_TheRewaitersWaitForTheRest() => Run(async () =>
    {
        const int rewait = 2;
        var barrier = new Barrier(N);
        var others = new Barrier(N - rewait);
        int rewaitLeft = rewait;

        async LoopTask Coro()
        {
            await barrier.WaitAsync();
            if (rewaitLeft > 0)
            {
                rewaitLeft--;
                await barrier.WaitAsync();
            }
            else
            {
                await others.WaitAsync();
                await barrier.WaitAsync();
            }
        }

        var tasks = Enumerable.Range(0, N).Select(_ => Spawn(Coro)).ToList();
        foreach (var t in tasks)
        {
            await t;
        }

        Assert.Equal(0, barrier.NWaiting);
        Assert.False(barrier.Broken);
    });

    [Fact]
    public void CancelledWaiter_LeavesTheBarrier() => Run(async () =>
    {
        var barrier = new Barrier(3);
        var results = new List<bool>();

        async LoopTask Coro()
        {
            await barrier.WaitAsync();
            results.Add(true);
        }

        var t1 = Spawn(Coro);
        await Tick();
        Assert.Equal(1, barrier.NWaiting);
        var t2 = Spawn(Coro);
        await Tick();
        Assert.Equal(2, barrier.NWaiting);

        t1.Cancel();
        await Throws<CancelledError>(t1);
        await Ticks(2);
        Assert.Equal(1, barrier.NWaiting);

        var t3 = Spawn(Coro);
        await Tick();
        Assert.Equal(2, barrier.NWaiting);
        var t4 = Spawn(Coro);
        await t2;
        await t3;
        await t4;
        Assert.Equal(3, results.Count);
        Assert.Equal(0, barrier.NWaiting);
        Assert.False(barrier.Broken);
    });

    [Fact]
    public void CancellationToken_CancelsAWaitAtTheBarrier() => Run(async () =>
    {
        var barrier = new Barrier(2);
        using var cts = new CancellationTokenSource();
        var wait = barrier.WaitAsync(cts.Token);
        Assert.Equal(1, barrier.NWaiting);
        cts.Cancel();
        await Throws<CancelledError>(wait);
        Assert.Equal(0, barrier.NWaiting);
        Assert.False(barrier.Broken);
    });

    [Fact]
    public void Reset_WithNobodyWaiting_StaysFilling() => Run(async () =>
    {
        var barrier = new Barrier(1);
        await barrier.ResetAsync();
        Assert.Equal(0, barrier.NWaiting);
        Assert.False(barrier.Broken);
        Assert.Contains("filling", barrier.ToString(), StringComparison.Ordinal);
    });

    [Fact]
    public void Reset_WhileTasksWait_BreaksTheirWait() => Run(async () =>
    {
        var barrier = new Barrier(N);
        int broken = 0;

        async LoopTask Coro()
        {
            try
            {
                await barrier.WaitAsync();
            }
            catch (BrokenBarrierError)
            {
                broken++;
            }
        }

        var tasks = Enumerable.Range(0, N - 1).Select(_ => Spawn(Coro)).ToList();
        await Tick();
        var reset = Spawn(() => barrier.ResetAsync());
        foreach (var t in tasks)
        {
            await t;
        }

        await reset;
        Assert.Equal(N - 1, broken);
        Assert.Equal(0, barrier.NWaiting);
        Assert.DoesNotContain("resetting", barrier.ToString(), StringComparison.Ordinal);
        Assert.False(barrier.Broken);
    });

    /// <summary>
    /// asyncio's test_reset_barrier_when_tasks_half_draining: the first task out resets the barrier while
    /// others are still inside, released but not yet gone: each of those gets BrokenBarrierError.
    /// </summary>
    [Fact]
    public void Reset_WhileDraining_BreaksTheTasksStillInside() => Run(async () =>
    {
        var barrier = new Barrier(N);
        int brokenCount = 0;
        int insideAtReset = -1;

        async LoopTask Coro()
        {
            try
            {
                await barrier.WaitAsync();
            }
            catch (BrokenBarrierError)
            {
                brokenCount++;
                return;
            }

            if (insideAtReset < 0)
            {
                insideAtReset = barrier.Count;
                await barrier.ResetAsync();
            }
        }

        var tasks = Enumerable.Range(0, N).Select(_ => Spawn(Coro)).ToList();
        foreach (var t in tasks)
        {
            await t;
        }

        Assert.InRange(insideAtReset, 1, N - 1);
        Assert.Equal(insideAtReset, brokenCount);
        Assert.Equal(0, barrier.NWaiting);
        Assert.DoesNotContain("resetting", barrier.ToString(), StringComparison.Ordinal);
        Assert.False(barrier.Broken);
    });

    [Fact]
    public void Reset_WhileTasksWait_ThenTheyWaitAgainAndPass() => Run(async () =>
    {
        var barrier = new Barrier(N);
        int broken = 0;
        int passed = 0;

        async LoopTask Waiter()
        {
            try
            {
                await barrier.WaitAsync();
            }
            catch (BrokenBarrierError)
            {
                broken++;
            }
            finally
            {
                await barrier.WaitAsync();
                passed++;
            }
        }

        var tasks = Enumerable.Range(0, N - 1).Select(_ => Spawn(Waiter)).ToList();
        var reset = Spawn(() => barrier.ResetAsync());
        await Ticks(3);
        var last = Spawn(async () =>
        {
            await barrier.WaitAsync();
            passed++;
        });

        foreach (var t in tasks)
        {
            await t;
        }

        await last;
        await reset;
        Assert.False(barrier.Broken);
        Assert.Equal(N - 1, broken);
        Assert.Equal(N, passed);
        Assert.Equal(0, barrier.NWaiting);
    });

    [Fact]
    public void Abort_WithNobodyWaiting_Breaks() => Run(async () =>
    {
        var barrier = new Barrier(1);
        await barrier.AbortAsync();
        Assert.Equal(0, barrier.NWaiting);
        Assert.True(barrier.Broken);
        var ex = await Throws<BrokenBarrierError>(barrier.WaitAsync());
        Assert.IsAssignableFrom<InvalidOperationException>(ex);
    });

    /// <summary>
    /// asyncio's test_abort_barrier_when_tasks_half_draining_half_blocking. Awaiting a Tulip task costs a
    /// loop iteration that asyncio's inline coroutine does not, so here every released task has left
    /// the barrier before the first resumes: none is still inside at the abort, and the ones that wait
    /// again are the ones broken (deterministic on the virtual-clock loop).
    /// </summary>
    [Fact]
    public void Abort_WhenHalfDrainedAndHalfBlocking_BreaksEveryone() => Run(async () =>
    {
        var barrier = new Barrier(N);
        int results1 = 0;
        int results2 = 0;
        const int blockingTasks = N / 2;
        int count = 0;

        async LoopTask Coro()
        {
            try
            {
                await barrier.WaitAsync();
            }
            catch (BrokenBarrierError)
            {
                results1++;
                return;
            }

            count++;
            if (count > blockingTasks)
            {
                await barrier.AbortAsync();
            }
            else
            {
                try
                {
                    await barrier.WaitAsync();
                }
                catch (BrokenBarrierError)
                {
                    results2++;
                }
            }
        }

        var tasks = Enumerable.Range(0, N).Select(_ => Spawn(Coro)).ToList();
        foreach (var t in tasks)
        {
            await t;
        }

        Assert.True(barrier.Broken);
        Assert.Equal(0, results1);
        Assert.Equal(blockingTasks, results2);
        Assert.Equal(0, barrier.NWaiting);
        Assert.DoesNotContain("resetting", barrier.ToString(), StringComparison.Ordinal);
    });

    /// <summary>threading's lock_tests.test_reset, as asyncio ports it: one party fails and aborts; the others break.</summary>
    [Fact]
    public void Abort_WhenAPartyFails_TheOthersBreak() => Run(async () =>
    {
        var barrier = new Barrier(N);
        int passedTwice = 0;
        int broken = 0;

        async LoopTask Coro()
        {
            try
            {
                int i = await barrier.WaitAsync();
                if (i == N / 2)
                {
                    throw new FormatException("this party failed");
                }

                await barrier.WaitAsync();
                passedTwice++;
            }
            catch (BrokenBarrierError)
            {
                broken++;
            }
            catch (FormatException)
            {
                await barrier.AbortAsync();
            }
        }

        var tasks = Enumerable.Range(0, N).Select(_ => Spawn(Coro)).ToList();
        foreach (var t in tasks)
        {
            await t;
        }

        Assert.True(barrier.Broken);
        Assert.Equal(0, passedTwice);
        Assert.Equal(N - 1, broken);
        Assert.Equal(0, barrier.NWaiting);
    });

    /// <summary>threading's lock_tests.test_abort_and_reset: abort, synchronise on a second barrier, reset, pass again.</summary>
    [Fact]
    public void AbortThenReset_TheBarrierWorksAgain() => Run(async () =>
    {
        var barrier1 = new Barrier(N);
        var barrier2 = new Barrier(N);
        int passedTwice = 0;
        int broken = 0;
        int passedAfterReset = 0;

        async LoopTask Coro()
        {
            try
            {
                int i = await barrier1.WaitAsync();
                if (i == N / 2)
                {
                    throw new FormatException("this party failed");
                }

                await barrier1.WaitAsync();
                passedTwice++;
            }
            catch (BrokenBarrierError)
            {
                broken++;
            }
            catch (FormatException)
            {
                await barrier1.AbortAsync();
            }

            // Everyone has left barrier1 before the reset, and nobody enters it before.
            if (await barrier2.WaitAsync() == N / 2)
            {
                await barrier1.ResetAsync();
            }

            await barrier2.WaitAsync();
            await barrier1.WaitAsync();
            passedAfterReset++;
        }

        var tasks = Enumerable.Range(0, N).Select(_ => Spawn(Coro)).ToList();
        foreach (var t in tasks)
        {
            await t;
        }

        Assert.False(barrier1.Broken);
        Assert.Equal(0, passedTwice);
        Assert.Equal(N - 1, broken);
        Assert.Equal(N, passedAfterReset);
        Assert.Equal(0, barrier1.NWaiting);
    });
}
