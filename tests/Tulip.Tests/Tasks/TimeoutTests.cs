using Tulip;
using static Tulip.Tests.Combinators.LoopRunner;

namespace Tulip.Tests.Combinators;

public class TimeoutTests
{
    [Fact]
    public void WithTimeoutExpiresWithTimeoutError() => Run(async () =>
    {
        bool bodyCancelled = false;
        var outer = Tasks.CurrentTask()!;
        var run = Tasks.WithTimeout(0.01, async () =>
        {
            try
            {
                await Tasks.Sleep(100);
            }
            catch (CancelledError)
            {
                bodyCancelled = true;
                throw;
            }
        });
        var error = await Throws<TimeoutError>(run);
        Assert.IsAssignableFrom<OperationCanceledException>(error.InnerException);
        Assert.True(bodyCancelled);
        Assert.Equal(0, ((LoopTask)outer).Cancelling());
    });

    [Fact]
    public void WithTimeoutNotExpiredReturnsTheResult() => Run(async () =>
    {
        int result = await Tasks.WithTimeout(100, () => After(0, 42));
        Assert.Equal(42, result);
        // The timer is gone: nothing cancels this task later.
        await Tasks.Sleep(0.02);
    });

    [Fact]
    public void WithTimeoutNullNeverExpires() => Run(async () =>
    {
        var result = await Tasks.WithTimeout<int>(null, async scope =>
        {
            Assert.Null(scope.When);
            await Tasks.Sleep(0.01);
            Assert.False(scope.Expired);
            return 7;
        });
        Assert.Equal(7, result);
    });

    [Fact]
    public void WithTimeoutPassesOtherExceptionsThrough() => Run(async () =>
    {
        var run = Tasks.WithTimeout(100, () => FailAfter(0, new FormatException("bad")));
        var error = await Throws<FormatException>(run);
        Assert.Equal("bad", error.Message);
    });

    [Fact]
    public void RescheduleMovesTheDeadlineLater() => Run(async () =>
    {
        var result = await Tasks.WithTimeout<int>(0.01, async scope =>
        {
            scope.Reschedule(Tasks.CurrentTask()!.Loop.Time() + 100);
            await Tasks.Sleep(0.03);
            Assert.False(scope.Expired);
            return 1;
        });
        Assert.Equal(1, result);
    });

    [Fact]
    public void RescheduleToThePastExpires() => Run(async () =>
    {
        TimeoutScope? seen = null;
        var run = Tasks.WithTimeout(null, async scope =>
        {
            seen = scope;
            scope.Reschedule(scope.When ?? 0);
            await Tasks.Sleep(100);
        });
        await Throws<TimeoutError>(run);
        Assert.True(seen!.Expired);
        Assert.Throws<InvalidOperationException>(() => seen.Reschedule(null));
    });

    [Fact]
    public void NestedInnerExpiresOuterDoesNot() => Run(async () =>
    {
        var result = await Tasks.WithTimeout<string>(100, async outer =>
        {
            try
            {
                await Tasks.WithTimeout(0.01, async () => await Tasks.Sleep(100));
            }
            catch (TimeoutError)
            {
                Assert.False(outer.Expired);
                return "inner timed out";
            }

            return "no timeout";
        });
        Assert.Equal("inner timed out", result);
    });

    [Fact]
    public void NestedScopesInOneTaskOnlyTheInnerConverts() => Run(async () =>
    {
        // Both scopes on the same task, the inner one expiring: the outer sees the inner's TimeoutError.
        var result = await Tasks.WithTimeout<string>(100, async outer =>
        {
            var task = (LoopTask<string>)Tasks.CurrentTask()!;
            var inner = Tasks.Timeout(0.01);
            try
            {
                await Tasks.Sleep(100);
            }
            catch (CancelledError ex)
            {
                // What WithTimeout does on the way out: the expired inner scope converts.
                Assert.IsType<TimeoutError>(inner.Exit(ex));
            }

            Assert.True(inner.Expired);
            Assert.Equal(0, task.Cancelling());
            return outer.Expired ? "outer" : "inner";
        });
        Assert.Equal("inner", result);
    });

    [Fact]
    public void OuterCancellationIsNotConverted() => Run(async () =>
    {
        // The deadline passes and the task is cancelled from outside as well: CancelledError wins.
        var run = Tasks.WithTimeout(0, async () =>
        {
            var self = Tasks.CurrentTask()!;
            await Tasks.Sleep(100);
        });
        run.Cancel();
        await Throws<CancelledError>(run);
        Assert.True(run.Cancelled);
    });

    [Fact]
    public void OuterCancelBeforeDeadlineIsNotConverted() => Run(async () =>
    {
        var run = Tasks.WithTimeout(100, async () => await Tasks.Sleep(100));
        await Tasks.Yield();
        run.Cancel("outside");
        var error = await Throws<CancelledError>(run);
        Assert.True(run.Cancelled);
    });

    [Fact]
    public void CancellationTokenCancelsAndIsNotAConversion() => Run(async () =>
    {
        using var cts = new CancellationTokenSource();
        var run = Tasks.WithTimeout(100, async () => await Tasks.Sleep(100), cts.Token);
        await Tasks.Yield();
        cts.Cancel();
        await Throws<OperationCanceledException>(run);
        Assert.True(run.Cancelled);
    });

    [Fact]
    public void UsingScopeCancelsAndWithdrawsItsCancellation() => Run(async () =>
    {
        var task = (LoopTask)Tasks.CurrentTask()!;
        TimeoutScope? scope = null;
        try
        {
            using (scope = Tasks.Timeout(0.01))
            {
                await Tasks.Sleep(100);
            }
        }
        catch (CancelledError)
        {
        }

        Assert.True(scope!.Expired);
        Assert.Equal(0, task.Cancelling());
        // The task goes on normally: no cancellation is left pending.
        await Tasks.Sleep(0.001);
    });

    [Fact]
    public void UsingScopeThatDoesNotExpireLeavesNoTimer() => Run(async () =>
    {
        await using (var scope = Tasks.Timeout(0.01))
        {
            await Tasks.Yield();
            Assert.False(scope.Expired);
        }

        await Tasks.Sleep(0.03);
    });

    [Fact]
    public void ScopeOutsideATaskIsRefused()
    {
        using var loop = new Tulip.Testing.TestEventLoop(); // any loop: what is refused is the call outside a task
        Exception? error = null;
        loop.CallSoon(() =>
        {
            error = Record.Exception(() => Tasks.Timeout(1));
            loop.Stop();
        });
        loop.RunForever();
        Assert.IsType<InvalidOperationException>(error);
    }
}
