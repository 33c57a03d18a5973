using Tulip;

namespace Tulip.Tests.Combinators;

/// <summary>
/// The combinators under the task model's rule that results are never thrown away across a
/// cancellation: a result that arrives in the same iteration as the deadline reaches the caller.
/// Virtual time orders the two exactly: timers due at the same time run in the order they were made.
/// </summary>
public sealed class CancelledResultTests
{
    private sealed class Resource : IDisposable
    {
        public bool Disposed { get; private set; }

        public void Dispose() => Disposed = true;
    }

    [Fact]
    public void WaitFor_returns_a_result_that_arrives_as_the_timeout_fires()
    {
        var resource = new Resource();
        var got = LoopRunner.Run(async () =>
        {
            var loop = EventLoop.GetRunningLoop();
            var ready = loop.CreateFuture<Resource>();
            // Due at the deadline, made before WaitFor's timer: the result comes first, the timeout second.
            loop.CallAt(loop.Time() + 1, () => ready.SetResult(resource));
            return await Tasks.WaitFor(Inner(ready), 1);
        });
        Assert.Same(resource, got);
        Assert.False(resource.Disposed);

        static async LoopTask<Resource> Inner(Future<Resource> ready) => await ready;
    }

    [Fact]
    public void WithTimeout_returns_a_result_the_body_got_as_the_deadline_passed()
    {
        var resource = new Resource();
        var got = LoopRunner.Run(async () =>
        {
            var loop = EventLoop.GetRunningLoop();
            var ready = loop.CreateFuture<Resource>();
            loop.CallAt(loop.Time() + 1, () => ready.SetResult(resource));
            return await Tasks.WithTimeout(1, async () => await ready);
        });
        Assert.Same(resource, got);
    }

    [Fact]
    public void A_result_got_as_the_deadline_passed_is_disposed_by_the_body_when_it_awaits_again()
    {
        var resource = new Resource();
        bool timedOut = LoopRunner.Run(async () =>
        {
            var loop = EventLoop.GetRunningLoop();
            var ready = loop.CreateFuture<Resource>();
            loop.CallAt(loop.Time() + 1, () => ready.SetResult(resource));
            try
            {
                await Tasks.WithTimeout(1, async () =>
                {
                    using var r = await ready;
                    await Tasks.Sleep(10);
                    return 0;
                });
                return false;
            }
            catch (TimeoutError)
            {
                return true;
            }
        });
        Assert.True(timedOut);
        Assert.True(resource.Disposed);
    }
}
