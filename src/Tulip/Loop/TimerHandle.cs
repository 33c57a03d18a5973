using System;

namespace Tulip;

/// <summary>
/// A callback scheduled for a time on the loop's clock by <see cref="IEventLoop.CallLater(double, Action)"/>
/// or <see cref="IEventLoop.CallAt(double, Action)"/>: the PEP's <c>TimerHandle</c>.
/// </summary>
/// <remarks>Cancelling tells the loop, which drops cancelled timers from its heap in bulk once they
/// are more than half of it, so scheduling and cancelling many timers gives their memory back.</remarks>
public abstract class TimerHandle : Handle
{
    private protected TimerHandle(BaseEventLoop loop, double when, long sequence) : base(loop)
    {
        Loop = loop;
        When = when;
        Sequence = sequence;
    }

    /// <summary>The loop whose heap holds the timer, told when it is cancelled. (Only timers keep their loop: a plain handle needs none.)</summary>
    private protected BaseEventLoop Loop { get; }

    /// <summary>When the callback is due, on the loop's clock (<see cref="IEventLoop.Time"/>), in seconds.</summary>
    public double When { get; }

    /// <summary>Tie-breaker so that timers due at the same time run in the order scheduled.</summary>
    internal long Sequence { get; }

    /// <summary>True while the timer sits in its loop's heap.</summary>
    internal bool Scheduled { get; set; }

    /// <inheritdoc/>
    public override void Cancel()
    {
        if (Cancelled)
        {
            return;
        }

        base.Cancel();
        if (Scheduled)
        {
            Loop.TimerHandleCancelled();
        }
    }

    /// <summary>Orders by due time, then by scheduling order.</summary>
    internal bool RunsBefore(TimerHandle other) =>
        When < other.When || (When == other.When && Sequence < other.Sequence);
}

/// <summary>A timer for an <see cref="Action"/>.</summary>
internal sealed class ActionTimerHandle : TimerHandle
{
    private Action? _callback;

    internal ActionTimerHandle(BaseEventLoop loop, double when, long sequence, Action callback)
        : base(loop, when, sequence) => _callback = callback;

    internal override string CallbackName => Describe(_callback);

    internal override void Run() => _callback?.Invoke();

    private protected override void ReleaseCallback() => _callback = null;
}

/// <summary>A timer for a callback with explicit state.</summary>
internal sealed class StateTimerHandle<TState> : TimerHandle
{
    private Action<TState>? _callback;
    private TState _state;

    internal StateTimerHandle(BaseEventLoop loop, double when, long sequence, Action<TState> callback, TState state)
        : base(loop, when, sequence)
    {
        _callback = callback;
        _state = state;
    }

    internal override string CallbackName => Describe(_callback);

    internal override void Run() => _callback?.Invoke(_state);

    private protected override void ReleaseCallback()
    {
        _callback = null;
        _state = default!;
    }
}
