using System;
using System.Threading;

namespace Tulip.Queues;

/// <summary>
/// A first-in, first-out queue for coordinating producer and consumer tasks on one event loop:
/// asyncio's <c>asyncio.Queue</c> (3.13, with <see cref="Shutdown"/>).
/// </summary>
/// <remarks>
/// <para>
/// A queue made with a <c>maxsize</c> of 0 or less (the default) is unbounded: <see cref="PutAsync"/>
/// never waits. Otherwise <see cref="PutAsync"/> waits while <see cref="MaxSize"/> items are queued,
/// until a get frees a slot. <see cref="GetAsync"/> waits while the queue is empty. Waiting getters and
/// putters are woken one at a time in the order they began to wait. A woken task takes its item or
/// slot when it runs; asyncio does the same, so a <see cref="GetNowait"/> that runs in between may take
/// the item first and the woken getter waits again, at the back.
/// </para>
/// <para>
/// Cancellation never loses or invents an item: a cancelled <see cref="GetAsync"/> has taken nothing,
/// or returns the item it took (a cancellation that arrives after the getter was woken is delivered
/// at the task's next await, as everywhere in Tulip); a getter that was woken but ended without taking
/// the item passes the wake-up to the next waiting getter (asyncio's <c>_wakeup_next</c> on cancel), and
/// the same holds for putters. A cancelled <see cref="PutAsync"/> has put nothing in.
/// </para>
/// <para>
/// Counting work: every item put adds one unfinished task; <see cref="TaskDone"/> marks one finished;
/// <see cref="JoinAsync"/> waits until none is left.
/// </para>
/// <para>
/// Threads and loops (asyncio's <c>_LoopBoundMixin</c>): the queue binds to the event loop running on
/// the thread that first uses it while a loop runs, and from then on may be used only on that loop's
/// thread, while it runs. A call from a task of another loop, or from another thread while the loop
/// runs, throws <see cref="InvalidOperationException"/>. With no loop running, the non-waiting members
/// (<see cref="PutNowait"/>, <see cref="GetNowait"/>, <see cref="TaskDone"/>, <see cref="Shutdown"/>) may
/// be called, for instance to fill a queue before the loop starts; the waiting ones need the loop.
/// </para>
/// <para>
/// <c>await foreach (var item in queue)</c> takes items as <see cref="GetAsync"/> does and ends, with
/// no exception, when the queue is shut down and empty (see <see cref="GetAsyncEnumerator"/>).
/// </para>
/// </remarks>
/// <typeparam name="T">The item type.</typeparam>
public class Queue<T>
{
    private readonly QueueStore<T> _store;
    private readonly QueueWaiters _getters = new();
    private readonly QueueWaiters _putters = new();
    private readonly QueueWaiters _joiners = new();
    private BaseEventLoop? _loop;
    private int _unfinishedTasks;
    private bool _shutdown;

    /// <summary>Creates an empty queue that holds at most <paramref name="maxsize"/> items.</summary>
    /// <param name="maxsize">The most items the queue holds; 0 or less (the default): no limit.</param>
    /// <remarks>The queue binds to a loop when it is first used, not here: it may be made before the loop runs.</remarks>
    public Queue(int maxsize = 0)
        : this(maxsize, new FifoStore<T>())
    {
    }

    private protected Queue(int maxsize, QueueStore<T> store)
    {
        MaxSize = maxsize;
        _store = store;
    }

    /// <summary>The most items the queue holds, as given when it was made; 0 or less: no limit.</summary>
    public int MaxSize { get; }

    /// <summary>The number of items in the queue (asyncio's <c>qsize()</c>).</summary>
    public int Count => _store.Count;

    /// <summary>True if the queue has no item.</summary>
    public bool Empty => _store.Count == 0;

    /// <summary>True if the queue holds <see cref="MaxSize"/> items; never for an unbounded queue.</summary>
    public bool Full => MaxSize > 0 && _store.Count >= MaxSize;

    /// <summary>For tests: how many getters wait.</summary>
    internal int WaitingGetters => _getters.Count;

    /// <summary>For tests: how many putters wait.</summary>
    internal int WaitingPutters => _putters.Count;

    /// <summary>For tests: the unfinished task count.</summary>
    internal int UnfinishedTasks => _unfinishedTasks;

