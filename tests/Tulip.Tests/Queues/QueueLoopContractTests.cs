using Tulip;
using Tulip.Tests.Transports;

namespace Tulip.Tests.Queues;

using Tulip.Queues;

/// <summary>
/// The queue on each real loop kind: producers and consumers with real timers, and the loop binding
/// of asyncio's <c>_LoopBoundMixin</c> (a second loop, another thread), which fails clearly.
/// </summary>
public abstract class QueueLoopContractTests(LoopKind kind) : LoopSuite(kind)
{
    [Fact]
    public void ProducersAndConsumersShareABoundedQueue() => TestUtil.Run(Kind, async loop =>
    {
        var q = new Queue<int>(3);
        var seen = new List<int>();
        async LoopTask Producer(int start)
        {
            for (int i = start; i < start + 20; i++)
            {
                await q.PutAsync(i);
                if (i % 7 == 0)
                {
                    await Tasks.Sleep(0.001);
                }
            }
        }

        async LoopTask Consumer()
        {
            await foreach (int item in q)
            {
                seen.Add(item);
                q.TaskDone();
            }
        }

        var consumers = new[] { Consumer(), Consumer(), Consumer() };
        await Tasks.Gather(Producer(0), Producer(100), Producer(200));
        await q.JoinAsync();
        q.Shutdown();
        await Tasks.Gather(consumers);
        Assert.Equal(Enumerable.Range(0, 20).Concat(Enumerable.Range(100, 20)).Concat(Enumerable.Range(200, 20)), seen.Order());
    });

    [Fact]
    public void AQueueUsedOnASecondLoopFailsClearly()
    {
        var q = new Queue<int>();
        TestUtil.Run(Kind, async loop =>
        {
            await q.PutAsync(1);
        });

        TestUtil.Run(Kind, async loop =>
        {
            var ex = Assert.Throws<InvalidOperationException>(() => q.GetNowait());
            Assert.Contains("bound to a different event loop", ex.Message);
            Assert.Throws<InvalidOperationException>(() => q.GetAsync());
            Assert.Throws<InvalidOperationException>(() => q.PutNowait(2));
            await Tasks.Yield();
        });

        Assert.Equal(1, q.Count); // nothing was taken or added by the refused calls
    }

    [Fact]
    public void AQueueUsedFromAnotherThreadWhileItsLoopRunsFailsClearly() => TestUtil.Run(Kind, async loop =>
    {
        var q = new Queue<int>();
        q.PutNowait(1); // binds it to this loop
        var offThread = await Tasks.ToThread(() => Record.Exception(() => q.GetNowait()));
        var ex = Assert.IsType<InvalidOperationException>(offThread);
        Assert.Contains("not its event loop's", ex.Message);
        var waitOffThread = await Tasks.ToThread(() => Record.Exception(() => q.GetAsync()));
        Assert.Contains("not its event loop's", Assert.IsType<InvalidOperationException>(waitOffThread).Message);
        Assert.Equal(1, await q.GetAsync());
    });
}

public sealed class EpollQueueLoopTests() : QueueLoopContractTests(LoopKinds.Epoll);

public sealed class PollQueueLoopTests() : QueueLoopContractTests(LoopKinds.Poll);

public sealed class ProactorQueueLoopTests() : QueueLoopContractTests(LoopKinds.Proactor);

public sealed class MemoryQueueLoopTests() : QueueLoopContractTests(LoopKinds.Memory);
