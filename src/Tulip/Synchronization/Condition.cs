using System;
using System.Runtime.ExceptionServices;
using System.Threading;

namespace Tulip.Synchronization;

/// <summary>
/// asyncio's <c>Condition</c>: tasks holding its lock wait until another task notifies them. Built on
/// a <see cref="Lock"/>, its own or one given (several conditions may share one lock).
/// </summary>
/// <remarks>
/// <para>Usage: <c>using (await cond.AcquireAsync()) { await cond.WaitForAsync(() => ready); ... }</c>;
/// the notifier holds the lock too: <c>using (await cond.AcquireAsync()) { ready = true; cond.Notify(); }</c>.</para>
/// <para>asyncio 3.13's rules: waiters are notified in the order they began to wait. A wait always
/// re-acquires the lock before it ends, even when cancelled (a cancellation during the re-acquire
/// is held until the lock is back, then thrown). A wait that ends with an exception (cancelled
/// while waiting or while re-acquiring) may have been notified already, so it passes one
/// notification on to the next waiter (gh-112202): a notification is never lost to a cancellation;
/// the price is an allowed spurious wake-up, which is why callers re-check their predicate
/// (<see cref="WaitForAsync"/> does). A wait may return spuriously.</para>
/// <para>The condition binds to the loop it is first used on; using it from another loop or thread
/// throws <see cref="InvalidOperationException"/>.</para>
/// </remarks>
public sealed class Condition
{
    // Guarded by: the bound loop's thread.
    private LoopBinding _binding;
    private WaiterQueue<VoidResult> _waiters;
    private readonly Lock _lock;

    /// <summary>A condition over <paramref name="lock"/>, or over a new lock of its own.</summary>
    /// <param name="lock">The lock to use. Defaults to a new <see cref="Synchronization.Lock"/>.</param>
    public Condition(Lock? @lock = null) => _lock = @lock ?? new Lock();

    /// <summary>The lock underneath.</summary>
    public Lock Lock => _lock;

    /// <summary>True while the lock underneath is held.</summary>
    public bool Locked => _lock.Locked;

    /// <summary>How many tasks are waiting to be notified (for tests and <see cref="ToString"/>).</summary>
    internal int WaiterCount => _waiters.Count;

    /// <summary>Acquires the lock underneath (<see cref="Lock.AcquireAsync"/>).</summary>
    /// <param name="cancellationToken">Cancels the wait for the lock.</param>
    /// <returns>A value future of the lock's releaser; await it once.</returns>
    /// <exception cref="InvalidOperationException">No loop runs on this thread, or the lock belongs to another loop.</exception>
    public ValueFuture<LockReleaser> AcquireAsync(CancellationToken cancellationToken = default)
    {
        _binding.Bind(this);
        return _lock.AcquireAsync(cancellationToken);
    }

    /// <summary>Releases the lock underneath (<see cref="Lock.Release"/>).</summary>
    /// <exception cref="InvalidOperationException">The lock is not held, or belongs to another loop or thread.</exception>
    public void Release()
    {
        _binding.Check(this);
        _lock.Release();
    }

    /// <summary>
    /// Releases the lock, waits until notified, then re-acquires the lock (even when cancelled) and
    /// returns. The caller must hold the lock.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait for the notification, as cancelling the task
    /// does; the lock is re-acquired before the <see cref="CancelledError"/> comes out.</param>
    /// <exception cref="InvalidOperationException">The lock is not held (asyncio's RuntimeError), no
    /// loop runs on this thread, or the condition belongs to another loop.</exception>
    /// <exception cref="CancelledError">At the await: the wait was cancelled (the lock is held again).</exception>
    public LoopTask WaitAsync(CancellationToken cancellationToken = default)
    {
        var loop = _binding.Bind(this);
        if (!_lock.Locked)
        {
            throw new InvalidOperationException(
                "Condition.WaitAsync() needs the condition's lock: acquire it first, `using (await cond.AcquireAsync()) { await cond.WaitAsync(); }`.");
        }

        return WaitCoreAsync(loop, cancellationToken);
    }

