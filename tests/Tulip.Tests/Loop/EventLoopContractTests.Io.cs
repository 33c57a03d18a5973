using Tulip.Tests.Selectors;

namespace Tulip.Tests.Loop;

public abstract partial class EventLoopContractTests
{
    /// <summary>
    /// Readiness callbacks are optional in PEP 3156: a loop with fd readiness says so by being an
    /// <see cref="IReadinessEventLoop"/> and takes them (their behaviour: <see cref="ReadinessEventLoopTests"/>);
    /// any other loop refuses all four with <see cref="NotSupportedException"/> naming the loop that has
    /// them, as asyncio's proactor does, and registers nothing.
    /// </summary>
    [Fact]
    public void Readiness_callbacks_work_where_the_loop_has_readiness_and_are_refused_naming_the_selector_loop_elsewhere()
    {
        using var h = NewLoop();
        using var pipe = new NativePipe();
        Assert.Equal(Kind.Readiness, h.Loop is IReadinessEventLoop);
        var calls = new Func<bool>[]
        {
            () => { h.Loop.AddReader(pipe.ReadFd, static () => { }); return true; },
            () => h.Loop.RemoveReader(pipe.ReadFd),
            () => { h.Loop.AddWriter(pipe.WriteFd, static () => { }); return true; },
            () => h.Loop.RemoveWriter(pipe.WriteFd),
        };
        foreach (var call in calls)
        {
            if (Kind.Readiness)
            {
                Assert.True(call());
            }
            else
            {
                var ex = Assert.Throws<NotSupportedException>(() => call());
                Assert.Contains("SelectorEventLoop", ex.Message, StringComparison.Ordinal);
                Assert.Contains("readiness", ex.Message, StringComparison.Ordinal);
            }
        }
    }
}
