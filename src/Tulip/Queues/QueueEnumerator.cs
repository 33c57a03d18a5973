using System.Threading;

namespace Tulip.Queues;

/// <summary>
/// Consumes a <see cref="Queue{T}"/> with <c>await foreach (var item in queue)</c>: each step takes the
/// next item, waiting while the queue is empty, and the loop ends when the queue is shut down and
/// empty. Made by <see cref="Queue{T}.GetAsyncEnumerator"/>.
/// </summary>
/// <remarks>
/// A step that waits is a loop future, so cancelling the consuming task delivers
/// <see cref="CancelledError"/> at the <c>await foreach</c>, and no item is lost: a step cancelled before
/// it took an item leaves it queued. Loop thread only, as the queue.
/// </remarks>
/// <typeparam name="T">The item type.</typeparam>
public sealed class QueueEnumerator<T>
{
    private readonly Queue<T> _queue;
    private readonly CancellationToken _cancellationToken;

    internal QueueEnumerator(Queue<T> queue, CancellationToken cancellationToken)
    {
        _queue = queue;
        _cancellationToken = cancellationToken;
    }

    /// <summary>The item the last successful <see cref="MoveNextAsync"/> took; default before the first.</summary>
    public T Current { get; private set; } = default!;

    /// <summary>Takes the next item into <see cref="Current"/>, waiting while the queue is empty.</summary>
    /// <returns>
    /// A value future of true when an item was taken, false when the queue is shut down and empty;
    /// done at once (and allocation-free) when an item is there or the queue has ended. Await it right away.
    /// </returns>
    /// <exception cref="System.InvalidOperationException">No loop runs on this thread, or the queue is bound to another loop.</exception>
    public ValueFuture<bool> MoveNextAsync() => _queue.MoveNext(this, _cancellationToken);

    internal void SetCurrent(T item) => Current = item;
}
