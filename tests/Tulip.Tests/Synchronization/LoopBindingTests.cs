using Tulip.Testing;
using static Tulip.Tests.Synchronization.SyncRunner;

namespace Tulip.Tests.Synchronization;

using Tulip.Synchronization;

/// <summary>
/// asyncio's <c>_LoopBoundMixin</c> on every primitive: bound to the first loop that uses it, refused
/// from any other loop and off its loop's thread, with messages that name the loops and say what to
/// do; and the uncontended fast paths allocate nothing.
/// </summary>
public sealed class LoopBindingTests
{
    private static readonly Func<bool> s_true = static () => true;

    public static TheoryData<string> Primitives => new(["Lock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier"]);

    [Theory]
    [MemberData(nameof(Primitives))]
    public void UsedOnASecondLoop_ThrowsNamingBothLoops(string kind)
    {
        using var first = new TestEventLoop();
        using var second = new TestEventLoop();
        var primitive = Make(kind);
        first.RunUntilComplete(() => Use(primitive));
        var ex = second.RunUntilComplete(async () => await Throws<InvalidOperationException>(UseAsFuture(primitive)));
        Assert.Contains("different event loop", ex.Message, StringComparison.Ordinal);
        Assert.Contains(LoopBinding.Describe(first), ex.Message, StringComparison.Ordinal);
        Assert.Contains(LoopBinding.Describe(second), ex.Message, StringComparison.Ordinal);

        // Still good on its own loop.
        first.RunUntilComplete(() => Use(primitive));
    }

    [Fact]
    public void ReleaseAndSet_OnASecondLoop_ThrowToo()
    {
        using var first = new TestEventLoop();
        using var second = new TestEventLoop();
        var gate = new Lock();
        var ev = new Event();
        var sem = new Semaphore();
        var cond = new Condition();
        first.RunUntilComplete(async () =>
        {
            await gate.AcquireAsync();
            ev.Set();
            await sem.AcquireAsync();
            await cond.AcquireAsync();
        });
        second.RunUntilComplete(() =>
        {
            Assert.Contains("different event loop", Assert.Throws<InvalidOperationException>(gate.Release).Message, StringComparison.Ordinal);
            Assert.Contains("different event loop", Assert.Throws<InvalidOperationException>(ev.Clear).Message, StringComparison.Ordinal);
            Assert.Contains("different event loop", Assert.Throws<InvalidOperationException>(sem.Release).Message, StringComparison.Ordinal);
            Assert.Contains("different event loop", Assert.Throws<InvalidOperationException>(() => cond.Notify()).Message, StringComparison.Ordinal);
            return Ticks(0);
        });
    }

    [Fact]
    public void UsedOffItsLoopThread_ThrowsSayingHowToReachTheLoop() => Run(async () =>
    {
        var gate = new Lock();
        var ev = new Event();
        await gate.AcquireAsync();
        await ev.WaitAsync(new CancellationToken(canceled: true)).AsFuture().ContinueIgnoringCancellation();

        var release = await Task.Run(() => Record.Exception(gate.Release));
        var acquire = await Task.Run(() => Record.Exception(() => gate.AcquireAsync()));
        var set = await Task.Run(() => Record.Exception(ev.Set));
        foreach (var error in new[] { release, acquire, set })
        {
            var ex = Assert.IsType<InvalidOperationException>(error);
            Assert.Contains(LoopBinding.Describe((BaseEventLoop)EventLoop.GetRunningLoop()), ex.Message, StringComparison.Ordinal);
            Assert.Contains("CallSoonThreadSafe", ex.Message, StringComparison.Ordinal);
        }

        Assert.True(gate.Locked);
        Assert.False(ev.IsSet);
        gate.Release();
    });

