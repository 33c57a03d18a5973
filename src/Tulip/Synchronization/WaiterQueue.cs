using System.Diagnostics;

namespace Tulip.Synchronization;

/// <summary>
/// A waiter: the future one caller of a primitive waits on, linked into its primitive's
/// <see cref="WaiterQueue{T}"/> so that it is unlinked in O(1) when it finishes (asyncio keeps a
/// deque and removes from its middle).
/// </summary>
/// <typeparam name="T">What the waiter is given when it is woken.</typeparam>
internal sealed class Waiter<T> : Future<T>
{
    public Waiter(BaseEventLoop loop) : base(loop)
    {
    }

    internal Waiter<T>? Previous { get; set; }

    internal Waiter<T>? Next { get; set; }

    internal bool Queued { get; set; }
}

/// <summary>
/// The waiters of a primitive, first come first served (asyncio's <c>collections.deque</c> of
/// futures). Guarded by: the primitive's loop thread.
/// </summary>
/// <typeparam name="T">What the waiters are given when woken.</typeparam>
internal struct WaiterQueue<T>
{
    /// <summary>The oldest waiter, or null.</summary>
    public Waiter<T>? First { get; private set; }

    private Waiter<T>? _last;

    /// <summary>How many waiters are queued (done ones included until their callback unlinks them).</summary>
    public int Count { get; private set; }

    /// <summary>Queues <paramref name="waiter"/> last.</summary>
    public void Enqueue(Waiter<T> waiter)
    {
        Debug.Assert(!waiter.Queued, "a waiter is queued once");
        waiter.Previous = _last;
        waiter.Next = null;
        if (_last is null)
        {
            First = waiter;
        }
        else
        {
            _last.Next = waiter;
        }

        _last = waiter;
        waiter.Queued = true;
        Count++;
    }

    /// <summary>Unlinks <paramref name="waiter"/> if it is still queued.</summary>
    public void Remove(Waiter<T> waiter)
    {
        if (!waiter.Queued)
        {
            return;
        }

        if (waiter.Previous is null)
        {
            First = waiter.Next;
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

        waiter.Previous = null;
        waiter.Next = null;
        waiter.Queued = false;
        Count--;
    }

    /// <summary>The first waiter that is not done (not woken, not cancelled), or null.</summary>
    public readonly Waiter<T>? FirstPending()
    {
        for (var w = First; w is not null; w = w.Next)
        {
            if (!w.Done)
            {
                return w;
            }
        }

        return null;
    }

    /// <summary>True if no waiter is queued, or every queued one was cancelled (asyncio's <c>all(w.cancelled() ...)</c>).</summary>
    public readonly bool AllCancelled()
    {
        for (var w = First; w is not null; w = w.Next)
        {
            if (!w.Cancelled)
            {
                return false;
            }
        }

        return true;
    }
}
