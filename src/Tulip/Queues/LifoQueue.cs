namespace Tulip.Queues;

/// <summary>
/// A <see cref="Queue{T}"/> that gives out the item put last first: asyncio's <c>LifoQueue</c>.
/// Everything else (limits, waiting, <see cref="Queue{T}.TaskDone"/>, <see cref="Queue{T}.Shutdown"/>)
/// is as in <see cref="Queue{T}"/>.
/// </summary>
/// <typeparam name="T">The item type.</typeparam>
public sealed class LifoQueue<T> : Queue<T>
{
    /// <summary>Creates an empty stack-ordered queue that holds at most <paramref name="maxsize"/> items.</summary>
    /// <param name="maxsize">The most items the queue holds; 0 or less (the default): no limit.</param>
    public LifoQueue(int maxsize = 0)
        : base(maxsize, new LifoStore<T>())
    {
    }
}
