using System;
using System.Threading;

namespace Tulip.Synchronization;

/// <summary>
/// asyncio's <c>Barrier</c> (3.11): <see cref="Parties"/> tasks wait for each other; when the last
/// one arrives they are all released together, each with its own arrival index.
/// </summary>
/// <remarks>
/// <para>States, as asyncio's: <em>filling</em> (tasks arrive and wait), <em>draining</em> (the
/// barrier tripped and the released tasks are leaving; newcomers wait until the last has left),
/// <em>resetting</em> (<see cref="ResetAsync"/> ran while tasks waited: they get
/// <see cref="BrokenBarrierError"/>; filling again once they have left) and <em>broken</em>
/// (<see cref="AbortAsync"/>: every waiting and later task gets <see cref="BrokenBarrierError"/>
/// until <see cref="ResetAsync"/>). <see cref="ToString"/> shows the state.</para>
/// <para>A cancelled waiter leaves the barrier: it no longer counts towards <see cref="Parties"/>.
/// Built on a <see cref="Condition"/>, so it binds to the loop it is first used on.</para>
/// </remarks>
public sealed class Barrier
{
    private readonly Condition _cond = new();
    // Guarded by: the bound loop's thread (every change is made holding _cond's lock).
    private BarrierState _state = BarrierState.Filling;
    private int _count;

    /// <summary>A barrier for <paramref name="parties"/> tasks.</summary>
    /// <param name="parties">How many tasks must wait to trip it; at least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="parties"/> is less than 1.</exception>
    public Barrier(int parties)
    {
        if (parties < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(parties), parties, "A barrier's parties must be >= 1.");
        }

        Parties = parties;
    }

    /// <summary>How many tasks must wait to trip the barrier.</summary>
    public int Parties { get; }

    /// <summary>How many tasks wait at the barrier now (0 unless it is filling); asyncio's <c>n_waiting</c>.</summary>
    public int NWaiting => _state == BarrierState.Filling ? _count : 0;

    /// <summary>True if the barrier is broken (<see cref="AbortAsync"/>) until <see cref="ResetAsync"/>.</summary>
    public bool Broken => _state == BarrierState.Broken;

    /// <summary>The state for tests.</summary>
    internal BarrierState State => _state;

    /// <summary>How many tasks are inside the barrier, waiting or leaving (asyncio's <c>_count</c>).</summary>
    internal int Count => _count;

    /// <summary>
    /// Waits until <see cref="Parties"/> tasks wait, then returns this task's arrival index, from 0 to
    /// <c>Parties - 1</c>; the last to arrive releases the others. Waits first while the barrier drains
    /// or resets.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait, as cancelling the task does.</param>
    /// <exception cref="BrokenBarrierError">The barrier is broken, or was aborted or reset while this task waited.</exception>
    /// <exception cref="CancelledError">The wait was cancelled.</exception>
    /// <exception cref="InvalidOperationException">No loop runs on this thread, or the barrier belongs to another loop.</exception>
    public async LoopTask<int> WaitAsync(CancellationToken cancellationToken = default)
    {
        using (await _cond.AcquireAsync(cancellationToken))
        {
            // Wait while the barrier drains or resets.
            await _cond.WaitForAsync(() => _state is not (BarrierState.Draining or BarrierState.Resetting), cancellationToken);
            if (_state == BarrierState.Broken)
            {
                throw new BrokenBarrierError("The barrier was aborted: reset it (ResetAsync) before waiting again.");
            }

            int index = _count;
            _count++;
            try
            {
                if (index + 1 == Parties)
                {
                    // The last one trips it: the others drain; newcomers wait until they have left.
                    _state = BarrierState.Draining;
                    _cond.NotifyAll();
                }
                else
                {
                    await _cond.WaitForAsync(() => _state != BarrierState.Filling, cancellationToken);
                    if (_state is BarrierState.Broken or BarrierState.Resetting)
                    {
                        throw new BrokenBarrierError("The barrier was aborted or reset while this task waited at it.");
                    }
                }

                return index;
            }
            finally
            {
                _count--;
                Exit();
            }
        }
    }

    /// <summary>
    /// Resets the barrier to filling. Tasks waiting at it get <see cref="BrokenBarrierError"/>; while
    /// they leave it is resetting, and new arrivals wait for that to end.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait for the barrier's lock.</param>
    /// <exception cref="InvalidOperationException">No loop runs on this thread, or the barrier belongs to another loop.</exception>
    public async LoopTask ResetAsync(CancellationToken cancellationToken = default)
    {
        using (await _cond.AcquireAsync(cancellationToken))
        {
            _state = _count > 0 ? BarrierState.Resetting : BarrierState.Filling;
            _cond.NotifyAll();
        }
    }

    /// <summary>
    /// Breaks the barrier: tasks waiting at it, and every later <see cref="WaitAsync"/> until
    /// <see cref="ResetAsync"/>, get <see cref="BrokenBarrierError"/>. Useful when a party failed.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait for the barrier's lock.</param>
    /// <exception cref="InvalidOperationException">No loop runs on this thread, or the barrier belongs to another loop.</exception>
    public async LoopTask AbortAsync(CancellationToken cancellationToken = default)
    {
        using (await _cond.AcquireAsync(cancellationToken))
        {
            _state = BarrierState.Broken;
            _cond.NotifyAll();
        }
    }

    /// <summary>Describes the state as asyncio's repr does: <c>&lt;Barrier [filling, waiters:2/5]&gt;</c>.</summary>
    public override string ToString()
    {
        string state = _state switch
        {
            BarrierState.Filling => "filling",
            BarrierState.Draining => "draining",
            BarrierState.Resetting => "resetting",
            _ => "broken",
        };
        return _state == BarrierState.Broken ? $"<Barrier [{state}]>" : $"<Barrier [{state}, waiters:{NWaiting}/{Parties}]>";
    }

    /// <summary>The last task to leave ends draining or resetting and lets the blocked ones in.</summary>
    private void Exit()
    {
        if (_count == 0)
        {
            if (_state is BarrierState.Resetting or BarrierState.Draining)
            {
                _state = BarrierState.Filling;
            }

            _cond.NotifyAll();
        }
    }
}

/// <summary>A barrier's state (asyncio's <c>_BarrierState</c>).</summary>
internal enum BarrierState
{
    Filling,
    Draining,
    Resetting,
    Broken,
}
