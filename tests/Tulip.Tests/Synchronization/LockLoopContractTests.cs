using Tulip;
using Tulip.Tests.Transports;

namespace Tulip.Tests.Synchronization;

using Tulip.Synchronization;

/// <summary>
/// The primitives on each real loop kind (the asyncio ports run on the virtual-clock loop): tasks
/// that sleep on real timers and wait on sockets-free futures coordinate through a lock, a semaphore,
/// an event, a condition and a barrier, and a use from another thread while the loop runs is refused.
/// </summary>
public abstract class LockLoopContractTests(LoopKind kind) : LoopSuite(kind)
{
    [Fact]
    public void ALockKeepsItsHoldersApartAcrossRealSleeps() => TestUtil.Run(Kind, async loop =>
    {
        var gate = new Lock();
        int inside = 0;
        int most = 0;
        var order = new List<int>();
        async LoopTask Worker(int id)
        {
            using (await gate.AcquireAsync())
            {
                inside++;
                most = Math.Max(most, inside);
                order.Add(id);
                await Tasks.Sleep(0.001);
                inside--;
            }
        }

        await Tasks.Gather(Enumerable.Range(0, 5).Select(Worker).ToArray());
        Assert.Equal(1, most);
        Assert.Equal([0, 1, 2, 3, 4], order); // FIFO: in the order they asked
        Assert.False(gate.Locked);
    });

    [Fact]
    public void ASemaphoreLetsInAtMostItsValue() => TestUtil.Run(Kind, async loop =>
    {
        var sem = new Semaphore(2);
        int inside = 0;
        int most = 0;
        async LoopTask Worker()
        {
            using (await sem.AcquireAsync())
            {
                inside++;
                most = Math.Max(most, inside);
                await Tasks.Sleep(0.001);
                inside--;
            }
        }

        await Tasks.Gather(Enumerable.Range(0, 6).Select(_ => Worker()).ToArray());
        Assert.Equal(2, most);
        Assert.False(sem.Locked);
    });

    [Fact]
    public void AnEventSetByATimerWakesEveryWaiter() => TestUtil.Run(Kind, async loop =>
    {
        var ev = new Event();
        int woken = 0;
        async LoopTask Waiter()
        {
            await ev.WaitAsync();
            woken++;
        }

        var waiters = Enumerable.Range(0, 3).Select(_ => Waiter()).ToArray();
        loop.CallLater(0.001, ev.Set);
        await Tasks.Gather(waiters);
        Assert.Equal(3, woken);
    });

    [Fact]
    public void AConditionHandsWorkFromAProducerToConsumers() => TestUtil.Run(Kind, async loop =>
    {
        var cond = new Condition();
        var items = new System.Collections.Generic.Queue<int>();
        var got = new List<int>();
        bool done = false;
        async LoopTask Consumer()
        {
            while (true)
            {
                using (await cond.AcquireAsync())
                {
                    await cond.WaitForAsync(() => items.Count > 0 || done);
                    if (items.Count == 0)
                    {
                        return;
                    }

                    got.Add(items.Dequeue());
                }
            }
        }

        var consumers = new[] { Consumer(), Consumer() };
        for (int i = 0; i < 10; i++)
        {
            await Tasks.Sleep(0.0005);
            using (await cond.AcquireAsync())
            {
                items.Enqueue(i);
                cond.Notify();
            }
        }

        using (await cond.AcquireAsync())
        {
            done = true;
            cond.NotifyAll();
        }

        await Tasks.Gather(consumers);
        Assert.Equal(Enumerable.Range(0, 10), got.Order());
    });

    [Fact]
    public void ABarrierReleasesItsPartiesTogether() => TestUtil.Run(Kind, async loop =>
    {
        var barrier = new Barrier(3);
        var indexes = new List<int>();
        async LoopTask Party(double delay)
        {
            await Tasks.Sleep(delay);
            indexes.Add(await barrier.WaitAsync());
        }

        await Tasks.Gather(Party(0.001), Party(0.002), Party(0));
        Assert.Equal([0, 1, 2], indexes.Order());
        Assert.Equal(0, barrier.NWaiting);
        Assert.False(barrier.Broken);
    });

    [Fact]
    public void APrimitiveUsedFromAnotherThreadWhileItsLoopRunsFailsClearly() => TestUtil.Run(Kind, async loop =>
    {
        var gate = new Lock();
        using (await gate.AcquireAsync())
        {
            var offThread = await Tasks.ToThread(() => Record.Exception(() => gate.Release()));
            Assert.IsType<InvalidOperationException>(offThread);
            Assert.True(gate.Locked); // the refused call released nothing
        }

        Assert.False(gate.Locked);
    });
}

public sealed class EpollLockLoopContractTests() : LockLoopContractTests(LoopKinds.Epoll);

public sealed class PollLockLoopContractTests() : LockLoopContractTests(LoopKinds.Poll);

public sealed class ProactorLockLoopContractTests() : LockLoopContractTests(LoopKinds.Proactor);

public sealed class MemoryLockLoopContractTests() : LockLoopContractTests(LoopKinds.Memory);
