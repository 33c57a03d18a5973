using System.Collections.Generic;

namespace Tulip.Queues;

/// <summary>
/// Where a queue keeps its items, in the order it gives them out: asyncio's overridable
/// <c>_init</c>/<c>_put</c>/<c>_get</c>, composed instead of inherited. Loop thread only, as its queue.
/// </summary>
/// <typeparam name="T">The item type.</typeparam>
internal abstract class QueueStore<T>
{
    public abstract int Count { get; }

    public abstract void Add(T item);

    public abstract T Take();
}

/// <summary>First in, first out: <see cref="Queue{T}"/>.</summary>
internal sealed class FifoStore<T> : QueueStore<T>
{
    private readonly System.Collections.Generic.Queue<T> _items = new();

    public override int Count => _items.Count;

    public override void Add(T item) => _items.Enqueue(item);

    public override T Take() => _items.Dequeue();
}

/// <summary>Last in, first out: <see cref="LifoQueue{T}"/>.</summary>
internal sealed class LifoStore<T> : QueueStore<T>
{
    private readonly Stack<T> _items = new();

    public override int Count => _items.Count;

    public override void Add(T item) => _items.Push(item);

    public override T Take() => _items.Pop();
}

/// <summary>
/// Smallest first by a comparer, equal items in the order they were added: <see cref="PriorityQueue{T}"/>.
/// A binary heap (the SDK's) keyed by the item and its insertion number, so ties are stable, which
/// asyncio's <c>heapq</c> does not promise.
/// </summary>
internal sealed class PriorityStore<T> : QueueStore<T>
{
    private readonly System.Collections.Generic.PriorityQueue<T, Key> _items;
    private long _added;

    public PriorityStore(IComparer<T> comparer) => _items = new(new KeyComparer(comparer));

    public override int Count => _items.Count;

    public override void Add(T item) => _items.Enqueue(item, new Key(item, _added++));

    public override T Take() => _items.Dequeue();

    internal readonly record struct Key(T Item, long Order);

    private sealed class KeyComparer(IComparer<T> comparer) : IComparer<Key>
    {
        public int Compare(Key x, Key y)
        {
            int byItem = comparer.Compare(x.Item, y.Item);
            return byItem != 0 ? byItem : x.Order.CompareTo(y.Order);
        }
    }
}
