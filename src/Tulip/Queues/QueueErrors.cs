using System;

namespace Tulip.Queues;

/// <summary>
/// Raised by <see cref="Queue{T}.GetNowait"/> when the queue has no item. asyncio's
/// <c>QueueEmpty</c>; an <see cref="InvalidOperationException"/>, since the call does not fit the
/// queue's state.
/// </summary>
/// <remarks>To wait for an item instead, <c>await queue.GetAsync()</c>.</remarks>
public class QueueEmpty : InvalidOperationException
{
    /// <summary>Creates the error with the default message.</summary>
    public QueueEmpty() : base("The queue is empty: await GetAsync() to wait for an item.") { }

    /// <summary>Creates the error with a message.</summary>
    public QueueEmpty(string message) : base(message) { }

    /// <summary>Creates the error with a message and an inner exception.</summary>
    public QueueEmpty(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>
/// Raised by <see cref="Queue{T}.PutNowait"/> when the queue holds <see cref="Queue{T}.MaxSize"/>
/// items. asyncio's <c>QueueFull</c>; an <see cref="InvalidOperationException"/>.
/// </summary>
/// <remarks>To wait for a free slot instead, <c>await queue.PutAsync(item)</c>.</remarks>
public class QueueFull : InvalidOperationException
{
    /// <summary>Creates the error with the default message.</summary>
    public QueueFull() : base("The queue is full: await PutAsync(item) to wait for a free slot.") { }

    /// <summary>Creates the error with a message.</summary>
    public QueueFull(string message) : base(message) { }

    /// <summary>Creates the error with a message and an inner exception.</summary>
    public QueueFull(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>
/// Raised by a put on a queue that was shut down (<see cref="Queue{T}.Shutdown"/>), and by a get
/// once such a queue is empty (at once after an immediate shutdown, which empties it). asyncio
/// 3.13's <c>QueueShutDown</c>; an <see cref="InvalidOperationException"/>.
/// </summary>
/// <remarks>
/// A consumer loop written with <c>await foreach (var item in queue)</c> does not see it: the loop
/// simply ends.
/// </remarks>
public class QueueShutDown : InvalidOperationException
{
    /// <summary>Creates the error with the default message.</summary>
    public QueueShutDown() : base("The queue was shut down: nothing more can be put in it, and nothing more comes out once it is empty.") { }

    /// <summary>Creates the error with a message.</summary>
    public QueueShutDown(string message) : base(message) { }

    /// <summary>Creates the error with a message and an inner exception.</summary>
    public QueueShutDown(string message, Exception? innerException) : base(message, innerException) { }
}