    /// <summary>
    /// Puts <paramref name="item"/> at the back of the queue, waiting for a free slot while the queue
    /// is full.
    /// </summary>
    /// <param name="item">The item.</param>
    /// <param name="cancellationToken">Cancels the wait, as cancelling the awaiting task does; the item
    /// is then not put. Defaults to none.</param>
    /// <returns>
    /// A value future, done at once (and allocation-free) when there is room; await it right away.
    /// It fails with <see cref="QueueShutDown"/> if the queue is or gets shut down before the item is
    /// in, and ends with <see cref="CancelledError"/> if cancelled.
    /// </returns>
    /// <exception cref="InvalidOperationException">No loop runs on this thread, or the queue is bound to another loop.</exception>
    public ValueFuture<VoidResult> PutAsync(T item, CancellationToken cancellationToken = default)
    {
        var loop = LoopForWait();
        if (cancellationToken.IsCancellationRequested)
        {
            return new ValueFuture<VoidResult>(Cancelled<VoidResult>(loop));
        }

        if (_shutdown)
        {
            return new ValueFuture<VoidResult>(Failed<VoidResult>(loop, new QueueShutDown()));
        }

        if (!Full)
        {
            AddCore(item);
            return default;
        }

        var put = PutSlow(loop, item);
        TaskCancellation.LinkToFuture(put, cancellationToken);
        return new ValueFuture<VoidResult>(put);
    }

    /// <summary>Puts <paramref name="item"/> at the back of the queue if there is room, without waiting.</summary>
    /// <param name="item">The item.</param>
    /// <exception cref="QueueShutDown">The queue was shut down.</exception>
    /// <exception cref="QueueFull">The queue holds <see cref="MaxSize"/> items.</exception>
    /// <exception cref="InvalidOperationException">Called off the queue's loop thread, or from another loop.</exception>
    public void PutNowait(T item)
    {
        CheckThread();
        if (_shutdown)
        {
            throw new QueueShutDown();
        }

        if (Full)
        {
            throw new QueueFull();
        }

        AddCore(item);
    }

    /// <summary>Takes the next item, waiting while the queue is empty.</summary>
    /// <param name="cancellationToken">Cancels the wait, as cancelling the awaiting task does; no item
    /// is then taken. Defaults to none.</param>
    /// <returns>
    /// A value future, done at once (and allocation-free) when an item is there; await it right away.
    /// It fails with <see cref="QueueShutDown"/> when the queue is shut down and empty, and ends with
    /// <see cref="CancelledError"/> if cancelled.
    /// </returns>
    /// <exception cref="InvalidOperationException">No loop runs on this thread, or the queue is bound to another loop.</exception>
    public ValueFuture<T> GetAsync(CancellationToken cancellationToken = default)
    {
        var loop = LoopForWait();
        if (cancellationToken.IsCancellationRequested)
        {
            return new ValueFuture<T>(Cancelled<T>(loop));
        }

        if (_store.Count > 0)
        {
            return new ValueFuture<T>(TakeCore());
        }

        if (_shutdown)
        {
            return new ValueFuture<T>(Failed<T>(loop, new QueueShutDown()));
        }

        var get = GetSlow(loop);
        TaskCancellation.LinkToFuture(get, cancellationToken);
        return new ValueFuture<T>(get);
    }

    /// <summary>Takes the next item if there is one, without waiting.</summary>
    /// <returns>The item.</returns>
    /// <exception cref="QueueShutDown">The queue is empty and was shut down.</exception>
    /// <exception cref="QueueEmpty">The queue is empty.</exception>
    /// <exception cref="InvalidOperationException">Called off the queue's loop thread, or from another loop.</exception>
    public T GetNowait()
    {
        CheckThread();
        if (_store.Count == 0)
        {
            throw _shutdown ? new QueueShutDown() : new QueueEmpty();
        }

        return TakeCore();
    }

    /// <summary>
    /// Marks one item taken from the queue as processed: a consumer calls it once for each item it
    /// got. When every item put has been marked so, <see cref="JoinAsync"/> callers resume.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called more times than items were put (asyncio's
    /// <c>ValueError</c>), off the queue's loop thread, or from another loop.</exception>
    public void TaskDone()
    {
        CheckThread();
        if (_unfinishedTasks <= 0)
        {
            throw new InvalidOperationException(
                "TaskDone() was called more times than items were put in the queue: call it once for each item a consumer took.");
        }

        if (--_unfinishedTasks == 0)
        {
            _joiners.WakeAll();
        }
    }

