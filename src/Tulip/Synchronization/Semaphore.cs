using System;
using System.Threading;

namespace Tulip.Synchronization;

/// <summary>
/// asyncio's <c>Semaphore</c>: a counter of permits. <see cref="AcquireAsync"/> takes one, waiting
/// while there is none; <see cref="Release"/> gives one back. Waiters get permits in the order they
/// asked (FIFO), and a newcomer never takes a permit ahead of a queued waiter.
/// </summary>
/// <remarks>
/// <para>Usage: <c>using (await semaphore.AcquireAsync()) { ... }</c> (a plain <c>using</c>: releasing
/// never waits), or <see cref="AcquireAsync"/> and <see cref="Release"/> by hand.</para>
/// <para>asyncio 3.13's rules, after gh-90155 (bpo-45997: FIFO, no starvation, no hang when a woken
/// waiter is cancelled) and gh-97545: a release hands its permit to the first waiter at once; a
/// waiter cancelled before that leaves the queue with nothing; when a waiter finishes, as many
/// further waiters are woken as there are permits, so waiters queued behind it for fairness do not
/// hang. A waiter woken and then cancelled before it runs keeps its permit (Tulip never drops an
/// arrived result): its await returns the releaser, the cancellation comes at its next await, and
/// the <c>using</c> block's exit gives the permit back. No permit is ever lost or counted twice.</para>
/// <para>The semaphore binds to the loop it is first used on; using it from another loop or thread
/// throws <see cref="InvalidOperationException"/>.</para>
/// </remarks>
public class Semaphore
{
    private static readonly Action<object?, object?> s_onWaiterDone =
        static (waiter, self) => ((Semaphore)self!).OnWaiterDone((Waiter<SemaphoreReleaser>)waiter!);

    // Guarded by: the bound loop's thread.
    private LoopBinding _binding;
    private WaiterQueue<SemaphoreReleaser> _waiters;
    private int _value;
    private readonly int _bound;

    /// <summary>A semaphore with <paramref name="value"/> permits.</summary>
    /// <param name="value">The initial number of permits. Defaults to 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="value"/> is negative.</exception>
    public Semaphore(int value = 1) : this(value, bounded: false)
    {
    }

    private protected Semaphore(int value, bool bounded)
    {
        if (value < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "A semaphore's initial value must be >= 0.");
        }