    [Fact]
    public void Unbound_NeverWaitingMembersWorkWithNoLoop_ButWaitingNeedsOne()
    {
        var sem = new Semaphore(0);
        sem.Release();
        var ev = new Event();
        ev.Set();
        ev.Clear();
        var ex = Assert.Throws<InvalidOperationException>(() => new Lock().AcquireAsync());
        Assert.Contains("no running event loop", ex.Message, StringComparison.Ordinal);

        // The first loop to use them binds them, with the state set up before.
        using var loop = new TestEventLoop();
        loop.RunUntilComplete(async () =>
        {
            Assert.False(sem.Locked);
            await sem.AcquireAsync();
            Assert.True(sem.Locked);
        });
        Assert.Throws<InvalidOperationException>(sem.Release);
    }

    /// <summary>The uncontended paths complete synchronously with no allocation (ValueFuture results).</summary>
    [Fact]
    public void FastPaths_AllocateNothing() => Run(async () =>
    {
        var gate = new Lock();
        var sem = new Semaphore(2);
        var bounded = new BoundedSemaphore(1);
        var ev = new Event();
        ev.Set();
        var cond = new Condition();

        async LoopTask Round()
        {
            using (await gate.AcquireAsync())
            {
            }

            using (await sem.AcquireAsync())
            {
            }

            using (await bounded.AcquireAsync())
            {
            }

            await ev.WaitAsync();
            using (await cond.AcquireAsync())
            {
                await cond.WaitForAsync(s_true);
            }
        }

        await Round();
        // The least of up to three measured passes must be 0: an allocation per use shows in every pass, a one-off
        // of the runtime's on this thread (CoreLib's tiering, which under load can fall in any pass) in one at most.
        long allocated = long.MaxValue;
        for (int pass = 0; pass < 3 && allocated != 0; pass++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 1000; i++)
            {
                var acquire = gate.AcquireAsync();
                Assert.True(acquire.IsCompletedSuccessfully);
                using (await acquire)
                {
                }

                using (await sem.AcquireAsync())
                {
                }

                using (await bounded.AcquireAsync())
                {
                }

                await ev.WaitAsync();
                using (await cond.AcquireAsync())
                {
                    await cond.WaitForAsync(s_true);
                }
            }

            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.Equal(0, allocated);
    });

    private static object Make(string kind) => kind switch
    {
        "Lock" => new Lock(),
        "Event" => new Event(),
        "Condition" => new Condition(),
        "Semaphore" => new Semaphore(),
        "BoundedSemaphore" => new BoundedSemaphore(),
        "Barrier" => new Barrier(1),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown primitive"),
    };

    /// <summary>Binds the primitive by a use that completes on the loop.</summary>
    private static async LoopTask Use(object primitive)
    {
        await UseAsFuture(primitive);
    }

    /// <summary>One use of the primitive as a future: a refusal becomes the future's exception.</summary>
    private static Future UseAsFuture(object primitive)
    {
        var loop = EventLoop.GetRunningLoop();
        try
        {
            switch (primitive)
            {
                case Lock gate:
                    using (gate.AcquireAsync().Result())
                    {
                    }

                    break;
                case Event ev:
                    ev.Set();
                    _ = ev.WaitAsync().Result();
                    break;
                case Condition cond:
                    using (cond.AcquireAsync().Result())
                    {
                        cond.NotifyAll();
                    }

                    break;
                case Semaphore sem:
                    using (sem.AcquireAsync().Result())
                    {
                    }

                    break;
                case Barrier barrier:
                    return barrier.WaitAsync();
            }
        }
        catch (InvalidOperationException ex)
        {
            var failed = loop.CreateFuture<VoidResult>();
            failed.SetException(ex);
            return failed;
        }

        var done = loop.CreateFuture<VoidResult>();
        done.SetResult(default);
        return done;
    }
}

/// <summary>Small helpers for the binding tests.</summary>
internal static class FutureTestExtensions
{
    /// <summary>Awaits <paramref name="future"/>, taking a cancellation as its outcome.</summary>
    public static async LoopTask ContinueIgnoringCancellation(this Future future)
    {
        try
        {
            await future;
        }
        catch (CancelledError)
        {
        }
    }
}
