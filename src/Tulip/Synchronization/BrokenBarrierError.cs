using System;

namespace Tulip.Synchronization;

/// <summary>
/// asyncio's <c>BrokenBarrierError</c>: a <see cref="Barrier"/> wait failed because the barrier was
/// aborted (<see cref="Barrier.AbortAsync"/>) or reset (<see cref="Barrier.ResetAsync"/>) while the
/// task waited, or is broken. An <see cref="InvalidOperationException"/>, as asyncio's is a RuntimeError.
/// </summary>
public class BrokenBarrierError : InvalidOperationException
{
    /// <summary>A broken-barrier error with a default message.</summary>
    public BrokenBarrierError() : base("The barrier is broken.")
    {
    }

    /// <summary>A broken-barrier error with <paramref name="message"/>.</summary>
    public BrokenBarrierError(string? message) : base(message)
    {
    }

    /// <summary>A broken-barrier error with <paramref name="message"/> and its cause.</summary>
    public BrokenBarrierError(string? message, Exception? innerException) : base(message, innerException)
    {
    }
}
