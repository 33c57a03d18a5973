namespace Tulip.Queues;

/// <summary>
/// A future one waiting getter, putter or joiner of a queue awaits (asyncio's entries of
/// <c>_getters</c>, <c>_putters</c> and the waiters of <c>_finished</c>). It sits in a
/// <see cref="QueueWaiters"/> list with no node allocated, and leaves it when it is cancelled, so a
/// cancelled wait never stays queued.
/// </summary>
internal sealed class QueueWaiter : Future<VoidResult>
{
    public QueueWaiter(BaseEventLoop loop) : base(loop)
    {
    }

    /// <summary>The list this waiter is in, or null once it was taken out.</summary>
    internal QueueWaiters? List { get; set; }

    internal QueueWaiter? Previous { get; set; }

    internal QueueWaiter? Next { get; set; }

    /// <inheritdoc/>
    public override bool Cancel(string? message = null)
    {
        if (!base.Cancel(message))
        {
            return false;
        }

        List?.Remove(this);
        return true;
    }
}

/// <summary>
/// A FIFO of <see cref="QueueWaiter"/>s, linked through the waiters themselves: append, take the
/// first, remove any in O(1). Loop thread only, as its queue.
/// </summary>
internal sealed class QueueWaiters
{
    private QueueWaiter? _first;
    private QueueWaiter? _last;

    /// <summary>How many waiters are in the list.</summary>
    public int Count { get; private set; }

    /// <summary>Adds <paramref name="waiter"/> at the end.</summary>
    public void Add(QueueWaiter waiter)
    {
        waiter.List = this;
        waiter.Previous = _last;
        waiter.Next = null;
        if (_last is null)
        {
            _first = waiter;
        }
        else
        {
            _last.Next = waiter;
        }

        _last = waiter;
        Count++;
    }

    /// <summary>Takes <paramref name="waiter"/> out if it is in this list (asyncio's <c>deque.remove</c>, which may find it gone).</summary>
    public void Remove(QueueWaiter waiter)
    {
        if (waiter.List != this)
        {
            return;
        }

        if (waiter.Previous is null)
        {
            _first = waiter.Next;
        }
        else
        {
            waiter.Previous.Next = waiter.Next;
        }

        if (waiter.Next is null)
        {
            _last = waiter.Previous;
        }
        else
        {
            waiter.Next.Previous = waiter.Previous;
        }

        waiter.List = null;
        waiter.Previous = null;
        waiter.Next = null;
        Count--;
    }

    /// <summary>
    /// Wakes the first waiter that is not done yet, taking it and any done ones before it out of the
    /// list (asyncio's <c>_wakeup_next</c>).
    /// </summary>
    public void WakeNext()
    {
        while (_first is { } waiter)
        {
            Remove(waiter);
            if (waiter.TrySetResult(default))
            {
                return;
            }
        }
    }

    /// <summary>Wakes every waiter and empties the list.</summary>
    public void WakeAll()
    {
        while (_first is { } waiter)
        {
            Remove(waiter);
            waiter.TrySetResult(default);
        }
    }
}