    /// <summary>Waits until every item put in the queue has been marked processed with <see cref="TaskDone"/>.</summary>
    /// <param name="cancellationToken">Cancels the wait, as cancelling the awaiting task does. Defaults to none.</param>
    /// <returns>A value future, done at once when no task is unfinished; await it right away.</returns>
    /// <exception cref="InvalidOperationException">No loop runs on this thread, or the queue is bound to another loop.</exception>
    public ValueFuture<VoidResult> JoinAsync(CancellationToken cancellationToken = default)
    {
        var loop = LoopForWait();
        if (cancellationToken.IsCancellationRequested)
        {
            return new ValueFuture<VoidResult>(Cancelled<VoidResult>(loop));
        }

        if (_unfinishedTasks == 0)
        {
            return default;
        }

        var joiner = new QueueWaiter(loop);
        _joiners.Add(joiner);
        TaskCancellation.LinkToFuture(joiner, cancellationToken);
        return new ValueFuture<VoidResult>(joiner);
    }

    /// <summary>
    /// Shuts the queue down (asyncio 3.13's <c>shutdown</c>): from now on every put fails with
    /// <see cref="QueueShutDown"/>, and so does every get once the queue is empty. Waiting putters
    /// and getters are all woken: putters fail, getters take what is left or fail.
    /// </summary>
    /// <param name="immediate">False (the default): items already queued can still be taken. True: the
    /// queue is emptied now, one unfinished task is counted down for each item dropped, and
    /// <see cref="JoinAsync"/> callers resume if that leaves none.</param>
    /// <remarks>Calling it again is allowed; an immediate call after a plain one empties the queue.</remarks>
    /// <exception cref="InvalidOperationException">Called off the queue's loop thread, or from another loop.</exception>
    public void Shutdown(bool immediate = false)
    {
        CheckThread();
        _shutdown = true;
        if (immediate)
        {
            while (_store.Count > 0)
            {
                _store.Take();
                if (_unfinishedTasks > 0)
                {
                    _unfinishedTasks--;
                }
            }

            if (_unfinishedTasks == 0)
            {
                _joiners.WakeAll();
            }
        }

        // Every waiter re-checks: getters take what is left or fail, putters fail.
        _getters.WakeAll();
        _putters.WakeAll();
    }

    /// <summary>
    /// An enumerator for <c>await foreach (var item in queue)</c>: each step takes the next item as
    /// <see cref="GetAsync"/> does; the loop ends when the queue is shut down and empty.
    /// </summary>
    /// <param name="cancellationToken">Cancels a step that waits, as cancelling the task does. Defaults to
    /// none (<c>await foreach</c> passes none; cancel the consuming task instead).</param>
    /// <returns>A new enumerator. It does not call <see cref="TaskDone"/>: the consumer does, for each item.</returns>
    public QueueEnumerator<T> GetAsyncEnumerator(CancellationToken cancellationToken = default) => new(this, cancellationToken);

    /// <summary>Describes the queue: its limit, items, waiters, unfinished tasks and shutdown.</summary>
    public override string ToString() =>
        $"<{GetType().Name.Split('`')[0]} maxsize={MaxSize} count={_store.Count} getters={_getters.Count} putters={_putters.Count} tasks={_unfinishedTasks}{(_shutdown ? " shutdown" : string.Empty)}>";

    /// <summary>One step of a <see cref="QueueEnumerator{T}"/>: true with the item in <paramref name="enumerator"/>, false at the end.</summary>
    internal ValueFuture<bool> MoveNext(QueueEnumerator<T> enumerator, CancellationToken cancellationToken)
    {
        var loop = LoopForWait();
        if (cancellationToken.IsCancellationRequested)
        {
            return new ValueFuture<bool>(Cancelled<bool>(loop));
        }

        if (_store.Count > 0)
        {
            enumerator.SetCurrent(TakeCore());
            return new ValueFuture<bool>(true);
        }

        if (_shutdown)
        {
            return new ValueFuture<bool>(false);
        }

        var step = MoveNextSlow(loop, enumerator);
        TaskCancellation.LinkToFuture(step, cancellationToken);
        return new ValueFuture<bool>(step);
    }

    private void AddCore(T item)
    {
        _store.Add(item);
        _unfinishedTasks++;
        _getters.WakeNext();
    }

    private T TakeCore()
    {
        T item = _store.Take();
        _putters.WakeNext();
        return item;
    }

