using System;
using System.Collections.Generic;
using System.Threading;
using Microsoft.Extensions.Logging;

namespace Tulip.Testing;

/// <summary>
/// The real base loop (ready queue, timer heap, tasks, thread-safe calls) on a virtual clock that
/// moves only when the test says so: a 60-second timeout is tested in microseconds, and the same
/// test gives the same result every run. asyncio's private <c>TestLoop</c> and Twisted's
/// <c>task.Clock</c>, as a product.
/// </summary>
/// <remarks>
/// <para>
/// There is no multiplexer: <see cref="ProcessEvents"/> never waits for I/O. Two ways to drive it:
/// </para>
/// <para>
/// Step by step, the test moving time: <see cref="RunUntilIdle"/> runs callbacks until none is
/// ready (time stands still); <see cref="Advance(double)"/> moves the clock forward, firing the
/// timers that fall due on the way in order, each at its own time (a timer scheduled by a timer
/// inside the window fires too), then runs until idle; <see cref="AdvanceToNext"/> jumps to the
/// next timer. Start coroutines with <c>loop.CreateTask(...)</c>: they begin on the next run.
/// </para>
/// <para>
/// Free-running: <c>RunUntilComplete</c> and <c>RunForever</c> auto-advance (while
/// <see cref="AutoAdvance"/> is true, the default): whenever nothing is ready, the clock jumps to
/// the next timer, as trio's autojump clock and Twisted's <c>Clock.pump</c> do, so a coroutine
/// that sleeps 60 s finishes at once with <see cref="Time"/> 60 s later. With nothing ready and no
/// timer, the loop waits (in real time) for a call from another thread
/// (<see cref="BaseEventLoop.CallSoonThreadSafe(Action)"/>, executor results), and throws
/// <see cref="TimeoutException"/> after <see cref="IdleTimeout"/> instead of hanging the test.
/// Auto-advance does not wait for work on other threads before jumping: a coroutine that awaits
/// <c>RunInExecutor</c> under a timeout sees the timeout fire first. Drive such tests step by step.
/// </para>
/// <para>
/// Errors that reach the loop's exception handler (a callback that threw, a protocol that failed)
/// are collected in <see cref="UnhandledErrors"/> and, while <see cref="FailOnUnhandledErrors"/> is
/// true (the default), thrown as <see cref="UnhandledLoopErrorsException"/> from the run that saw them,
/// so a test cannot pass over a bug that the real loop would only have logged.
/// </para>
/// <para>
/// The socket, pipe, subprocess and signal members throw <see cref="NotSupportedException"/>;
/// <see cref="MemoryEventLoop"/> adds in-memory connections and servers.
/// All members are for the thread that runs the loop, except the thread-safe ones of the base loop.
/// </para>
/// </remarks>
public partial class TestEventLoop : BaseEventLoop
{
    /// <summary>Timers due within a nanosecond of now run now: far below any timeout a test sets, far above the rounding of sums of seconds.</summary>
    private const double VirtualResolution = 1e-9;

    // Guards _woken; WriteToSelf pulses it to wake a loop waiting for a thread-safe call.
    private readonly object _wakeLock = new();
    private bool _woken;

    // Owned by the loop thread.
    private readonly List<ExceptionContext> _errors = new();
    private int _errorsThrown;
    private double _now;
    private Mode _mode;
    private double _target;
    private long _iterations;

    private enum Mode
    {
        Free,
        UntilIdle,
        UntilTime,
    }

    /// <summary>Creates a loop whose clock reads <paramref name="startTime"/> until the test moves it.</summary>
    /// <param name="startTime">The initial reading of <see cref="Time"/>, in seconds. Defaults to 0.</param>
    /// <param name="loggerFactory">Where the loop logs; stderr if null.</param>
    public TestEventLoop(double startTime = 0, ILoggerFactory? loggerFactory = null)
        : this(CheckStartTime(startTime), loggerFactory, null, null)
    {
    }

    private TestEventLoop(double startTime, ILoggerFactory? loggerFactory, TimeProvider? clock, Action<TimeSpan>? advanceClock)
        : base(loggerFactory)
    {
        _now = startTime;
        if (clock is not null)
        {
            _clock = clock;
            _advanceClock = advanceClock;
            _clockOrigin = clock.GetTimestamp();
            _secondsPerTimestamp = 1.0 / clock.TimestampFrequency;
            _clockResolution = Math.Max(VirtualResolution, _secondsPerTimestamp);
        }

        SetExceptionHandler(static (loop, context) => ((TestEventLoop)loop).RecordError(context));
    }

    private static double CheckStartTime(double startTime) => double.IsFinite(startTime)
        ? startTime
        : throw new ArgumentOutOfRangeException(nameof(startTime), startTime, "The start time must be a finite number of seconds.");

