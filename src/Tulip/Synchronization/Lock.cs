using System;
using System.Threading;

namespace Tulip.Synchronization;

/// <summary>
/// asyncio's <c>Lock</c>: a mutual-exclusion lock for tasks of one event loop. Not owned by a task:
/// whoever holds it may release it. Waiters get it in the order they asked (FIFO).
/// </summary>
/// <remarks>
/// <para>Usage: <c>using (await gate.AcquireAsync()) { ... }</c>. The releaser is disposed with a
/// plain <c>using</c>, not <c>await using</c>: releasing never waits (asyncio's <c>__aexit__</c>
/// only calls <c>release()</c>), so an asynchronous dispose would add a <see cref="System.Threading.Tasks.ValueTask"/>
/// per exit for nothing. Or pair <see cref="AcquireAsync"/> with <see cref="Release"/> by hand.</para>
/// <para>Cancellation: a waiter cancelled before it is woken leaves the queue and, if the lock is
/// free, wakes the next one (bpo-27585, bpo-32734). A waiter woken and then cancelled before it
/// runs still gets the lock (Tulip never drops an arrived result, ARCHITECTURE "Futures and
/// tasks"): its await returns the releaser and the cancellation comes at its next await, inside
/// the <c>using</c> block, whose exit passes the lock on. Either way the wake-up is never lost.</para>
/// <para>The lock binds to the loop it is first used on (asyncio's <c>_LoopBoundMixin</c>); using it
/// from another loop or another thread throws <see cref="InvalidOperationException"/>.</para>
/// </remarks>
public sealed class Lock
{
    private static readonly Action<object?, object?> s_onWaiterDone =
        static (waiter, self) => ((Lock)self!).OnWaiterDone((Waiter<LockReleaser>)waiter!);

    // Guarded by: the bound loop's thread.
    private LoopBinding _binding;
    private WaiterQueue<LockReleaser> _waiters;
    private bool _locked;

    /// <summary>True while the lock is held.</summary>
    public bool Locked => _locked;

    /// <summary>How many waiters are queued (for tests and <see cref="ToString"/>).</summary>
    internal int WaiterCount => _waiters.Count;

    /// <summary>
    /// Acquires the lock: at once, with no allocation, when it is free and nobody waits; else waits
    /// its turn. The result releases the lock when disposed.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait, as cancelling the awaiting task does. A
    /// token already cancelled on entry gives a cancelled result without taking the lock.</param>
    /// <returns>A value future of a <see cref="LockReleaser"/>; await it once.</returns>
    /// <exception cref="InvalidOperationException">No loop runs on this thread, or the lock belongs to another loop.</exception>
    /// <exception cref="CancelledError">At the await: the wait was cancelled.</exception>
    public ValueFuture<LockReleaser> AcquireAsync(CancellationToken cancellationToken = default)
    {
        var loop = _binding.Bind(this);
        if (cancellationToken.IsCancellationRequested)
        {
            return Primitives.Cancelled<LockReleaser>(loop);
        }

        // Fair: a free lock is taken at once only if nobody is waiting; jumping a queue of cancelled
        // waiters only is asyncio's optimization.
        if (!_locked && _waiters.AllCancelled())
        {
            _locked = true;
            return new ValueFuture<LockReleaser>(new LockReleaser(this));
        }

        var waiter = new Waiter<LockReleaser>(loop);
        _waiters.Enqueue(waiter);
        // Registered before the awaiting task's continuation, so the lock's state moves just before
        // the waiter's task runs, as asyncio's does in acquire() after its await.
        waiter.AddCallbackCore(s_onWaiterDone, this);
        TaskCancellation.LinkToFuture(waiter, cancellationToken);
        return new ValueFuture<LockReleaser>(waiter);
    }

    /// <summary>Releases the lock; the first waiter, if any, gets it next.</summary>
    /// <exception cref="InvalidOperationException">The lock is not held (asyncio's RuntimeError), or it
    /// belongs to another loop or thread.</exception>
    public void Release()
    {
        _binding.Check(this);
        if (!_locked)
        {
            throw new InvalidOperationException(
                "Release() was called on a Lock that is not locked: release once per completed AcquireAsync() " +
                "(a `using (await gate.AcquireAsync()) { ... }` block does exactly that).");
        }

        _locked = false;
        WakeUpFirst();
    }

    /// <summary>Describes the state as asyncio's repr does: <c>&lt;Lock [locked, waiters:2]&gt;</c>.</summary>
    public override string ToString() => Primitives.Describe("Lock", _locked ? "locked" : "unlocked", _waiters.Count);

    /// <summary>Makes sure the first waiter will run (a done one is already on its way).</summary>
    private void WakeUpFirst()
    {
        var first = _waiters.First;
        if (first is not null && !first.Done)
        {
            first.SetResult(new LockReleaser(this));
        }
    }

    private void OnWaiterDone(Waiter<LockReleaser> waiter)
    {
        _waiters.Remove(waiter);
        if (waiter.Cancelled)
        {
            // The lock invariant: if it is free and someone waits, the first waiter will run.
            if (!_locked)
            {
                WakeUpFirst();
            }
        }
        else
        {
            _locked = true;
        }
    }
}

/// <summary>
/// Holds a <see cref="Lock"/> acquired by <see cref="Lock.AcquireAsync"/> (or <see cref="Condition.AcquireAsync"/>);
/// disposing it releases the lock. Dispose it once: <c>using (await gate.AcquireAsync()) { ... }</c>.
/// </summary>
public readonly struct LockReleaser : IDisposable, IEquatable<LockReleaser>
{
    private readonly Lock? _lock;

    internal LockReleaser(Lock owner) => _lock = owner;

    /// <summary>Releases the lock (<see cref="Lock.Release"/>); a default releaser does nothing.</summary>
    /// <exception cref="InvalidOperationException">The lock is no longer held: it was released already.</exception>
    public void Dispose() => _lock?.Release();

    /// <summary>True if both release the same lock.</summary>
    public bool Equals(LockReleaser other) => ReferenceEquals(_lock, other._lock);

    /// <summary>True if <paramref name="obj"/> is a releaser of the same lock.</summary>
    public override bool Equals(object? obj) => obj is LockReleaser other && Equals(other);

    /// <summary>The lock's hash.</summary>
    public override int GetHashCode() => _lock is null ? 0 : _lock.GetHashCode();

    /// <summary>True if both release the same lock.</summary>
    public static bool operator ==(LockReleaser left, LockReleaser right) => left.Equals(right);

    /// <summary>False if both release the same lock.</summary>
    public static bool operator !=(LockReleaser left, LockReleaser right) => !left.Equals(right);
}