    // asyncio's put(): wait while full, re-checking after each wake-up; the item goes in only at the end.
    private async LoopTask PutSlow(BaseEventLoop loop, T item)
    {
        while (Full)
        {
            if (_shutdown)
            {
                throw new QueueShutDown();
            }

            var putter = new QueueWaiter(loop);
            _putters.Add(putter);
            try
            {
                await putter;
            }
            catch
            {
                putter.Cancel(); // leaves the list if it is still in it
                _putters.Remove(putter);
                if (!Full && !putter.Cancelled)
                {
                    // Woken for a free slot that this put will not use: pass the wake-up on.
                    _putters.WakeNext();
                }

                throw;
            }
        }

        if (_shutdown)
        {
            throw new QueueShutDown();
        }

        AddCore(item);
    }

    // asyncio's get(): wait while empty, re-checking after each wake-up; the item is taken only at the end.
    private async LoopTask<T> GetSlow(BaseEventLoop loop)
    {
        while (_store.Count == 0)
        {
            if (_shutdown)
            {
                throw new QueueShutDown();
            }

            var getter = AddGetter(loop);
            try
            {
                await getter;
            }
            catch
            {
                AbandonGetter(getter);
                throw;
            }
        }

        return TakeCore();
    }

    // GetSlow for the enumerator: the end of the queue is false, not QueueShutDown.
    private async LoopTask<bool> MoveNextSlow(BaseEventLoop loop, QueueEnumerator<T> enumerator)
    {
        while (_store.Count == 0)
        {
            if (_shutdown)
            {
                return false;
            }

            var getter = AddGetter(loop);
            try
            {
                await getter;
            }
            catch
            {
                AbandonGetter(getter);
                throw;
            }
        }

        enumerator.SetCurrent(TakeCore());
        return true;
    }

    private QueueWaiter AddGetter(BaseEventLoop loop)
    {
        var getter = new QueueWaiter(loop);
        _getters.Add(getter);
        return getter;
    }

    private void AbandonGetter(QueueWaiter getter)
    {
        getter.Cancel(); // leaves the list if it is still in it
        _getters.Remove(getter);
        if (_store.Count > 0 && !getter.Cancelled)
        {
            // Woken for an item that this get will not take: pass the wake-up on.
            _getters.WakeNext();
        }
    }

    private static Future<TResult> Cancelled<TResult>(BaseEventLoop loop)
    {
        var future = new Future<TResult>(loop);
        future.Cancel();
        return future;
    }

    private static Future<TResult> Failed<TResult>(BaseEventLoop loop, Exception exception)
    {
        var future = new Future<TResult>(loop);
        future.SetException(exception);
        return future;
    }

    // ---- Loop binding (asyncio's mixins._LoopBoundMixin) -------------------------------------

    /// <summary>The running loop, to which the queue is (now) bound; a wait needs one.</summary>
    private BaseEventLoop LoopForWait()
    {
        if (BaseEventLoop.RunningLoopOrNull is not { } running)
        {
            throw _loop is { IsRunning: true } ? OffLoopThread() : NoRunningLoop();
        }

        Bind(running);
        return running;
    }

    /// <summary>The check of the members that do not wait: bound loop's thread, or no loop running at all.</summary>
    private void CheckThread()
    {
        if (BaseEventLoop.RunningLoopOrNull is { } running)
        {
            Bind(running);
        }
        else if (_loop is { IsRunning: true })
        {
            throw OffLoopThread();
        }
    }

    private void Bind(BaseEventLoop running)
    {
        var bound = _loop ?? Interlocked.CompareExchange(ref _loop, running, null) ?? running;
        if (!ReferenceEquals(bound, running))
        {
            throw new InvalidOperationException(
                $"{this} is bound to a different event loop than the one running here: a queue belongs to the loop that first used it. " +
                "Make one queue per loop.");
        }
    }

    private InvalidOperationException OffLoopThread() => new(
        $"{this} was used from a thread that is not its event loop's, while the loop runs. Queues are not thread-safe: " +
        "from another thread, call into the loop with loop.CallSoonThreadSafe(...) or loop.RunCoroutineThreadSafe(...).");

    private InvalidOperationException NoRunningLoop() => new(
        $"{this} was awaited on a thread with no running event loop: wait on a queue from a task of its loop " +
        "(from another thread, use loop.RunCoroutineThreadSafe(...)).");
}
