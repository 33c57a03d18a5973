using System;
using System.Collections.Generic;

namespace Tulip.Queues;

/// <summary>
/// A <see cref="Queue{T}"/> that gives out the smallest item first: asyncio's <c>PriorityQueue</c>,
/// ordered by an <see cref="IComparer{T}"/> instead of Python's <c>&lt;</c>. Everything else (limits,
/// waiting, <see cref="Queue{T}.TaskDone"/>, <see cref="Queue{T}.Shutdown"/>) is as in <see cref="Queue{T}"/>.
/// </summary>
/// <remarks>
/// Items that compare equal come out in the order they were put (the order is stable). asyncio's
/// <c>heapq</c> does not promise that; code that relied on it there, with <c>(priority, count, item)</c>
/// tuples, needs no count here. Its one type parameter keeps it apart from the SDK's two-parameter
/// <see cref="System.Collections.Generic.PriorityQueue{TElement, TPriority}"/>: both can be named
/// unqualified in one file.
/// </remarks>
/// <typeparam name="T">The item type.</typeparam>
public sealed class PriorityQueue<T> : Queue<T>
{
    /// <summary>Creates an empty priority queue that holds at most <paramref name="maxsize"/> items.</summary>
    /// <param name="maxsize">The most items the queue holds; 0 or less (the default): no limit.</param>
    /// <param name="comparer">Orders the items, smallest first; null (the default): <see cref="Comparer{T}.Default"/>,
    /// which needs <typeparamref name="T"/> to be comparable.</param>
    /// <exception cref="ArgumentException"><paramref name="comparer"/> is null and <typeparamref name="T"/>
    /// implements neither <see cref="IComparable{T}"/> nor <see cref="IComparable"/>.</exception>
    public PriorityQueue(int maxsize = 0, IComparer<T>? comparer = null)
        : base(maxsize, new PriorityStore<T>(comparer ?? DefaultComparer()))
    {
        Comparer = comparer ?? Comparer<T>.Default;
    }

    /// <summary>The comparer that orders the items.</summary>
    public IComparer<T> Comparer { get; }

    private static Comparer<T> DefaultComparer()
    {
        var type = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        if (!typeof(IComparable).IsAssignableFrom(type)
            && !typeof(IComparable<>).MakeGenericType(type).IsAssignableFrom(type))
        {
            throw new ArgumentException(
                $"{typeof(T).Name} is not comparable (it implements neither IComparable<{typeof(T).Name}> nor IComparable): " +
                "pass an IComparer<T> that orders the items.", "comparer");
        }

        return Comparer<T>.Default;
    }
}
