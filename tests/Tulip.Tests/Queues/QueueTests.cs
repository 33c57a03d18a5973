using Tulip;
using static Tulip.Tests.Combinators.LoopRunner;

namespace Tulip.Tests.Queues;

// Inside the namespace, so Tulip's queue wins over the SDK's Queue<T> that the implicit usings bring.
using Tulip.Queues;

/// <summary>
/// asyncio's test_queues.py (the parts without repr), on Tulip's queues: limits, order for each kind,
/// waiting gets and puts, cancellation that neither loses nor inserts an item, task_done/join, and
/// 3.13's shutdown. Queues need only futures and timers, so these run on the virtual-clock
/// TestEventLoop (instant and deterministic); <see cref="QueueLoopContractTests"/> runs the loop-bound
/// parts on every loop kind.
/// </summary>
public class QueueTests
{
    public enum Kind
    {
        Fifo,
        Lifo,
        Priority,
    }

    public static TheoryData<Kind> Kinds => new() { Kind.Fifo, Kind.Lifo, Kind.Priority };

    private static Queue<T> Make<T>(Kind kind, int maxsize = 0) => kind switch
    {
        Kind.Fifo => new Queue<T>(maxsize),
        Kind.Lifo => new LifoQueue<T>(maxsize),
        _ => new PriorityQueue<T>(maxsize),
    };

    private static async LoopTask Yields(int count)
    {
        for (int i = 0; i < count; i++)
        {
            await Tasks.Yield();
        }
    }

    // ---- Basics --------------------------------------------------------------------------------

    [Fact]
    public void MaxSizeEmptyAndFull() => Run(async () =>
    {
        var unbounded = new Queue<int>();
        Assert.Equal(0, unbounded.MaxSize);
        Assert.True(unbounded.Empty);
        Assert.False(unbounded.Full);
        for (int i = 0; i < 100; i++)
        {
            await unbounded.PutAsync(i);
        }

        Assert.False(unbounded.Full);
        Assert.Equal(100, unbounded.Count);

        var negative = new Queue<int>(-3); // 0 or less: unbounded, as asyncio
        negative.PutNowait(1);
        negative.PutNowait(2);
        Assert.False(negative.Full);

        var one = new Queue<int>(1);
        Assert.Equal(1, one.MaxSize);
        await one.PutAsync(1);
        Assert.True(one.Full);
        Assert.False(one.Empty);
        Assert.Equal(1, await one.GetAsync());
        Assert.True(one.Empty);
        Assert.False(one.Full);
    });

    [Theory]
    [MemberData(nameof(Kinds))]
    public void OrderForEachKind(Kind kind) => Run(async () =>
    {
        var q = Make<int>(kind);
        foreach (int i in new[] { 1, 3, 2 })
        {
            await q.PutAsync(i);
        }

        var items = new List<int>();
        for (int i = 0; i < 3; i++)
        {
            items.Add(await q.GetAsync());
        }

        int[] expected = kind switch
        {
            Kind.Fifo => [1, 3, 2],
            Kind.Lifo => [2, 3, 1],
            _ => [1, 2, 3],
        };
        Assert.Equal(expected, items);
    });

    [Fact]
    public void PriorityQueueOrdersByItsComparerAndKeepsTiesInInsertionOrder() => Run(async () =>
    {
        var byPriorityDescending = Comparer<(int Priority, string Name)>.Create((a, b) => b.Priority.CompareTo(a.Priority));
        var q = new PriorityQueue<(int Priority, string Name)>(comparer: byPriorityDescending);
        Assert.Same(byPriorityDescending, q.Comparer);
        foreach (var item in new[] { (1, "a"), (5, "b"), (1, "c"), (5, "d"), (3, "e"), (5, "f") })
        {
            await q.PutAsync(item);
        }

        var names = new List<string>();
        while (!q.Empty)
        {
            names.Add(q.GetNowait().Name);
        }

        Assert.Equal(["b", "d", "f", "e", "a", "c"], names);
    });

