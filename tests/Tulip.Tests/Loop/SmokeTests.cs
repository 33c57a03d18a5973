using Tulip;

namespace Tulip.Tests.Loop;

public class SmokeTests
{
    private static async LoopTask<int> AddLater(int a, int b)
    {
        await Tasks.Sleep(0.001);
        return a + b;
    }

    private static async LoopTask<int> Main1()
    {
        var results = await Tasks.Gather(AddLater(1, 2), AddLater(3, 4));
        await Task.Delay(1);
        return results[0] + results[1];
    }

    [Fact]
    public void RunsCoroutineWithSleepsGatherAndDotnetAwait()
    {
        Assert.Equal(10, EventLoop.Run(Main1));
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void CancelDeliversAtAwait(string kind)
    {
        using var loop = LoopKinds.Named(kind).Create();
        bool caught = false;
        async LoopTask Worker()
        {
            try
            {
                await Tasks.Sleep(100);
            }
            catch (CancelledError)
            {
                caught = true;
                throw;
            }
        }

        var result = loop.RunUntilComplete(async () =>
        {
            var t = Worker();
            await Tasks.Sleep(0);
            t.Cancel("stop");
            var ex = await Assert.ThrowsAsync<CancelledError>(async () => await t);
            Assert.Equal("stop", ex.Message);
            return t.Cancelled;
        });
        Assert.True(result);
        Assert.True(caught);
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void CallSoonFifoAndThreadSafe(string kind)
    {
        using var loop = LoopKinds.Named(kind).Create();
        var order = new List<int>();
        for (int i = 0; i < 10; i++)
        {
            int k = i;
            loop.CallSoon(() => order.Add(k));
        }

        var t = new Thread(() => loop.CallSoonThreadSafe(() => loop.Stop()));
        loop.CallSoon(() => t.Start());
        loop.RunForever();
        t.Join();
        Assert.Equal(Enumerable.Range(0, 10), order);
    }
}
