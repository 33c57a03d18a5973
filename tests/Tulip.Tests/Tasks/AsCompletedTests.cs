using Tulip;
using static Tulip.Tests.Combinators.LoopRunner;

namespace Tulip.Tests.Combinators;

public class AsCompletedTests
{
    [Fact]
    public void YieldsInCompletionOrder() => Run(async () =>
    {
        var slow = After(0.03, 3);
        var fast = After(0, 1);
        var middle = After(0.01, 2);
        var seen = new List<int>();
        await foreach (var f in Tasks.AsCompleted([slow, fast, middle]))
        {
            Assert.True(f.Done);
            seen.Add(f.Result());
        }

        Assert.Equal([1, 2, 3], seen);
    });

    [Fact]
    public void YieldsTheOriginalFuturesOnceEach() => Run(async () =>
    {
        var a = After(0, 1);
        var seen = new List<Future<int>>();
        await foreach (var f in Tasks.AsCompleted([a, a]))
        {
            seen.Add(f);
        }

        Assert.Same(a, Assert.Single(seen));
    });

    [Fact]
    public void AlreadyDoneFuturesComeFirst() => Run(async () =>
    {
        var loop = Tasks.CurrentTask()!.Loop;
        var done = loop.CreateFuture<int>();
        done.SetResult(7);
        var later = After(0.01, 8);
        var seen = new List<int>();
        await foreach (var f in Tasks.AsCompleted([later, done]))
        {
            seen.Add(f.Result());
        }

        Assert.Equal([7, 8], seen);
    });

    [Fact]
    public void FailedFuturesAreYieldedToo() => Run(async () =>
    {
        var bad = FailAfter(0, new FormatException("x"));
        await foreach (var f in Tasks.AsCompleted([bad]))
        {
            Assert.Throws<FormatException>(() => f.Result());
        }
    });

    [Fact]
    public void TimeoutAfterTheDoneOnes() => Run(async () =>
    {
        var fast = After(0, 1);
        var slow = After(100, 2);
        var seen = new List<int>();
        var error = await Record.ExceptionAsync(async () =>
        {
            await foreach (var f in Tasks.AsCompleted([fast, slow], timeout: 0.02))
            {
                seen.Add(f.Result());
            }
        });
        Assert.IsType<TimeoutError>(error);
        Assert.Equal([1], seen);
        Assert.False(slow.Done);
        slow.Cancel();
    });

    [Fact]
    public void EmptyEnumeratesNothing() => Run(async () =>
    {
        await foreach (var f in Tasks.AsCompleted(Array.Empty<Future<int>>(), timeout: 1))
        {
            Assert.Fail("nothing to yield");
        }
    });

    [Fact]
    public void EnumeratesOnlyOnce() => Run(async () =>
    {
        var seq = Tasks.AsCompleted([After(0, 1)]);
        await foreach (var f in seq)
        {
        }

        Assert.Throws<InvalidOperationException>(() => seq.GetAsyncEnumerator());
    });

    [Fact]
    public void CancellingTheEnumeratingTaskStopsTheWait() => Run(async () =>
    {
        var slow = After(100, 1);
        async LoopTask Consume()
        {
            await foreach (var f in Tasks.AsCompleted([slow]))
            {
            }
        }

        var consumer = Consume();
        await Tasks.Yield();
        consumer.Cancel();
        await Throws<CancelledError>(consumer);
        Assert.True(consumer.Cancelled);
        Assert.False(slow.Done);
        slow.Cancel();
    });

    [Fact]
    public void ACaughtCancellationIsDeliveredOnce() => Run(async () =>
    {
        var slow = After(100, 1);
        bool caught = false;
        async LoopTask<int> Consume()
        {
            try
            {
                await foreach (var f in Tasks.AsCompleted([slow]))
                {
                }
            }
            catch (CancelledError)
            {
                caught = true;
            }

            // asyncio delivers a cancellation once: this await is not cancelled again.
            await Tasks.Sleep(0.001);
            return 5;
        }

        var consumer = Consume();
        await Tasks.Yield();
        consumer.Cancel();
        Assert.Equal(5, await consumer);
        Assert.True(caught);
        slow.Cancel();
    });

    [Fact]
    public void CancellationTokenStopsTheWait() => Run(async () =>
    {
        using var cts = new CancellationTokenSource();
        var slow = After(100, 1);
        var consumer = Consume(cts.Token);
        await Tasks.Yield();
        cts.Cancel();
        await Throws<CancelledError>(consumer);
        Assert.False(slow.Done);
        slow.Cancel();

        async LoopTask Consume(CancellationToken token)
        {
            await foreach (var f in Tasks.AsCompleted([slow], cancellationToken: token))
            {
            }
        }
    });

    [Fact]
    public void WithCancellationTokenStopsTheWait() => Run(async () =>
    {
        using var cts = new CancellationTokenSource();
        var slow = After(100, 1);
        var fast = After(0, 2);
        var seen = new List<int>();
        var consumer = Consume(cts.Token);
        await Tasks.Sleep(0.01);
        cts.Cancel();
        await Throws<CancelledError>(consumer);
        Assert.Equal([2], seen);
        slow.Cancel();

        async LoopTask Consume(CancellationToken token)
        {
            await foreach (var f in Tasks.AsCompleted([slow, fast], cancellationToken: CancellationToken.None).WithCancellation(token))
            {
                seen.Add(f.Result());
            }
        }
    });
}