    [Fact]
    public void PriorityQueueOfAnIncomparableTypeWithoutAComparerFailsClearly()
    {
        var ex = Assert.Throws<ArgumentException>(() => new PriorityQueue<object>());
        Assert.Equal("comparer", ex.ParamName);
        Assert.Contains("IComparer<T>", ex.Message);
        _ = new PriorityQueue<int?>(); // Nullable of a comparable type is fine
        _ = new PriorityQueue<object>(comparer: Comparer<object>.Create((a, b) => 0));
    }

    [Fact]
    public void PutWaitsAtMaxSize() => Run(async () =>
    {
        // test_maxsize
        var q = new Queue<int>(2);
        var havePut = new List<int>();
        async LoopTask<bool> Putter()
        {
            for (int i = 0; i < 3; i++)
            {
                await q.PutAsync(i);
                havePut.Add(i);
            }

            return true;
        }

        var putter = Putter();
        await Yields(2);
        Assert.Equal([0, 1], havePut); // blocked after two
        Assert.Equal(0, await q.GetAsync());
        await Yields(1);
        Assert.Equal([0, 1, 2], havePut);
        Assert.Equal(1, await q.GetAsync());
        Assert.Equal(2, await q.GetAsync());
        Assert.True(putter.Done);
        Assert.True(putter.Result());
    });

    // ---- Get ----------------------------------------------------------------------------------

    [Fact]
    public void GetWaitsForAPut() => Run(async () =>
    {
        // test_blocking_get_wait
        var q = new Queue<int>();
        bool finished = false;
        async LoopTask<int> Getter()
        {
            int result = await q.GetAsync();
            finished = true;
            return result;
        }

        var getter = Getter();
        await Yields(1);
        Assert.False(finished);
        var loop = (BaseEventLoop)Tasks.CurrentTask()!.Loop;
        loop.CallLater(0.01, () => q.PutNowait(1));
        Assert.Equal(1, await getter);
        Assert.True(finished);
    });

    [Fact]
    public void GetNowaitOnAnEmptyQueueThrowsQueueEmpty() => Run(async () =>
    {
        var q = new Queue<int>();
        var ex = Assert.Throws<QueueEmpty>(() => q.GetNowait());
        Assert.IsAssignableFrom<InvalidOperationException>(ex);
        q.PutNowait(1);
        Assert.Equal(1, q.GetNowait());
        await Tasks.Yield();
    });

    [Fact]
    public void AGetWithWaitingPuttersWakesThemInOrder() => Run(async () =>
    {
        // test_get_with_waiting_putters, test_get_with_putters
        var q = new Queue<string>(1);
        var a = q.PutAsync("a").AsFuture();
        var b = q.PutAsync("b").AsFuture();
        var c = q.PutAsync("c").AsFuture();
        Assert.True(a.Done);
        Assert.Equal(2, q.WaitingPutters);
        Assert.Equal("a", await q.GetAsync());
        Assert.Equal("b", await q.GetAsync());
        Assert.Equal("c", await q.GetAsync());
        await b;
        await c;
    });

    [Fact]
    public void CancelledGetterBeforeAPutLeavesTheItemForTheNext() => Run(async () =>
    {
        // test_get_cancelled_race
        var q = new Queue<string>();
        var t1 = q.GetAsync().AsFuture();
        var t2 = q.GetAsync().AsFuture();
        await Yields(1);
        t1.Cancel();
        await Yields(1);
        Assert.True(t1.Cancelled);
        await q.PutAsync("a");
        await Yields(1);
        Assert.Equal("a", await t2);
    });

