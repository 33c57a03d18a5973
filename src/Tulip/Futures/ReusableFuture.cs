using System;

namespace Tulip;

/// <summary>
/// A future its owner hands out again and again through <see cref="ValueFuture{T}"/>, so a producer
/// that must make its caller wait (a stream read with nothing buffered, a drain while paused) does
/// not allocate a future per wait. Internal: only <see cref="ValueFuture{T}"/> ever shows it.
/// </summary>
/// <remarks>
/// The owner calls <see cref="TryReset"/> before each new wait. It resets only when the last wait's
/// awaiter took the result (<see cref="ValueFuture{T}.Result"/>, which <c>await</c> calls) and no one
/// asked for it as a future of its own (<see cref="ValueFuture{T}.AsFuture"/>, <see cref="ValueFuture{T}.AsTask"/>);
/// otherwise the owner makes a new one, so no one who still holds the old one sees it change.
/// An owner whose result is only known when it is taken (a stream read that copies its bytes as the
/// reading task runs, as asyncio's read does) overrides <see cref="TakeResult"/> and
/// <see cref="MarkEscaped"/>.
/// </remarks>
/// <typeparam name="T">The result type.</typeparam>
internal class ReusableFuture<T> : Future<T>
{
    private bool _taken;
    private bool _escaped;

    public ReusableFuture(BaseEventLoop loop) : base(loop)
    {
    }

    /// <summary>True once someone keeps it as a future of its own.</summary>
    public bool Escaped => _escaped;

    /// <summary>What awaiting it gives (<see cref="ValueFuture{T}.Result"/>): the result, or the failure thrown; marks it taken.</summary>
    public T Take()
    {
        try
        {
            return TakeResult();
        }
        finally
        {
            if (Done)
            {
                _taken = true;
            }
        }
    }

    /// <summary>The result as the awaiter takes it; by default <see cref="Future{T}.Result"/>.</summary>
    private protected virtual T TakeResult() => Result();

    /// <summary>Someone keeps it as a future: it is never reset, and its result must be final now.</summary>
    public virtual void MarkEscaped() => _escaped = true;

    /// <summary>Makes it pending for the next wait if that is safe; false: make a new one.</summary>
    public bool TryReset()
    {
        if (!Done || !_taken || _escaped)
        {
            return false;
        }

        ResetCore();
        _taken = false;
        return true;
    }

    /// <summary>The future to hand out for a new wait: <paramref name="current"/> reset, or a new one.</summary>
    public static ReusableFuture<T> Next(ref ReusableFuture<T>? current, BaseEventLoop loop)
    {
        if (current is null || !current.TryReset())
        {
            current = new ReusableFuture<T>(loop);
        }

        return current;
    }
}
