using CsCheck;
using Tulip;
using static Tulip.Tests.Combinators.LoopRunner;

namespace Tulip.Tests.Queues;

using Tulip.Queues;

/// <summary>
/// Random interleavings of waiting and non-waiting puts and gets, cancellations (of a waiter, and of
/// one just woken), task_done, join and shutdown (immediate or not) across many tasks, checked
/// against a simple model of the queue: after every step (with the woken tasks run) each call and
/// each task has the outcome the model says, and in the end the items left come out in the model's
/// order, so no item is lost or duplicated and each kind keeps its order.
/// </summary>
public class QueuePropertyTests
{
    private enum Op
    {
        PutWait,
        GetWait,
        PutNowait,
        GetNowait,
        CancelWaiter,
        PutNowaitThenCancelWokenGetter,
        GetNowaitThenCancelWokenPutter,
        TaskDone,
        JoinWait,
        Shutdown,
        ShutdownImmediate,
    }

    private enum Outcome
    {
        Pending,
        Done,
        ShutDown,
        Cancelled,
    }

    private readonly record struct Item(int Priority, int Id);

    private static readonly Gen<(int Kind, int MaxSize, (Op Op, int Arg)[] Steps)> s_scenarios =
        Gen.Select(
            Gen.Int[0, 2],
            Gen.Int[0, 3],
            Gen.Select(Gen.Frequency((6, Gen.Const(0)), (1, Gen.Const(1))), Gen.Int[0, (int)Op.ShutdownImmediate], Gen.Int[0, 7],
                (rare, op, arg) => ((Op)(rare == 0 && op >= (int)Op.Shutdown ? op - 2 : op), arg)).Array[0, 60]);

    [Fact]
    public void EveryInterleavingGivesTheModelsAnswer() =>
        s_scenarios.Sample(s => Check(s.Kind, s.MaxSize, s.Steps), iter: 400, threads: 1,
            print: s => $"kind={s.Kind} maxsize={s.MaxSize} steps=[{string.Join(", ", s.Steps.Select(x => $"{x.Op}({x.Arg})"))}]");

    private sealed class Waiter
    {
        public required bool IsGet { get; init; }

        public required Future Real { get; init; }

        public Item Value { get; init; }

        public Outcome Expected { get; set; }

        public Item ExpectedItem { get; set; }
    }

    /// <summary>The model: items in insertion order, FIFO lists of waiting getters and putters, the count of unfinished tasks.</summary>
    private sealed class Model(int kind, int maxSize)
    {
        public List<Item> Items { get; } = [];

        public List<Waiter> Getters { get; } = [];

        public List<Waiter> Putters { get; } = [];

        public List<Waiter> Joiners { get; } = [];

        public int Unfinished { get; set; }

        public bool IsShutDown { get; set; }

        public bool Full => maxSize > 0 && Items.Count >= maxSize;

        public Item Take()
        {
            int index = kind switch
            {
                0 => 0,
                1 => Items.Count - 1,
                _ => Items.IndexOf(Items.MinBy(i => i.Priority)), // stable: the first of the smallest
            };
            var item = Items[index];
            Items.RemoveAt(index);
            WakePutter();
            return item;
        }

        // A put that fits: the item goes in, and the first waiting getter (woken) takes one when it runs.
        public void Add(Item item)
        {
            Items.Add(item);
            Unfinished++;
            if (Getters.Count > 0)
            {
                var getter = Getters[0];
                Getters.RemoveAt(0);
                getter.ExpectedItem = Take();
                getter.Expected = Outcome.Done;
            }
        }

        private void WakePutter()
        {
            if (Putters.Count > 0 && !Full)
            {
                var putter = Putters[0];
                Putters.RemoveAt(0);
                Add(putter.Value);
                putter.Expected = Outcome.Done;
            }
        }

        public void Finished()
        {
            foreach (var joiner in Joiners)
            {
                joiner.Expected = Outcome.Done;
            }

            Joiners.Clear();
        }
    }

