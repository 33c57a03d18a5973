using Microsoft.Extensions.Logging;

namespace Tulip.Tests.Loop;

/// <summary>
/// Starting a loop is atomic (issue 9): of two threads that call RunForever or RunUntilComplete at
/// the same moment, exactly one runs the loop and the other gets "already running" and schedules
/// nothing. Before the fix both passed the check, and callbacks ran on two threads at once.
/// </summary>
public abstract class RunForeverRaceTests : LoopSuite
{
    protected RunForeverRaceTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>Rounds per test: each releases two threads together through a barrier.</summary>
    private const int Rounds = 200;

    /// <summary>Makes the loop under test.</summary>
    private BaseEventLoop CreateLoop(ILoggerFactory? loggerFactory) => Kind.Create(loggerFactory);

    [Fact]
    public void Of_two_threads_starting_RunForever_at_once_exactly_one_runs_every_time()
    {
        using var h = new LoopHarness(CreateLoop);
        var loop = h.Loop;
        for (int round = 0; round < Rounds; round++)
        {
            int ran = 0;
            int refused = 0;
            string? refusal = null;
            Exception? unexpected = null;
            using var barrier = new Barrier(2);
            void Start()
            {
                barrier.SignalAndWait();
                try
                {
                    loop.RunForever();
                    Interlocked.Increment(ref ran);
                }
                catch (InvalidOperationException ex)
                {
                    refusal = ex.Message;
                    Interlocked.Increment(ref refused);
                    // The winner waits with nothing scheduled: Stop from this thread wakes it.
                    loop.Stop();
                }
                catch (Exception ex)
                {
                    // Not thrown on this thread's stack to xunit: it would end the test process.
                    unexpected = ex;
                }
            }

            var (first, second) = (new Thread(Start) { Name = "race-1", IsBackground = true }, new Thread(Start) { Name = "race-2", IsBackground = true });
            // Should both threads run (the defect), nobody would stop them: the watchdog does, and the counts fail.
            using (new Timer(_ => loop.CallSoonThreadSafe(loop.Stop), null, LoopHarness.Patience, TimeSpan.FromMilliseconds(50)))
            {
                first.Start();
                second.Start();
                Assert.True(first.Join(LoopHarness.Patience * 2) && second.Join(LoopHarness.Patience * 2), $"round {round}: a thread did not finish");
            }

            Assert.Null(unexpected);
            Assert.True(ran == 1 && refused == 1, $"round {round}: {ran} ran and {refused} were refused; exactly one of each expected");
            Assert.Equal("This event loop is already running.", refusal);
            Assert.False(loop.IsRunning);
        }

        // The loop is intact: it still runs callbacks in order.
        var order = new List<int>();
        loop.CallSoon(() => order.Add(1));
        loop.CallSoon(() => order.Add(2));
        h.RunOnce();
        Assert.Equal([1, 2], order);
    }

    [Fact]
    public void Of_two_threads_starting_RunUntilComplete_at_once_the_loser_starts_no_task()
    {
        using var h = new LoopHarness(CreateLoop);
        var loop = h.Loop;
        for (int round = 0; round < Rounds; round++)
        {
            int bodies = 0;
            int completed = 0;
            int refused = 0;
            Exception? unexpected = null;
            var gate = loop.CreateFuture<int>();
            using var barrier = new Barrier(2);
            async LoopTask<int> Body()
            {
                Interlocked.Increment(ref bodies);
                return await gate;
            }

            void Start()
            {
                barrier.SignalAndWait();
                try
                {
                    if (loop.RunUntilComplete(Body) == 7)
                    {
                        Interlocked.Increment(ref completed);
                    }
                }
                catch (InvalidOperationException ex) when (ex.Message == "This event loop is already running.")
                {
                    Interlocked.Increment(ref refused);
                    loop.CallSoonThreadSafe(() => gate.TrySetResult(7));
                }
                catch (Exception ex)
                {
                    unexpected = ex;
                }
            }

            var (first, second) = (new Thread(Start) { Name = "race-1", IsBackground = true }, new Thread(Start) { Name = "race-2", IsBackground = true });
            using (new Timer(_ => loop.CallSoonThreadSafe(() => gate.TrySetResult(7)), null, LoopHarness.Patience, TimeSpan.FromMilliseconds(50)))
            {
                first.Start();
                second.Start();
                Assert.True(first.Join(LoopHarness.Patience * 2) && second.Join(LoopHarness.Patience * 2), $"round {round}: a thread did not finish");
            }

            Assert.Null(unexpected);
            Assert.True(completed == 1 && refused == 1 && bodies == 1,
                $"round {round}: {completed} completed, {refused} refused, {bodies} task bodies started; expected 1, 1, 1");
        }

        Assert.Empty(loop.AllTasks());
    }
}

/// <summary>The start race on the epoll loop.</summary>
[Collection(NativeFdCollection.Name)]
public sealed class EpollRunForeverRaceTests() : RunForeverRaceTests(LoopKinds.Epoll);

/// <summary>The start race on the poll(2) loop.</summary>
[Collection(NativeFdCollection.Name)]
public sealed class PollRunForeverRaceTests() : RunForeverRaceTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorRunForeverRaceTests() : RunForeverRaceTests(LoopKinds.Proactor);
