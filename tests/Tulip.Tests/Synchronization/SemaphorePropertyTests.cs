using CsCheck;
using Tulip.Testing;

namespace Tulip.Tests.Synchronization;

using Tulip.Synchronization;

/// <summary>
/// Random interleavings of acquire, release, cancel (by task or by token) and loop iterations on a
/// <see cref="Semaphore"/>, checked against a model of what a semaphore promises: permits are never
/// lost or counted twice, no one waits while a permit is free, and waiters that were not cancelled
/// get permits in the order they asked.
/// </summary>
public sealed class SemaphorePropertyTests
{
    private enum Op
    {
        Acquire,
        AcquireWithToken,
        CancelTask,
        CancelToken,
        Release,
        Tick,
    }

    [Fact]
    public void RandomInterleavings_KeepEveryPermitAndFifoOrder()
    {
        var ops = Gen.Select(Gen.Enum<Op>(), Gen.Int[0, 7]).Array[1, 60];
        Gen.Select(Gen.Int[0, 3], ops, Gen.Bool).Sample(
            (permits, script, bounded) => RunScript(permits, script, bounded),
            iter: 300,
            threads: 1);
    }

    private static void RunScript(int permits, (Op Kind, int Pick)[] script, bool bounded)
    {
        using var loop = new TestEventLoop();
        var reported = new List<ExceptionContext>();
        loop.SetExceptionHandler((_, context) => reported.Add(context));
        loop.RunUntilComplete(async () =>
        {
            var sem = bounded ? new BoundedSemaphore(permits) : new Semaphore(permits);
            var model = new Model(sem, permits);
            foreach (var (kind, pick) in script)
            {
                switch (kind)
                {
                    case Op.Acquire:
                        model.Acquire(withToken: false);
                        break;
                    case Op.AcquireWithToken:
                        model.Acquire(withToken: true);
                        break;
                    case Op.CancelTask:
                        model.Cancel(pick, byToken: false);
                        break;
                    case Op.CancelToken:
                        model.Cancel(pick, byToken: true);
                        break;
                    case Op.Release:
                        model.Release(pick);
                        break;
                    case Op.Tick:
                        await Tasks.Sleep(0);
                        break;
                }

                model.CheckAlways();
            }

            await model.Settle();
            model.CheckSettled();

            // Drain: cancel every waiter, give every permit back; all of them are there again.
            model.CancelAll();
            await model.Settle();
            model.ReleaseAll();
            await model.Settle();
            model.CheckSettled();
            Assert.Equal(permits, sem.Value);
            Assert.Equal(0, sem.WaiterCount);
        });
        Assert.Empty(reported);
    }

    private sealed class Model
    {
        private readonly Semaphore _sem;
        private readonly int _permits;
        private readonly List<Acquirer> _all = [];
        private readonly List<int> _acquiredOrder = [];

        public Model(Semaphore sem, int permits)
        {
            _sem = sem;
            _permits = permits;
        }

        public void Acquire(bool withToken)
        {
            var acquirer = new Acquirer(_all.Count, withToken ? new CancellationTokenSource() : null);
            _all.Add(acquirer);
            acquirer.Task = Run(acquirer);
        }

        public void Cancel(int pick, bool byToken)
        {
            var candidates = _all.Where(a => !a.Task!.Done && !a.CancelRequested && (!byToken || a.Cts is not null)).ToList();
            if (candidates.Count == 0)
            {
                return;
            }

            var victim = candidates[pick % candidates.Count];
            victim.CancelRequested = true;
            if (byToken)
            {
                victim.Cts!.Cancel();
            }
            else
            {
                victim.Task!.Cancel();
            }
        }

        public void Release(int pick)
        {
            var holders = _all.Where(a => a.Holds).ToList();
            if (holders.Count == 0)
            {
                return;
            }

            var holder = holders[pick % holders.Count];
            holder.Holds = false;
            holder.Releaser.Dispose();
        }

        public void CancelAll()
        {
            foreach (var a in _all.Where(a => !a.Task!.Done))
            {
                a.CancelRequested = true;
                a.Task!.Cancel();
            }
        }

        public void ReleaseAll()
        {
            foreach (var a in _all.Where(a => a.Holds))
            {
                a.Holds = false;
                a.Releaser.Dispose();
            }
        }

        /// <summary>Enough iterations for every wake-up and callback in flight to land.</summary>
        public async LoopTask Settle()
        {
            for (int i = 0; i < 8; i++)
            {
                await Tasks.Sleep(0);
            }
        }

        /// <summary>True at every step: never more permits out than there are.</summary>
        public void CheckAlways()
        {
            int held = _all.Count(a => a.Holds);
            Assert.InRange(_sem.Value, 0, _permits);
            Assert.InRange(held, 0, _permits - _sem.Value);
        }

        /// <summary>True once nothing is in flight: the model's answer.</summary>
        public void CheckSettled()
        {
            int held = _all.Count(a => a.Holds);
            var waiting = _all.Where(a => !a.Task!.Done).ToList();

            // Not lost, not duplicated: every permit is free or held by a task that knows it.
            Assert.Equal(_permits, _sem.Value + held);

            // No one waits while a permit is free, and the queue holds exactly the waiting tasks.
            if (_sem.Value > 0)
            {
                Assert.Empty(waiting);
            }

            Assert.Equal(waiting.Count, _sem.WaiterCount);
            Assert.All(waiting, a => Assert.False(a.CancelRequested));

            // A task that ended cancelled never got a permit; every other finished task did.
            foreach (var a in _all.Where(a => a.Task!.Done))
            {
                Assert.Equal(!a.Task!.Cancelled, a.Acquired);
            }

            // FIFO: permits were taken in arrival order, and no waiter that was not cancelled was
            // passed over by a later one.
            Assert.Equal(_acquiredOrder.Order(), _acquiredOrder);
            foreach (int id in _acquiredOrder)
            {
                Assert.All(_all.Take(id).Where(a => !a.CancelRequested), earlier => Assert.True(earlier.Acquired,
                    $"acquirer {earlier.Id} (not cancelled) was passed over by acquirer {id}"));
            }
        }

        private async LoopTask Run(Acquirer acquirer)
        {
            var releaser = await _sem.AcquireAsync(acquirer.Cts?.Token ?? default);
            acquirer.Releaser = releaser;
            acquirer.Acquired = true;
            acquirer.Holds = true;
            _acquiredOrder.Add(acquirer.Id);
        }
    }

    private sealed class Acquirer(int id, CancellationTokenSource? cts)
    {
        public int Id { get; } = id;

        public CancellationTokenSource? Cts { get; } = cts;

        public LoopTask? Task { get; set; }

        public bool CancelRequested { get; set; }

        public bool Acquired { get; set; }

        public bool Holds { get; set; }

        public SemaphoreReleaser Releaser { get; set; }
    }
}
