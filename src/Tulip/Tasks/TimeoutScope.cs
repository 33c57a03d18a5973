using System;
using System.Threading.Tasks;

namespace Tulip;

/// <summary>
/// A deadline on the task that created it: asyncio's <c>Timeout</c> (<c>asyncio.timeout()</c>).
/// Made by <see cref="Tasks.Timeout(double?)"/> or <see cref="Tasks.TimeoutAt"/>; entered when made. At
/// the deadline the scope cancels its task (<c>task.Cancel()</c>), so <see cref="CancelledError"/>
/// arrives at the task's await; leaving the scope withdraws that cancellation with
/// <see cref="LoopTask{T}.Uncancel"/>.
/// </summary>
/// <remarks>
/// <para>
/// Turning the <see cref="CancelledError"/> into <see cref="TimeoutError"/> on the way out needs
/// the exception leaving the block, which C# does not give to <c>Dispose</c>. So:
/// </para>
/// <list type="bullet">
/// <item><description>
/// <see cref="Tasks.WithTimeout{T}(double?, Func{TimeoutScope, LoopTask{T}}, System.Threading.CancellationToken)"/>
/// runs a body in a scope and does exactly what asyncio's <c>async with timeout()</c> does:
/// <see cref="TimeoutError"/> if the scope expired and its cancellation is the one that ended the
/// body, <see cref="CancelledError"/> if the task was also cancelled from elsewhere. Use it
/// whenever the exception matters.
/// </description></item>
/// <item><description>
/// <c>using (Tasks.Timeout(s)) { ... }</c> (or <c>await using</c>) gives the deadline alone:
/// <see cref="Dispose"/> stops the timer and withdraws the scope's cancellation, but cannot change
/// the exception in flight, so an expired block ends with <see cref="CancelledError"/>. Test
/// <see cref="Expired"/> after catching it to tell a timeout from a cancellation.
/// </description></item>
/// </list>
/// <para>
/// Scopes nest: an inner scope that expires raises (in <c>WithTimeout</c>) <see cref="TimeoutError"/>
/// that the outer scope does not touch, as its own cancellation count is back where it began.
/// Members are for the loop thread.
/// </para>
/// </remarks>
public sealed class TimeoutScope : IDisposable, IAsyncDisposable
{
    private readonly BaseEventLoop _loop;
    private readonly Future _task;
    private readonly ILoopTask _taskControl;
    private readonly int _cancellingAtEntry;
    private double? _when;
    private TimerHandle? _timer;
    private ScopeState _state;

    private TimeoutScope(BaseEventLoop loop, Future task, double? when)
    {
        _loop = loop;
        _task = task;
        _taskControl = (ILoopTask)task;
        _cancellingAtEntry = _taskControl.Cancelling();
        _state = ScopeState.Entered;
        Reschedule(when);
    }

    /// <summary>The deadline on the loop's clock (<see cref="IEventLoop.Time"/>), or null for none.</summary>
    public double? When => _when;

    /// <summary>True once the deadline has passed and the scope has cancelled its task.</summary>
    public bool Expired => _state is ScopeState.Expiring or ScopeState.Expired;

    /// <summary>
    /// Moves the deadline to <paramref name="when"/> on the loop's clock (null: no deadline). A
    /// time already past expires the scope on the next loop iteration.
    /// </summary>
    /// <exception cref="InvalidOperationException">The scope has expired or has been left.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="when"/> is NaN.</exception>
    public void Reschedule(double? when)
    {
        if (_state != ScopeState.Entered)
        {
            throw new InvalidOperationException(_state == ScopeState.Exited
                ? "Cannot reschedule a timeout scope that has been left."
                : "Cannot reschedule a timeout scope that has already expired.");
        }

        if (when is double w && double.IsNaN(w))
        {
            throw new ArgumentOutOfRangeException(nameof(when), "The deadline is NaN: give a time on the loop's clock, or null for none.");
        }

        _when = when;
        _timer?.Cancel();
        // A deadline already past goes through the timer heap too: due timers run on the next
        // iteration, as asyncio's call_soon would.
        _timer = when is double at ? _loop.CallAt(at, static s => s.OnDeadline(), this) : null;
    }

    /// <summary>
    /// Leaves the scope: stops the timer and, if the scope expired, withdraws its cancellation of
    /// the task. Does not throw: see the class remarks for why an expired block still ends with
    /// <see cref="CancelledError"/>. Leaving twice does nothing.
    /// </summary>
    public void Dispose() => Exit(null);

    /// <summary>As <see cref="Dispose"/>, for <c>await using</c>; completes at once.</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return default;
    }

    /// <summary>Describes the scope.</summary>
    public override string ToString() =>
        $"<Timeout [{_state.ToString().ToLowerInvariant()}] when={(_when is double w ? w.ToString("F3", System.Globalization.CultureInfo.InvariantCulture) : "None")}>";

    /// <summary>Enters a scope on the current task.</summary>
    internal static TimeoutScope Enter(double? when)
    {
        var loop = Tasks.RunningLoop();
        var task = loop.CurrentTask?.AsFuture;
        if (task is null)
        {
            throw new InvalidOperationException("A timeout scope must be used inside a loop task: it cancels the task at the deadline.");
        }

        return new TimeoutScope(loop, task, when);
    }

    /// <summary>
    /// Leaves the scope, knowing what the body ended with: returns the <see cref="TimeoutError"/>
    /// to throw instead of <paramref name="error"/>, or null to let the body's outcome stand
    /// (asyncio's <c>Timeout.__aexit__</c>).
    /// </summary>
    internal TimeoutError? Exit(Exception? error)
    {
        if (_state is ScopeState.Exited or ScopeState.Expired)
        {
            return null;
        }

        _timer?.Cancel();
        _timer = null;
        if (_state == ScopeState.Entered)
        {
            _state = ScopeState.Exited;
            return null;
        }

        _state = ScopeState.Expired;
        // Only if no other cancellation of the task is pending is this a timeout; otherwise the
        // CancelledError belongs to whoever else cancelled the task, and goes on.
        if (_taskControl.Uncancel() <= _cancellingAtEntry && error is OperationCanceledException)
        {
            return new TimeoutError("The operation timed out: the timeout scope's deadline passed.", error);
        }

        return null;
    }

    private void OnDeadline()
    {
        if (_state != ScopeState.Entered)
        {
            return;
        }

        _timer = null;
        _state = ScopeState.Expiring;
        _task.Cancel();
    }

    private enum ScopeState : byte
    {
        Entered,
        Expiring,
        Expired,
        Exited,
    }
}
