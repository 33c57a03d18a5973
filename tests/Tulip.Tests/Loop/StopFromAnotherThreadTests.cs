using Microsoft.Extensions.Logging;

namespace Tulip.Tests.Loop;

/// <summary>
/// Stop is thread-safe (issue 9): from another thread it wakes a loop that waits for I/O with nothing
/// scheduled. Before the fix the flag was set but the loop slept on until something else woke it.
/// </summary>
public abstract class StopFromAnotherThreadTests : LoopSuite
{
    protected StopFromAnotherThreadTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>Makes the loop under test.</summary>
    private BaseEventLoop CreateLoop(ILoggerFactory? loggerFactory) => Kind.Create(loggerFactory);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Stop_from_another_thread_returns_a_loop_waiting_with_nothing_scheduled(bool debug)
    {
        using var h = new LoopHarness(CreateLoop);
        var loop = h.Loop;
        loop.Debug = debug;
        for (int round = 0; round < 20; round++)
        {
            using var running = new ManualResetEventSlim();
            // The one callback tells the stopper the loop runs; after it the loop has nothing to do and waits.
            loop.CallSoon(running.Set);
            var runner = new Thread(loop.RunForever) { Name = "loop", IsBackground = true };
            runner.Start();
            Assert.True(running.Wait(LoopHarness.Patience), "the loop never ran its callback");

            var stopper = new Thread(loop.Stop) { Name = "stopper", IsBackground = true };
            stopper.Start();
            Assert.True(stopper.Join(LoopHarness.Patience));

            bool returned = runner.Join(LoopHarness.Patience);
            if (!returned)
            {
                // Free the thread so the run goes on; the test has failed already.
                loop.CallSoonThreadSafe(loop.Stop);
                runner.Join(LoopHarness.Patience);
            }

            Assert.True(returned, $"round {round}: RunForever did not return after Stop() from another thread");
            Assert.False(loop.IsRunning);
        }
    }

    [Fact]
    public void Stop_from_another_thread_before_the_loop_runs_makes_the_next_run_one_iteration()
    {
        using var h = new LoopHarness(CreateLoop);
        var loop = h.Loop;
        var stopper = new Thread(loop.Stop);
        stopper.Start();
        Assert.True(stopper.Join(LoopHarness.Patience));
        int calls = 0;
        loop.CallSoon(() => calls++);

        var runner = new Thread(loop.RunForever) { IsBackground = true };
        runner.Start();
        Assert.True(runner.Join(LoopHarness.Patience), "RunForever after a Stop should run one iteration and return");
        Assert.Equal(1, calls);
    }
}

/// <summary>Stop from another thread on the epoll loop.</summary>
[Collection(NativeFdCollection.Name)]
public sealed class EpollStopFromAnotherThreadTests() : StopFromAnotherThreadTests(LoopKinds.Epoll);

/// <summary>Stop from another thread on the poll(2) loop.</summary>
[Collection(NativeFdCollection.Name)]
public sealed class PollStopFromAnotherThreadTests() : StopFromAnotherThreadTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorStopFromAnotherThreadTests() : StopFromAnotherThreadTests(LoopKinds.Proactor);