    [Fact]
    public void WaitingGettersAndPuttersAlternate() => Run(async () =>
    {
        // test_why_are_getters_waiting and test_why_are_putters_waiting
        var q = new Queue<int>(1);
        var got = new List<int>();
        async LoopTask Producer()
        {
            for (int i = 0; i < 5; i++)
            {
                await q.PutAsync(i);
            }
        }

        async LoopTask Consumer()
        {
            for (int i = 0; i < 5; i++)
            {
                got.Add(await q.GetAsync());
            }
        }

        await Tasks.Gather(Producer(), Consumer());
        Assert.Equal([0, 1, 2, 3, 4], got);

        var two = new Queue<int>(2);
        async LoopTask Getter()
        {
            await Tasks.Yield();
            int count = two.Count;
            for (int i = 0; i < count; i++)
            {
                two.GetNowait();
            }
        }

        await Tasks.Gather(Getter(), two.PutAsync(0).AsFuture(), two.PutAsync(1).AsFuture(), two.PutAsync(2).AsFuture(), two.PutAsync(3).AsFuture());
        Assert.Equal([2, 3], [two.GetNowait(), two.GetNowait()]);
    });

    [Fact]
    public void ATimedOutGetterDoesNotStayQueued() => Run(async () =>
    {
        // test_cancelled_getters_not_being_held_in_self_getters
        var q = new Queue<int>(5);
        await Assert.ThrowsAsync<TimeoutError>(async () => await Tasks.WaitFor(q.GetAsync().AsFuture(), 0.1));
        Assert.Equal(0, q.WaitingGetters);
    });

    [Fact]
    public void AGetterCancelledAfterItWasWokenStillTakesItsItemSoNoneIsDropped() => Run(async () =>
    {
        // test_get_cancel_drop_one_pending_reader. asyncio throws CancelledError and the retry gets 1;
        // in Tulip a cancel that comes after the wake-up does not replace the result: the reader
        // returns 1 itself. Either way 1 is not dropped.
        var q = new Queue<int>();
        var reader = q.GetAsync().AsFuture();
        await Yields(1);
        q.PutNowait(1);
        q.PutNowait(2);
        reader.Cancel();
        int result;
        try
        {
            result = await reader;
        }
        catch (CancelledError)
        {
            result = await q.GetAsync();
        }

        Assert.Equal(1, result);
        Assert.Equal(2, q.GetNowait());
    });

    [Fact]
    public void CancellingOneOfManyWokenReadersDropsNoItem() => Run(async () =>
    {
        // test_get_cancel_drop_many_pending_readers: every item reaches exactly one reader.
        var q = new Queue<int>();
        var readers = new[] { q.GetAsync().AsFuture(), q.GetAsync().AsFuture(), q.GetAsync().AsFuture() };
        await Yields(1);
        q.PutNowait(1);
        q.PutNowait(2);
        readers[0].Cancel();
        await Yields(3);
        q.PutNowait(3);
        await Yields(3);
        var received = readers.Where(r => !r.Cancelled).Select(r => r.Result()).ToList();
        var left = new List<int>();
        while (!q.Empty)
        {
            left.Add(q.GetNowait());
        }

        Assert.Equal([1, 2, 3], received.Concat(left).Order());
        Assert.All(readers, r => Assert.True(r.Done));
    });

    [Fact]
    public void AWokenGetterThatFindsTheItemTakenWaitsAgain() => Run(async () =>
    {
        // asyncio's re-check loop: the wake-up is only a hint; a GetNowait in between takes the item.
        var q = new Queue<int>();
        var first = q.GetAsync().AsFuture();
        var second = q.GetAsync().AsFuture();
        await Yields(1);
        q.PutNowait(1); // wakes first
        Assert.Equal(1, q.GetNowait()); // but the item goes here
        await Yields(2);
        Assert.False(first.Done);
        Assert.Equal(2, q.WaitingGetters);
        q.PutNowait(2);
        q.PutNowait(3);
        await Yields(2);
        Assert.Equal(new[] { 2, 3 }, new[] { first.Result(), second.Result() }.Order());
    });

    // ---- Put ----------------------------------------------------------------------------------