    /// <summary>
    /// True (the default) to let <c>RunUntilComplete</c> and <c>RunForever</c> jump the clock to
    /// the next timer whenever nothing is ready. False: they never move time, and a run that waits
    /// for a timer throws after <see cref="IdleTimeout"/>. <see cref="Advance(double)"/> and
    /// <see cref="RunUntilIdle"/> ignore it.
    /// </summary>
    public bool AutoAdvance { get; set; } = true;

    /// <summary>
    /// How long (real time) a free run with nothing ready and no timer to jump to waits for a call
    /// from another thread before it throws <see cref="TimeoutException"/>. Defaults to 10 seconds;
    /// <see cref="Timeout.InfiniteTimeSpan"/> waits forever.
    /// </summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The most iterations one <see cref="RunUntilIdle"/> or <see cref="Advance(double)"/> runs before
    /// it throws: a callback that reschedules itself forever never lets the loop become idle.
    /// Defaults to 1,000,000.
    /// </summary>
    public long MaxIterations { get; set; } = 1_000_000;

    /// <summary>
    /// True (the default) to throw <see cref="UnhandledLoopErrorsException"/> from a run during which an
    /// error reached the exception handler. False: errors are only collected in <see cref="UnhandledErrors"/>.
    /// </summary>
    public bool FailOnUnhandledErrors { get; set; } = true;

    /// <summary>Every context that reached the loop's exception handler, oldest first (until <see cref="ClearUnhandledErrors"/>).</summary>
    public IReadOnlyList<ExceptionContext> UnhandledErrors => _errors;

    /// <summary>The due time of the earliest timer that is not cancelled, or null when none is scheduled.</summary>
    public double? NextTimerAt => NextTimerDue;

    /// <summary>
    /// The virtual clock, in seconds: moves only by <see cref="Advance(double)"/>, <see cref="AdvanceToNext"/> and auto-advance;
    /// on a loop made with a <see cref="System.TimeProvider"/>, the provider's time since the loop was made (plus the start time).
    /// </summary>
    public override double Time() => _clock is null ? _now : ClockTime();

    /// <inheritdoc/>
    protected override double ClockResolution => _clock is null ? VirtualResolution : _clockResolution;

    /// <summary>Forgets the collected <see cref="UnhandledErrors"/> (a test that expected them calls it after checking).</summary>
    public void ClearUnhandledErrors()
    {
        _errors.Clear();
        _errorsThrown = 0;
    }

    /// <summary>
    /// Runs the loop until no callback is ready and no timer is due, without moving the clock:
    /// scheduled callbacks, started tasks, delivered data and everything they cause in turn.
    /// </summary>
    /// <exception cref="InvalidOperationException">The loop is running, closed, or never became idle within <see cref="MaxIterations"/>.</exception>
    /// <exception cref="UnhandledLoopErrorsException">An error reached the exception handler (see <see cref="FailOnUnhandledErrors"/>).</exception>
    public void RunUntilIdle() => Drive(Mode.UntilIdle, Time());

    /// <summary>
    /// Moves the clock <paramref name="seconds"/> forward, stopping at each timer that falls due on
    /// the way to run it and what it causes (so timers fire in order, each seeing its own
    /// <see cref="Time"/>), and runs until idle at the end.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="seconds"/> is negative or not finite.</exception>
    /// <exception cref="InvalidOperationException">The loop is running, closed, or never became idle within <see cref="MaxIterations"/>.</exception>
    /// <exception cref="UnhandledLoopErrorsException">An error reached the exception handler (see <see cref="FailOnUnhandledErrors"/>).</exception>
    public void Advance(double seconds)
    {
        if (!(seconds >= 0) || double.IsInfinity(seconds))
        {
            throw new ArgumentOutOfRangeException(nameof(seconds), seconds, "Advance by a finite, non-negative number of seconds.");
        }

        RequireMovableClock(nameof(Advance));
        Drive(Mode.UntilTime, Time() + seconds);
    }

    /// <summary>As <see cref="Advance(double)"/>, with a <see cref="TimeSpan"/>.</summary>
    public void Advance(TimeSpan delay) => Advance(delay.TotalSeconds);

    /// <summary>
    /// Runs until idle, then moves the clock to the next timer (if any), runs it and what it causes
    /// until idle. Returns false, and leaves the clock alone, when no timer is scheduled.
    /// </summary>
    /// <exception cref="InvalidOperationException">The loop is running, closed, or never became idle within <see cref="MaxIterations"/>.</exception>
    /// <exception cref="UnhandledLoopErrorsException">An error reached the exception handler (see <see cref="FailOnUnhandledErrors"/>).</exception>
    public bool AdvanceToNext()
    {
        RequireMovableClock(nameof(AdvanceToNext));
        RunUntilIdle();
        if (NextTimerDue is not double due)
        {
            return false;
        }

        Drive(Mode.UntilTime, Math.Max(Time(), due));
        return true;
    }