    private static void Check(int kind, int maxSize, (Op Op, int Arg)[] steps) => Run(async () =>
    {
        Queue<Item> q = kind switch
        {
            0 => new Queue<Item>(maxSize),
            1 => new LifoQueue<Item>(maxSize),
            _ => new PriorityQueue<Item>(maxSize, Comparer<Item>.Create((a, b) => a.Priority.CompareTo(b.Priority))),
        };
        var model = new Model(kind, maxSize);
        var waiters = new List<Waiter>();
        int nextId = 0;

        foreach (var (op, arg) in steps)
        {
            var item = new Item(arg % 3, nextId++);
            switch (op)
            {
                case Op.PutWait:
                {
                    var waiter = new Waiter { IsGet = false, Real = q.PutAsync(item).AsFuture(), Value = item };
                    waiters.Add(waiter);
                    if (model.IsShutDown)
                    {
                        waiter.Expected = Outcome.ShutDown;
                    }
                    else if (!model.Full)
                    {
                        waiter.Expected = Outcome.Done;
                        model.Add(item);
                    }
                    else
                    {
                        model.Putters.Add(waiter);
                    }

                    break;
                }

                case Op.GetWait:
                {
                    var waiter = new Waiter { IsGet = true, Real = q.GetAsync().AsFuture() };
                    waiters.Add(waiter);
                    if (model.Items.Count > 0)
                    {
                        waiter.ExpectedItem = model.Take();
                        waiter.Expected = Outcome.Done;
                    }
                    else if (model.IsShutDown)
                    {
                        waiter.Expected = Outcome.ShutDown;
                    }
                    else
                    {
                        model.Getters.Add(waiter);
                    }

                    break;
                }

                case Op.PutNowait:
                case Op.PutNowaitThenCancelWokenGetter:
                {
                    var woken = model.Getters.Count > 0 ? model.Getters[0] : null;
                    var thrown = Record.Exception(() => q.PutNowait(item));
                    if (model.IsShutDown)
                    {
                        Assert.IsType<QueueShutDown>(thrown);
                    }
                    else if (model.Full)
                    {
                        Assert.IsType<QueueFull>(thrown);
                    }
                    else
                    {
                        Assert.Null(thrown);
                        model.Add(item);
                        if (op == Op.PutNowaitThenCancelWokenGetter && woken is not null)
                        {
                            // Cancelled after its wake-up: it still takes its item (Tulip's rule), none is lost.
                            woken.Real.Cancel();
                        }
                    }

                    break;
                }

                case Op.GetNowait:
                case Op.GetNowaitThenCancelWokenPutter:
                {
                    var woken = model.Putters.Count > 0 ? model.Putters[0] : null;
                    Item got = default;
                    var thrown = Record.Exception(() => got = q.GetNowait());
                    if (model.Items.Count == 0)
                    {
                        Assert.IsType(model.IsShutDown ? typeof(QueueShutDown) : typeof(QueueEmpty), thrown);
                    }
                    else
                    {
                        Assert.Null(thrown);
                        Assert.Equal(model.Take(), got);
                        if (op == Op.GetNowaitThenCancelWokenPutter && woken is not null)
                        {
                            woken.Real.Cancel(); // woken already: it puts its item, once
                        }
                    }

                    break;
                }

                case Op.CancelWaiter:
                {
                    var pending = waiters.Where(w => w.Expected == Outcome.Pending && (model.Getters.Contains(w) || model.Putters.Contains(w))).ToList();
                    if (pending.Count > 0)
                    {
                        var victim = pending[arg % pending.Count];
                        Assert.False(victim.Real.Done);
                        victim.Real.Cancel();
                        victim.Expected = Outcome.Cancelled;
                        model.Getters.Remove(victim);
                        model.Putters.Remove(victim);
                    }

                    break;
                }

                case Op.TaskDone:
                {
                    var thrown = Record.Exception(q.TaskDone);
                    if (model.Unfinished == 0)
                    {
                        Assert.IsType<InvalidOperationException>(thrown);
                    }
                    else
                    {
                        Assert.Null(thrown);
                        if (--model.Unfinished == 0)
                        {
                            model.Finished();
                        }
                    }

                    break;
                }

                case Op.JoinWait:
                {
                    var waiter = new Waiter { IsGet = false, Real = q.JoinAsync().AsFuture() };
                    waiters.Add(waiter);
                    if (model.Unfinished == 0)
                    {
                        waiter.Expected = Outcome.Done;
                    }
                    else
                    {
                        model.Joiners.Add(waiter);
                    }

                    break;
                }

                case Op.Shutdown:
                case Op.ShutdownImmediate:
                {
                    bool immediate = op == Op.ShutdownImmediate;
                    q.Shutdown(immediate);
                    model.IsShutDown = true;
                    if (immediate)
                    {
                        foreach (var _ in model.Items)
                        {
                            if (model.Unfinished > 0)
                            {
                                model.Unfinished--;
                            }
                        }

                        model.Items.Clear();
                        if (model.Unfinished == 0)
                        {
                            model.Finished();
                        }
                    }

                    // Woken getters find the queue empty (getters wait only on an empty queue) and
                    // fail; woken putters fail.
                    foreach (var w in model.Getters.Concat(model.Putters))
                    {
                        w.Expected = Outcome.ShutDown;
                    }

                    model.Getters.Clear();
                    model.Putters.Clear();
                    break;
                }
            }

            for (int i = 0; i < 4; i++)
            {
                await Tasks.Yield();
            }

            Assert.Equal(model.Items.Count, q.Count);
            Assert.Equal(model.Unfinished, q.UnfinishedTasks);
            Assert.Equal(model.Getters.Count, q.WaitingGetters);
            Assert.Equal(model.Putters.Count, q.WaitingPutters);
            foreach (var w in waiters)
            {
                AssertOutcome(w);
            }
        }

        // What is left comes out in the model's order.
        q.Shutdown();
        foreach (var w in model.Getters.Concat(model.Putters))
        {
            w.Expected = Outcome.ShutDown;
        }

        model.Getters.Clear();
        model.Putters.Clear();
        await Tasks.Yield();
        await Tasks.Yield();
        while (model.Items.Count > 0)
        {
            Assert.Equal(model.Take(), q.GetNowait());
        }

        Assert.Throws<QueueShutDown>(() => q.GetNowait());
        foreach (var joiner in model.Joiners)
        {
            joiner.Real.Cancel();
            joiner.Expected = Outcome.Cancelled;
        }

        await Tasks.Yield();
        foreach (var w in waiters)
        {
            AssertOutcome(w);
        }
    });

    private static void AssertOutcome(Waiter w)
    {
        var real = w.Real;
        switch (w.Expected)
        {
            case Outcome.Pending:
                Assert.False(real.Done, $"{real} should still wait");
                break;
            case Outcome.Done:
                Assert.True(real.Done && !real.Cancelled, $"{real} should have finished");
                Assert.Null(real.Exception());
                if (w.IsGet)
                {
                    Assert.Equal(w.ExpectedItem, ((Future<Item>)real).Result());
                }

                break;
            case Outcome.ShutDown:
                Assert.True(real.Done && !real.Cancelled, $"{real} should have failed with QueueShutDown");
                Assert.IsType<QueueShutDown>(real.Exception());
                break;
            case Outcome.Cancelled:
                Assert.True(real.Cancelled, $"{real} should be cancelled");
                break;
        }
    }
}