    [Fact]
    public void PutWaitsForAGet() => Run(async () =>
    {
        // test_blocking_put_wait
        var q = new Queue<int>(1);
        bool finished = false;
        async LoopTask Putter()
        {
            await q.PutAsync(1);
            await q.PutAsync(2);
            finished = true;
        }

        var loop = (BaseEventLoop)Tasks.CurrentTask()!.Loop;
        loop.CallLater(0.01, () => q.GetNowait());
        var putter = Putter();
        Assert.False(finished);
        await putter;
        Assert.True(finished);
        Assert.Equal(2, q.GetNowait());
    });

    [Fact]
    public void PutNowaitOnAFullQueueThrowsQueueFull() => Run(async () =>
    {
        var q = new Queue<int>(1);
        q.PutNowait(1);
        var ex = Assert.Throws<QueueFull>(() => q.PutNowait(2));
        Assert.IsAssignableFrom<InvalidOperationException>(ex);
        Assert.Equal(1, q.Count);
        await Tasks.Yield();
    });

    [Fact]
    public void APutterCancelledAfterItWasWokenPutsItsItemOnce() => Run(async () =>
    {
        // test_put_cancel_drop: the item is in the queue exactly once, whichever way the cancel lands.
        var q = new Queue<int>(1);
        q.PutNowait(1);
        var writer = q.PutAsync(2).AsFuture();
        await Yields(1);
        Assert.Equal(1, q.GetNowait());
        writer.Cancel();
        try
        {
            await writer;
        }
        catch (CancelledError)
        {
            await q.PutAsync(2);
        }

        Assert.Equal(2, q.GetNowait());
        Assert.Equal(0, q.Count);
    });

    [Fact]
    public void ACancelledWaitingPutterInsertsNothing() => Run(async () =>
    {
        // test_put_cancelled_race, test_cancelled_puts_not_being_held_in_self_putters
        var q = new Queue<string>(1);
        var a = q.PutAsync("a").AsFuture();
        var b = q.PutAsync("b").AsFuture();
        var x = q.PutAsync("X").AsFuture();
        await Yields(1);
        Assert.True(a.Done);
        Assert.False(b.Done);
        Assert.Equal(2, q.WaitingPutters);
        x.Cancel();
        await Yields(1);
        Assert.True(x.Cancelled);
        Assert.Equal(1, q.WaitingPutters);
        Assert.Equal("a", q.GetNowait());
        await Yields(1);
        Assert.Equal("b", q.GetNowait());
        await b;
        Assert.True(q.Empty);
        Assert.Equal(0, q.WaitingPutters);
    });

    [Fact]
    public void APutterCancelledAfterGetNowaitTookItsWaiterEndsCancelledOrPutsOnce() => Run(async () =>
    {
        // test_cancelled_put_silence_value_error_exception: the waiter was already taken out of the
        // list by GetNowait; cancelling the put must not fail on that.
        var q = new Queue<int>(1);
        q.PutNowait(1);
        var put = q.PutAsync(1).AsFuture();
        await Yields(1);
        q.GetNowait();
        put.Cancel();
        try
        {
            await put;
            Assert.Equal(1, q.Count);
        }
        catch (CancelledError)
        {
            Assert.Equal(0, q.Count);
        }
    });

    [Fact]
    public void APutWithAWaitingGetterHandsTheItemOver() => Run(async () =>
    {
        // test_put_with_waiting_getters
        var q = new Queue<string>();
        var getter = q.GetAsync().AsFuture();
        await Yields(1);
        await q.PutAsync("a");
        Assert.Equal("a", await getter);
    });

    [Fact]
    public void WaitingGettersAreServedInTheOrderTheyCame() => Run(async () =>
    {
        var q = new Queue<int>();
        var getters = Enumerable.Range(0, 5).Select(_ => q.GetAsync().AsFuture()).ToList();
        await Yields(1);
        for (int i = 0; i < 5; i++)
        {
            q.PutNowait(i);
            await Yields(2);
        }

        Assert.Equal([0, 1, 2, 3, 4], getters.Select(g => g.Result()));
    });

    // ---- Cancellation tokens --------------------------------------------------------------------