        _value = value;
        _bound = bounded ? value : -1;
    }

    /// <summary>
    /// True if <see cref="AcquireAsync"/> would wait: no permit is free, or a waiter that was not
    /// cancelled is queued (FIFO: it goes first).
    /// </summary>
    public bool Locked => _value == 0 || !_waiters.AllCancelled();

    /// <summary>The permits free now (asyncio's <c>_value</c>); for tests and <see cref="ToString"/>.</summary>
    internal int Value => _value;

    /// <summary>How many waiters are queued (for tests and <see cref="ToString"/>).</summary>
    internal int WaiterCount => _waiters.Count;

    /// <summary>
    /// Takes a permit: at once, with no allocation, when one is free and nobody waits; else waits its
    /// turn. The result gives the permit back when disposed.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait, as cancelling the awaiting task does. A
    /// token already cancelled on entry gives a cancelled result without taking a permit.</param>
    /// <returns>A value future of a <see cref="SemaphoreReleaser"/>; await it once.</returns>
    /// <exception cref="InvalidOperationException">No loop runs on this thread, or the semaphore belongs to another loop.</exception>
    /// <exception cref="CancelledError">At the await: the wait was cancelled.</exception>
    public ValueFuture<SemaphoreReleaser> AcquireAsync(CancellationToken cancellationToken = default)
    {
        var loop = _binding.Bind(this);
        if (cancellationToken.IsCancellationRequested)
        {
            return Primitives.Cancelled<SemaphoreReleaser>(loop);
        }

        if (!Locked)
        {
            _value--;
            return new ValueFuture<SemaphoreReleaser>(new SemaphoreReleaser(this));
        }

        var waiter = new Waiter<SemaphoreReleaser>(loop);
        _waiters.Enqueue(waiter);
        waiter.AddCallbackCore(s_onWaiterDone, this);
        TaskCancellation.LinkToFuture(waiter, cancellationToken);
        return new ValueFuture<SemaphoreReleaser>(waiter);
    }

    /// <summary>Gives a permit back; the first waiter, if any, gets it.</summary>
    /// <exception cref="SemaphoreFullException">A <see cref="BoundedSemaphore"/> would go above its
    /// initial value (asyncio's ValueError).</exception>
    /// <exception cref="InvalidOperationException">The semaphore belongs to another loop or thread.</exception>
    public void Release()
    {
        _binding.Check(this);
        if (_bound >= 0 && _value >= _bound)
        {
            throw new SemaphoreFullException(
                $"BoundedSemaphore released too many times: it already holds all {_bound} of its permits. Release once per completed AcquireAsync().");
        }

        _value++;
        WakeUpNext();
    }

    /// <summary>Describes the state as asyncio's repr does: <c>&lt;Semaphore [unlocked, value:1]&gt;</c>.</summary>
    public override string ToString() =>
        Primitives.Describe(GetType().Name, Locked ? "locked" : $"unlocked, value:{_value}", _waiters.Count);

    /// <summary>Hands a permit to the first waiter not done; false if there is none.</summary>
    private bool WakeUpNext()
    {
        var next = _waiters.FirstPending();
        if (next is null)
        {
            return false;
        }

        _value--;
        next.SetResult(new SemaphoreReleaser(this));
        return true;
    }

    private void OnWaiterDone(Waiter<SemaphoreReleaser> waiter)
    {
        // Woken: its permit was counted when it was handed over. Cancelled before that: it took none.
        _waiters.Remove(waiter);

        // Waiters may have queued behind it for FIFO's sake while permits were free: wake as many as
        // there are permits.
        while (_value > 0 && WakeUpNext())
        {
        }
    }
}

/// <summary>
/// asyncio's <c>BoundedSemaphore</c>: a <see cref="Semaphore"/> whose <see cref="Semaphore.Release"/>
/// throws <see cref="SemaphoreFullException"/> instead of going above the initial value, which
/// catches a release without its acquire.
/// </summary>
public sealed class BoundedSemaphore : Semaphore
{
    /// <summary>A bounded semaphore with <paramref name="value"/> permits, never more.</summary>
    /// <param name="value">The initial and largest number of permits. Defaults to 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="value"/> is negative.</exception>
    public BoundedSemaphore(int value = 1) : base(value, bounded: true)
    {
    }
}

/// <summary>
/// Holds a permit taken by <see cref="Semaphore.AcquireAsync"/>; disposing it gives the permit back.
/// Dispose it once: <c>using (await semaphore.AcquireAsync()) { ... }</c>.
/// </summary>
public readonly struct SemaphoreReleaser : IDisposable, IEquatable<SemaphoreReleaser>
{
    private readonly Semaphore? _semaphore;

    internal SemaphoreReleaser(Semaphore owner) => _semaphore = owner;

    /// <summary>Gives the permit back (<see cref="Semaphore.Release"/>); a default releaser does nothing.</summary>
    /// <exception cref="SemaphoreFullException">A bounded semaphore is full: this permit was given back already.</exception>
    public void Dispose() => _semaphore?.Release();

    /// <summary>True if both release the same semaphore.</summary>
    public bool Equals(SemaphoreReleaser other) => ReferenceEquals(_semaphore, other._semaphore);

    /// <summary>True if <paramref name="obj"/> is a releaser of the same semaphore.</summary>
    public override bool Equals(object? obj) => obj is SemaphoreReleaser other && Equals(other);

    /// <summary>The semaphore's hash.</summary>
    public override int GetHashCode() => _semaphore is null ? 0 : _semaphore.GetHashCode();

    /// <summary>True if both release the same semaphore.</summary>
    public static bool operator ==(SemaphoreReleaser left, SemaphoreReleaser right) => left.Equals(right);

    /// <summary>False if both release the same semaphore.</summary>
    public static bool operator !=(SemaphoreReleaser left, SemaphoreReleaser right) => !left.Equals(right);
}