    /// <summary>
    /// Waits until <paramref name="predicate"/> is true: checks it, and while it is false waits
    /// (<see cref="WaitAsync"/>) and checks again. A predicate true at once returns at once with no
    /// allocation (and then the lock need not be held, as in asyncio); otherwise the caller must hold
    /// the lock.
    /// </summary>
    /// <param name="predicate">The condition to wait for; called with the lock held.</param>
    /// <param name="cancellationToken">Cancels the waiting, as <see cref="WaitAsync"/>'s does.</param>
    /// <returns>A value future; await it once.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="predicate"/> is null.</exception>
    /// <exception cref="InvalidOperationException">It must wait and the lock is not held, no loop runs
    /// on this thread, or the condition belongs to another loop.</exception>
    public ValueFuture<VoidResult> WaitForAsync(Func<bool> predicate, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        _binding.Bind(this);
        if (predicate())
        {
            return new ValueFuture<VoidResult>(default(VoidResult));
        }

        // Checked here so a caller without the lock hears of it at the call, as WaitAsync says.
        var first = WaitAsync(cancellationToken);
        return new ValueFuture<VoidResult>(WaitForCoreAsync(first, predicate, cancellationToken));
    }

    /// <summary>Wakes up to <paramref name="n"/> waiters, oldest first. The caller must hold the lock;
    /// the woken waiters return once it is released to them.</summary>
    /// <param name="n">How many to wake. Defaults to 1; more than are waiting wakes them all.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is negative.</exception>
    /// <exception cref="InvalidOperationException">The lock is not held (asyncio's RuntimeError), or the
    /// condition belongs to another loop or thread.</exception>
    public void Notify(int n = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        _binding.Check(this);
        if (!_lock.Locked)
        {
            throw new InvalidOperationException(
                "Condition.Notify() needs the condition's lock: notify inside `using (await cond.AcquireAsync()) { ... }`.");
        }

        NotifyCore(n);
    }

    /// <summary>Wakes every waiter. The caller must hold the lock.</summary>
    /// <exception cref="InvalidOperationException">The lock is not held, or the condition belongs to another loop or thread.</exception>
    public void NotifyAll() => Notify(_waiters.Count);

    /// <summary>Describes the state as asyncio's repr does: <c>&lt;Condition [locked, waiters:1]&gt;</c>.</summary>
    public override string ToString() => Primitives.Describe("Condition", _lock.Locked ? "locked" : "unlocked", _waiters.Count);

    private void NotifyCore(int n)
    {
        int woken = 0;
        for (var w = _waiters.First; w is not null && woken < n; w = w.Next)
        {
            if (!w.Done)
            {
                woken++;
                w.SetResult(default);
            }
        }
    }

    private async LoopTask WaitCoreAsync(BaseEventLoop loop, CancellationToken cancellationToken)
    {
        var waiter = new Waiter<VoidResult>(loop);
        _lock.Release();
        try
        {
            try
            {
                _waiters.Enqueue(waiter);
                TaskCancellation.LinkToFuture(waiter, cancellationToken);
                try
                {
                    await waiter;
                }
                finally
                {
                    _waiters.Remove(waiter);
                }
            }
            finally
            {
                // The lock must be held again whatever happened. Only cancellation is retried: any
                // other failure of the lock must not make this spin.
                OperationCanceledException? cancelled = null;
                while (true)
                {
                    try
                    {
                        await _lock.AcquireAsync(CancellationToken.None);
                        break;
                    }
                    catch (OperationCanceledException ex)
                    {
                        cancelled = ex;
                    }
                }

                if (cancelled is not null)
                {
                    ExceptionDispatchInfo.Throw(cancelled);
                }
            }
        }
        catch
        {
            // Whatever ends this wait with an exception may have come after a notification: hand one
            // on, so it is not lost (gh-112202). A spurious wake-up is allowed; a lost one is not.
            NotifyCore(1);
            throw;
        }
    }

    private async LoopTask WaitForCoreAsync(LoopTask first, Func<bool> predicate, CancellationToken cancellationToken)
    {
        await first;
        while (!predicate())
        {
            await WaitAsync(cancellationToken);
        }
    }
}