    [Fact]
    public void ATokenCancelsAWaitingGetAndItTakesNothing() => Run(async () =>
    {
        var q = new Queue<int>();
        using var cts = new CancellationTokenSource();
        var get = q.GetAsync(cts.Token).AsFuture();
        await Yields(1);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await get);
        Assert.Equal(0, q.WaitingGetters);
        q.PutNowait(7);
        Assert.Equal(7, await q.GetAsync());
    });

    [Fact]
    public void ATokenCancelsAWaitingPutAndItPutsNothing() => Run(async () =>
    {
        var q = new Queue<int>(1);
        q.PutNowait(1);
        using var cts = new CancellationTokenSource();
        var put = q.PutAsync(2, cts.Token).AsFuture();
        await Yields(1);
        cts.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await put);
        Assert.Equal(1, q.GetNowait());
        Assert.True(q.Empty);
        Assert.Equal(0, q.WaitingPutters);
    });

    [Fact]
    public void AnAlreadyCancelledTokenEndsTheCallCancelledAndTouchesNothing() => Run(async () =>
    {
        var q = new Queue<int>();
        q.PutNowait(1);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await q.GetAsync(cts.Token));
        await Assert.ThrowsAsync<CancelledError>(async () => await q.PutAsync(2, cts.Token));
        await Assert.ThrowsAsync<CancelledError>(async () => await q.JoinAsync(cts.Token));
        Assert.Equal(1, q.Count);
        Assert.Equal(1, q.GetNowait());
    });

    [Fact]
    public void CancellingTheAwaitingTaskDeliversCancelledErrorAtTheAwait() => Run(async () =>
    {
        var q = new Queue<int>();
        bool reachedAfter = false;
        async LoopTask Consumer()
        {
            await q.GetAsync();
            reachedAfter = true;
        }

        var consumer = Consumer();
        await Yields(1);
        consumer.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await consumer);
        Assert.False(reachedAfter);
        await Yields(1);
        Assert.Equal(0, q.WaitingGetters);
        q.PutNowait(1);
        Assert.Equal(1, q.Count);
    });

    [Fact]
    public void ATaskCancelledJustAfterItsGetWasWokenReceivesTheItemThenCancelledErrorAtItsNextAwait() => Run(async () =>
    {
        // The documented difference from asyncio: the item is not handed to the next getter but to
        // this caller, whose cancellation then lands at its next await. Either way nothing is lost.
        var q = new Queue<int>();
        int received = -1;
        async LoopTask Consumer()
        {
            received = await q.GetAsync();
            await Tasks.Yield();
        }

        var consumer = Consumer();
        await Yields(1);
        q.PutNowait(1);
        q.PutNowait(2);
        consumer.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await consumer);
        Assert.Equal(1, received);
        Assert.Equal(2, q.GetNowait());
        Assert.True(q.Empty);
    });

    // ---- Join and TaskDone ------------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(Kinds))]
    public void TooManyTaskDoneCallsThrow(Kind kind) => Run(async () =>
    {
        var q = Make<int>(kind);
        var ex = Assert.Throws<InvalidOperationException>(q.TaskDone);
        Assert.Contains("TaskDone() was called more times than items were put", ex.Message);
        q.PutNowait(1);
        q.TaskDone();
        Assert.Throws<InvalidOperationException>(q.TaskDone);
        await Tasks.Yield();
    });

    [Theory]
    [MemberData(nameof(Kinds))]
    public void JoinWaitsUntilEveryItemIsDone(Kind kind) => Run(async () =>
    {
        // test_task_done
        var q = Make<int>(kind);
        for (int i = 0; i < 100; i++)
        {
            q.PutNowait(i);
        }

        int accumulator = 0;
        bool running = true;
        async LoopTask Worker()
        {
            while (running)
            {
                int item = await q.GetAsync();
                accumulator += item;
                q.TaskDone();
            }
        }

        var workers = new[] { Worker(), Worker() };
        await q.JoinAsync();
        Assert.Equal(Enumerable.Range(0, 100).Sum(), accumulator);
        running = false;
        foreach (var _ in workers)
        {
            q.PutNowait(0);
        }

        await Tasks.Gather(workers);
    });

    [Theory]
    [MemberData(nameof(Kinds))]
    public void JoinOnAQueueWithNothingUnfinishedReturnsAtOnce(Kind kind) => Run(async () =>
    {
        // test_join_empty_queue
        var q = Make<int>(kind);
        Assert.True(q.JoinAsync().IsCompleted);
        await q.JoinAsync();
        await q.JoinAsync();
    });

    [Fact]
    public void ACancelledJoinLeavesTheOthersWaiting() => Run(async () =>
    {
        var q = new Queue<int>();
        q.PutNowait(1);
        var cancelled = q.JoinAsync().AsFuture();
        var waiting = q.JoinAsync().AsFuture();
        cancelled.Cancel();
        Assert.False(waiting.Done);
        q.GetNowait();
        q.TaskDone();
        await waiting;
        Assert.True(cancelled.Cancelled);
    });

    // ---- Shutdown (3.13) -------------------------------------------------------------------------

    private static async LoopTask AssertShutDownEverywhere(Queue<string> q)
    {
        await Assert.ThrowsAsync<QueueShutDown>(async () => await q.PutAsync("data"));
        Assert.Throws<QueueShutDown>(() => q.PutNowait("data"));
        await Assert.ThrowsAsync<QueueShutDown>(async () => await q.GetAsync());
        Assert.Throws<QueueShutDown>(() => q.GetNowait());
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ShutdownOfAnEmptyQueueFailsItsWaitingGetter(Kind kind) => Run(async () =>
    {
        // test_shutdown_empty
        var q = Make<string>(kind);
        var get = q.GetAsync().AsFuture();
        await Yields(1);
        q.Shutdown();
        Assert.Equal(0, q.Count);
        await q.JoinAsync();
        await Yields(1);
        Assert.True(get.Done);
        await Assert.ThrowsAsync<QueueShutDown>(async () => await get);
        await AssertShutDownEverywhere(q);
    });

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ShutdownOfANonEmptyQueueFailsPuttersButLetsItsItemsBeTaken(Kind kind) => Run(async () =>
    {
        // test_shutdown_nonempty
        var q = Make<string>(kind, maxsize: 1);
        q.PutNowait("data");
        var join = q.JoinAsync().AsFuture();
        var put = q.PutAsync("data2").AsFuture();
        await Yields(1);
        Assert.False(put.Done);

        q.Shutdown(immediate: false); // unfinished tasks: 1 -> 1
        Assert.Equal(1, q.Count);
        await Yields(1);
        Assert.True(put.Done);
        await Assert.ThrowsAsync<QueueShutDown>(async () => await put);

        Assert.Equal("data", await q.GetAsync());
        await Yields(1);
        Assert.False(join.Done);
        await AssertShutDownEverywhere(q);

        q.TaskDone();
        await Yields(1);
        Assert.True(join.Done);
        await join;
        Assert.Throws<InvalidOperationException>(q.TaskDone);
    });

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ImmediateShutdownDrainsTheQueueAndWakesJoin(Kind kind) => Run(async () =>
    {
        // test_shutdown_immediate
        var q = Make<string>(kind);
        q.PutNowait("data");
        var join = q.JoinAsync().AsFuture();
        q.Shutdown(immediate: true); // unfinished tasks: 1 -> 0
        Assert.Equal(0, q.Count);
        await Yields(1);
        Assert.True(join.Done);
        await join;
        await AssertShutDownEverywhere(q);
        Assert.Throws<InvalidOperationException>(q.TaskDone);
    });

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ImmediateShutdownCountsDownOnlyTheDroppedItems(Kind kind) => Run(async () =>
    {
        // test_shutdown_immediate_with_unfinished
        var q = Make<string>(kind);
        q.PutNowait("data");
        q.PutNowait("data");
        var join = q.JoinAsync().AsFuture();
        Assert.Equal("data", await q.GetAsync());
        q.Shutdown(immediate: true); // unfinished tasks: 2 -> 1
        Assert.Equal(0, q.Count);
        await Yields(1);
        Assert.False(join.Done);
        await AssertShutDownEverywhere(q);
        q.TaskDone();
        Assert.Throws<InvalidOperationException>(q.TaskDone);
        await Yields(1);
        Assert.True(join.Done);
        await join;
    });

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ShutdownWakesEveryWaitingPutterAndGetterWithQueueShutDown(Kind kind) => Run(async () =>
    {
        var full = Make<int>(kind, maxsize: 1);
        full.PutNowait(0);
        var putters = Enumerable.Range(1, 3).Select(i => full.PutAsync(i).AsFuture()).ToList();
        var empty = Make<int>(kind);
        var getters = Enumerable.Range(0, 3).Select(_ => empty.GetAsync().AsFuture()).ToList();
        await Yields(1);
        Assert.Equal(3, full.WaitingPutters);
        Assert.Equal(3, empty.WaitingGetters);

        full.Shutdown();
        empty.Shutdown(immediate: true);
        Assert.Equal(0, full.WaitingPutters);
        Assert.Equal(0, empty.WaitingGetters);
        await Yields(2);
        foreach (var waiter in putters.Cast<Future>().Concat(getters))
        {
            Assert.IsType<QueueShutDown>(waiter.Exception());
        }

        Assert.Equal(0, full.GetNowait()); // not immediate: what was in stays takeable
        Assert.Throws<QueueShutDown>(() => full.GetNowait());
    });

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ShutdownWithWaitingGettersAndItemsLeftLetsThemTakeTheItems(Kind kind) => Run(async () =>
    {
        // A getter woken by a put that has not run yet when the queue shuts down still gets the item.
        var q = Make<int>(kind);
        var getters = new[] { q.GetAsync().AsFuture(), q.GetAsync().AsFuture() };
        await Yields(1);
        q.PutNowait(5);
        q.Shutdown();
        await Yields(2);
        var outcomes = getters.Select(g => g.Exception() is null ? g.Result().ToString(System.Globalization.CultureInfo.InvariantCulture) : g.Exception()!.GetType().Name).Order().ToList();
        Assert.Equal(["5", nameof(QueueShutDown)], outcomes);
    });

    [Theory]
    [MemberData(nameof(Kinds))]
    public void RepeatedShutdownIsAllowedAndImmediateAfterwardsStillDrains(Kind kind) => Run(async () =>
    {
        var q = Make<string>(kind);
        q.PutNowait("a");
        q.PutNowait("b");
        q.Shutdown();
        q.Shutdown();
        Assert.Equal(2, q.Count);
        var join = q.JoinAsync().AsFuture();
        q.Shutdown(immediate: true);
        q.Shutdown(immediate: true);
        Assert.Equal(0, q.Count);
        await join;
        await AssertShutDownEverywhere(q);
    });

    [Fact]
    public void JoinAfterShutdownWaitsForTheItemsStillUnfinished() => Run(async () =>
    {
        var q = new Queue<int>();
        q.PutNowait(1);
        q.PutNowait(2);
        q.Shutdown();
        var join = q.JoinAsync().AsFuture();
        Assert.Equal(1, q.GetNowait());
        q.TaskDone();
        await Yields(1);
        Assert.False(join.Done);
        Assert.Equal(2, await q.GetAsync());
        q.TaskDone();
        await join;
        await q.JoinAsync(); // and after that at once
    });

    // ---- await foreach --------------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(Kinds))]
    public void AwaitForeachTakesEveryItemAndEndsAtShutdown(Kind kind) => Run(async () =>
    {
        var q = Make<int>(kind, maxsize: 2);
        var seen = new List<int>();
        async LoopTask Consumer()
        {
            await foreach (int item in q)
            {
                seen.Add(item);
                q.TaskDone();
            }
        }

        var consumer = Consumer();
        for (int i = 0; i < 10; i++)
        {
            await q.PutAsync(i);
        }

        q.Shutdown();
        await consumer;
        Assert.Equal(10, seen.Count);
        Assert.Equal(Enumerable.Range(0, 10), seen.Order());
        if (kind == Kind.Fifo)
        {
            Assert.Equal(Enumerable.Range(0, 10), seen);
        }

        await q.JoinAsync();
    });

    [Fact]
    public void AwaitForeachEndsAtOnceAtAnImmediateShutdown() => Run(async () =>
    {
        var q = new Queue<int>();
        q.PutNowait(1);
        q.PutNowait(2);
        q.Shutdown(immediate: true);
        int count = 0;
        await foreach (int item in q)
        {
            count++;
        }

        Assert.Equal(0, count);
    });

    [Fact]
    public void ACancelledAwaitForeachLosesNoItem() => Run(async () =>
    {
        var q = new Queue<int>();
        var seen = new List<int>();
        async LoopTask Consumer()
        {
            await foreach (int item in q)
            {
                seen.Add(item);
            }
        }

        var consumer = Consumer();
        q.PutNowait(1);
        await Yields(2);
        Assert.Equal([1], seen);
        consumer.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await consumer);
        q.PutNowait(2);
        Assert.Equal(2, q.GetNowait());
        Assert.Equal(0, q.WaitingGetters);
    });

    [Fact]
    public void AnEnumeratorTokenCancelsAWaitingStep() => Run(async () =>
    {
        var q = new Queue<int>();
        using var cts = new CancellationTokenSource();
        var enumerator = q.GetAsyncEnumerator(cts.Token);
        q.PutNowait(3);
        Assert.True(await enumerator.MoveNextAsync());
        Assert.Equal(3, enumerator.Current);
        var step = enumerator.MoveNextAsync().AsFuture();
        await Yields(1);
        cts.Cancel();
        await Assert.ThrowsAsync<CancelledError>(async () => await step);
        Assert.Equal(0, q.WaitingGetters);
        q.Shutdown();
        Assert.False(await q.GetAsyncEnumerator().MoveNextAsync());
    });

    // ---- Allocation, loops and threads ------------------------------------------------------------

    [Fact]
    public void UncontendedPutsAndGetsFinishSynchronouslyWithoutAllocating() => Run(async () =>
    {
        var q = new Queue<int>(4);
        var lifo = new LifoQueue<int>();
        async LoopTask<long> Measure()
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            int pending = 0;
            long sum = 0;
            for (int i = 0; i < 1000; i++)
            {
                var put = q.PutAsync(i);
                pending += put.IsCompleted ? 0 : 1;
                await put;
                var get = q.GetAsync();
                pending += get.IsCompleted ? 0 : 1;
                sum += await get;
                await lifo.PutAsync(i);
                sum -= await lifo.GetAsync();
                q.TaskDone();
                lifo.TaskDone();
            }

            await q.JoinAsync();
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Equal(0, pending);
            Assert.Equal(0, sum);
            return allocated;
        }

        await Measure(); // warm up (JIT, tiering)
        Assert.Equal(0, await Measure());
    });

    [Fact]
    public void WaitingMembersNeedARunningLoop()
    {
        var q = new Queue<int>();
        q.PutNowait(1); // the non-waiting ones do not: a queue may be filled before the loop runs
        var ex = Assert.Throws<InvalidOperationException>(() => q.GetAsync());
        Assert.Contains("no running event loop", ex.Message);
        Assert.Throws<InvalidOperationException>(() => q.PutAsync(2));
        Assert.Throws<InvalidOperationException>(() => q.JoinAsync());
        Assert.Equal(1, q.GetNowait());
        q.TaskDone();
    }

    [Fact]
    public void AQueueFilledBeforeTheLoopRunsIsUsedOnIt()
    {
        var q = new Queue<int>();
        q.PutNowait(4);
        Assert.Equal(4, Run(async () => await q.GetAsync()));
    }
}
