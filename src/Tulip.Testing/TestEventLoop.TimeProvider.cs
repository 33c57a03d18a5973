using System;
using System.Threading;
using Microsoft.Extensions.Logging;

namespace Tulip.Testing;

/// <summary>The loop's clock read from a <see cref="System.TimeProvider"/> (such as <c>FakeTimeProvider</c>) instead of its own.</summary>
public partial class TestEventLoop
{
    // Set once by the constructor; null when the loop keeps its own virtual clock (_now).
    private readonly TimeProvider? _clock;
    private readonly Action<TimeSpan>? _advanceClock;
    private readonly long _clockOrigin;
    private readonly double _secondsPerTimestamp;
    private readonly double _clockResolution;

    /// <summary>How far the provider's time may move while a wake timer is armed before it is armed again (see <see cref="ArmClockWake"/>).</summary>
    private const double ClockWakeSlack = 1e-3;

    /// <summary>
    /// Creates a loop whose clock is <paramref name="timeProvider"/>'s: <see cref="Time"/> reads the
    /// provider's time elapsed since the loop was made (plus <paramref name="startTime"/>), so when a
    /// <c>FakeTimeProvider</c> is advanced (<c>Advance</c>, <c>SetUtcNow</c>) the loop's timers fall due
    /// with the provider's own <see cref="ITimer"/>s, <c>Task.Delay(t, provider)</c> and
    /// <c>CancellationTokenSource(t, provider)</c>, and run when the loop next runs.
    /// </summary>
    /// <remarks>
    /// <para>
    /// With <paramref name="advance"/> (for a <c>FakeTimeProvider</c>: <c>new TestEventLoop(fake, fake.Advance)</c>)
    /// the loop moves the provider itself: <see cref="Advance(double)"/>, <see cref="AdvanceToNext"/> and
    /// auto-advance call it to step to each timer, so the provider's timers and the loop's fire in the
    /// order of their due times, each loop timer run before the provider passes it.
    /// </para>
    /// <para>
    /// Without it the provider's time is the provider's to move: <see cref="Advance(double)"/> and
    /// <see cref="AdvanceToNext"/> throw <see cref="InvalidOperationException"/>, <see cref="RunUntilIdle"/>
    /// runs what the provider's time has made due, and a free run (<c>RunUntilComplete</c>) with nothing
    /// ready waits (up to <see cref="IdleTimeout"/>, in real time) for the provider to reach the next
    /// timer (another thread advancing a fake, or real time for <see cref="TimeProvider.System"/>) or a
    /// call from another thread.
    /// </para>
    /// <para>
    /// The provider's time must not go backwards (<c>FakeTimeProvider</c> refuses that). Timers are due
    /// to the provider's timestamp resolution (a tick of 100 ns for <c>FakeTimeProvider</c>).
    /// </para>
    /// </remarks>
    /// <param name="timeProvider">The clock: a <c>FakeTimeProvider</c> in tests, any <see cref="System.TimeProvider"/>.</param>
    /// <param name="advance">Moves <paramref name="timeProvider"/> forward by the given time (<c>fake.Advance</c>), or null if the loop may not move it.</param>
    /// <param name="startTime">The reading of <see cref="Time"/> when the loop is made, in seconds. Defaults to 0.</param>
    /// <param name="loggerFactory">Where the loop logs; stderr if null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="timeProvider"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="startTime"/> is not finite, or the provider's <see cref="TimeProvider.TimestampFrequency"/> is not positive.</exception>
    public TestEventLoop(TimeProvider timeProvider, Action<TimeSpan>? advance = null, double startTime = 0, ILoggerFactory? loggerFactory = null)
        : this(CheckStartTime(startTime), loggerFactory, CheckClock(timeProvider), advance)
    {
    }

    /// <summary>The provider the loop's clock reads (see <see cref="TestEventLoop(System.TimeProvider, Action{TimeSpan}?, double, ILoggerFactory?)"/>), or null when the loop keeps its own virtual clock.</summary>
    public TimeProvider? TimeProvider => _clock;

    /// <summary>True when the loop may move its clock: its own virtual clock, or a provider with an advance callback.</summary>
    private bool CanMoveClock => _clock is null || _advanceClock is not null;

    private static TimeProvider CheckClock(TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        if (timeProvider.TimestampFrequency <= 0)
        {
            throw new ArgumentOutOfRangeException(
                nameof(timeProvider), timeProvider.TimestampFrequency,
                $"{timeProvider.GetType().Name}.TimestampFrequency must be positive: the loop reads its time as GetTimestamp() / TimestampFrequency.");
        }

        return timeProvider;
    }

    private double ClockTime() => _now + ((_clock!.GetTimestamp() - _clockOrigin) * _secondsPerTimestamp);

    private void RequireMovableClock(string member)
    {
        if (!CanMoveClock)
        {
            throw new InvalidOperationException(
                $"{member} cannot move this loop's clock: it reads {_clock!.GetType().Name}'s time and was given no advance callback. " +
                "Advance the provider (FakeTimeProvider.Advance/SetUtcNow) and call RunUntilIdle, or make the loop with one: new TestEventLoop(fake, fake.Advance).");
        }
    }

    /// <summary>Moves the clock forward to <paramref name="target"/> (never back): the virtual clock, or the provider through the advance callback.</summary>
    private void MoveClockTo(double target)
    {
        if (_clock is null)
        {
            _now = Math.Max(_now, target);
            return;
        }

        double now = ClockTime();
        if (target <= now)
        {
            return;
        }

        // Round up to whole ticks so the timer at target is due after the step, never a tick short.
        long ticks = Math.Max(1, (long)Math.Ceiling((target - now) * TimeSpan.TicksPerSecond));
        _advanceClock!(TimeSpan.FromTicks(ticks));
        if (ClockTime() < target - _clockResolution)
        {
            throw new InvalidOperationException(
                $"The advance callback given to the {GetType().Name} did not move {_clock.GetType().Name}'s time forward by {TimeSpan.FromTicks(ticks)}: " +
                "it must move the same provider the loop reads (new TestEventLoop(fake, fake.Advance)).");
        }
    }

    /// <summary>
    /// A provider timer that wakes a free run's wait when the next loop timer falls due on the
    /// provider's clock; null on the virtual clock, with no timer, or when it is due already (the wait is woken at once).
    /// </summary>
    private ITimer? ArmClockWake(double? nextTimer)
    {
        if (_clock is null || nextTimer is not double due)
        {
            return null;
        }

        // CreateTimer's due time is relative to the provider's time when it is called, which another
        // thread may move between the reading and the call (advancing a fake): re-arm until the time
        // moved less than a millisecond meanwhile, so the wake is late by less than that (real time
        // always moves a little, so equality would never settle on TimeProvider.System).
        while (true)
        {
            double before = ClockTime();
            double wait = due - before;
            if (wait < _clockResolution)
            {
                WriteToSelf();
                return null;
            }

            var timer = _clock.CreateTimer(
                static state => ((TestEventLoop)state!).WriteToSelf(), this,
                TimeSpan.FromTicks((long)Math.Ceiling(wait * TimeSpan.TicksPerSecond)), Timeout.InfiniteTimeSpan);
            if (ClockTime() - before < ClockWakeSlack)
            {
                return timer;
            }

            timer.Dispose();
        }
    }
}
