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
/// </remarks>
/// <typeparam name="T">The result type.</typeparam>
internal sealed class ReusableFuture<T> : Future<T>
{
    private bool _taken;
    private bool _escaped;

    public ReusableFuture(BaseEventLoop loop) : base(loop)
    {
    }

    /// <summary>The awaiter took the result (or the failure).</summary>
    public void MarkTaken() => _taken = true;

    /// <summary>Someone keeps it as a future: it is never reset.</summary>
    public void MarkEscaped() => _escaped = true;

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