    private void Drive(Mode mode, double target)
    {
        if (IsRunning)
        {
            throw new InvalidOperationException(
                "The loop is already running: RunUntilIdle, Advance and AdvanceToNext drive it from the test, outside any callback or task.");
        }

        _mode = mode;
        _target = target;
        _iterations = 0;
        try
        {
            RunForever();
        }
        finally
        {
            _mode = Mode.Free;
        }

        ThrowIfNewErrors();
    }

    /// <summary>
    /// Never waits for I/O (there is none). Returns at once when something is ready; otherwise
    /// moves the clock or stops the run as the current mode says (see the class remarks).
    /// </summary>
    protected override void ProcessEvents(double timeout)
    {
        ThrowIfNewErrors();
        if (_mode != Mode.Free && ++_iterations > MaxIterations)
        {
            throw new InvalidOperationException(
                $"The loop ran {MaxIterations} iterations without becoming idle: a callback keeps scheduling work. Raise MaxIterations if that is intended.");
        }

        if (timeout == 0 || HasReadyCallbacks)
        {
            return;
        }

        double? next = NextTimerDue;
        if (next is double dueNow && dueNow < Time() + ClockResolution)
        {
            return;
        }

        switch (_mode)
        {
            case Mode.UntilIdle:
                Stop();
                return;
            case Mode.UntilTime:
                if (next is double due && due <= _target)
                {
                    MoveClockTo(due);
                    return;
                }

                MoveClockTo(_target);
                Stop();
                return;
            default:
                if (AutoAdvance && CanMoveClock && next is double jump)
                {
                    MoveClockTo(jump);
                    return;
                }

                WaitForThreadSafeCall(next);
                return;
        }
    }

    private void WaitForThreadSafeCall(double? nextTimer)
    {
        var deadline = IdleTimeout;
        // On a provider's clock the next timer falls due when the provider says so (another thread
        // advancing a FakeTimeProvider, or real time passing): a provider timer wakes the wait then.
        using var clockWake = ArmClockWake(nextTimer);
        lock (_wakeLock)
        {
            while (!_woken && !HasReadyCallbacks)
            {
                if (!Monitor.Wait(_wakeLock, deadline))
                {
                    throw new TimeoutException(IdleMessage(nextTimer is not null));
                }
            }

            _woken = false;
        }
    }

    private string IdleMessage(bool haveTimer)
    {
        if (_clock is not null)
        {
            return $"The {GetType().Name} has nothing to run{(haveTimer ? $", its next timer is not yet due on {_clock.GetType().Name}'s clock" : " and no timer")}, " +
                $"and neither a call from another thread nor the provider's time came within IdleTimeout ({IdleTimeout}): the run would wait forever. " +
                "Advance the provider (FakeTimeProvider.Advance/SetUtcNow) and then run the loop, give the loop an advance callback so it can move the provider itself, or check what the code waits for.";
        }

        return $"The {GetType().Name} has nothing to run{(haveTimer ? " and AutoAdvance is off, so its timers never fall due" : " and no timer")}, " +
            $"and no call came from another thread within IdleTimeout ({IdleTimeout}): the run would wait forever. " +
            "Move time with Advance/AdvanceToNext, turn AutoAdvance on, or check what the code waits for.";
    }

    /// <summary>Wakes a free run waiting for a thread-safe call: a monitor, since there is no fd to write to.</summary>
    protected override void WriteToSelf()
    {
        lock (_wakeLock)
        {
            _woken = true;
            Monitor.PulseAll(_wakeLock);
        }
    }

    /// <inheritdoc/>
    protected override string SupportHint(string member) =>
        member is nameof(SubprocessExecAsync) or nameof(SubprocessShellAsync)
            ? base.SupportHint(member)
            : $"{GetType().Name} has a virtual clock and no sockets: test protocols with MemoryTransport or ConnectedPair, " +
              "or use MemoryEventLoop, whose CreateConnectionAsync/CreateServerAsync connect protocols in memory.";

    private void RecordError(ExceptionContext context) => _errors.Add(context);

    private void ThrowIfNewErrors()
    {
        if (!FailOnUnhandledErrors || _errorsThrown >= _errors.Count)
        {
            return;
        }

        var fresh = _errors.GetRange(_errorsThrown, _errors.Count - _errorsThrown);
        _errorsThrown = _errors.Count;
        throw new UnhandledLoopErrorsException(fresh);
    }
}
