using System;
using System.Threading;

namespace Tulip;

// The TimeSpan overloads beside the PEP's seconds (issue 15): what a .NET caller writes first.
// Timeout.InfiniteTimeSpan means "no deadline", as it does for .NET's own waits; any other
// negative span is a deadline already passed, as a negative number of seconds is.
public static partial class Tasks
{
    /// <summary>As <see cref="Timeout(double?)"/>, with a <see cref="TimeSpan"/>; <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> sets no deadline yet.</summary>
    /// <exception cref="InvalidOperationException">Not called inside a loop task.</exception>
    public static TimeoutScope Timeout(TimeSpan delay) => Timeout(SecondsOrNone(delay));

    /// <summary>As <see cref="WithTimeout{T}(double?, Func{TimeoutScope, LoopTask{T}}, CancellationToken)"/>, with a <see cref="TimeSpan"/> (<see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: none).</summary>
    /// <exception cref="TimeoutError">The deadline passed and ended the body.</exception>
    public static LoopTask<T> WithTimeout<T>(TimeSpan delay, Func<TimeoutScope, LoopTask<T>> body, CancellationToken cancellationToken = default) =>
        WithTimeout(SecondsOrNone(delay), body, cancellationToken);

    /// <summary>As <see cref="WithTimeout{T}(double?, Func{LoopTask{T}}, CancellationToken)"/>, with a <see cref="TimeSpan"/> (<see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: none).</summary>
    /// <exception cref="TimeoutError">The deadline passed and ended the body.</exception>
    public static LoopTask<T> WithTimeout<T>(TimeSpan delay, Func<LoopTask<T>> body, CancellationToken cancellationToken = default) =>
        WithTimeout(SecondsOrNone(delay), body, cancellationToken);

    /// <summary>As <see cref="WithTimeout(double?, Func{TimeoutScope, LoopTask}, CancellationToken)"/>, with a <see cref="TimeSpan"/> (<see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: none).</summary>
    /// <exception cref="TimeoutError">The deadline passed and ended the body.</exception>
    public static LoopTask WithTimeout(TimeSpan delay, Func<TimeoutScope, LoopTask> body, CancellationToken cancellationToken = default) =>
        WithTimeout(SecondsOrNone(delay), body, cancellationToken);

    /// <summary>As <see cref="WithTimeout(double?, Func{LoopTask}, CancellationToken)"/>, with a <see cref="TimeSpan"/> (<see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: none).</summary>
    /// <exception cref="TimeoutError">The deadline passed and ended the body.</exception>
    public static LoopTask WithTimeout(TimeSpan delay, Func<LoopTask> body, CancellationToken cancellationToken = default) =>
        WithTimeout(SecondsOrNone(delay), body, cancellationToken);

    /// <summary>As <see cref="WaitFor{T}(Future{T}, double?, CancellationToken)"/>, with a <see cref="TimeSpan"/> (<see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: wait as long as it takes).</summary>
    /// <exception cref="TimeoutError">The timeout passed before the future was done.</exception>
    public static LoopTask<T> WaitFor<T>(Future<T> future, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        WaitFor(future, SecondsOrNone(timeout), cancellationToken);

    /// <summary>As <see cref="WaitFor(Future, double?, CancellationToken)"/>, with a <see cref="TimeSpan"/> (<see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: wait as long as it takes).</summary>
    /// <exception cref="TimeoutError">The timeout passed before the future was done.</exception>
    public static LoopTask WaitFor(Future future, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        WaitFor(future, SecondsOrNone(timeout), cancellationToken);

    /// <summary>As <see cref="Sleep{T}(double, T, CancellationToken)"/>, with a <see cref="TimeSpan"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is <see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: a sleep with a result must end.</exception>
    public static LoopTask<T> Sleep<T>(TimeSpan delay, T result, CancellationToken cancellationToken = default) =>
        Sleep(FiniteSeconds(delay, nameof(delay)), result, cancellationToken);

    /// <summary>Seconds for a timeout: null (none) for <see cref="System.Threading.Timeout.InfiniteTimeSpan"/>.</summary>
    internal static double? SecondsOrNone(TimeSpan span) => span == System.Threading.Timeout.InfiniteTimeSpan ? null : span.TotalSeconds;

    /// <summary>Seconds for a delay that must end: <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> is refused.</summary>
    internal static double FiniteSeconds(TimeSpan span, string paramName) => span == System.Threading.Timeout.InfiniteTimeSpan
        ? throw new ArgumentOutOfRangeException(paramName, span,
            "Timeout.InfiniteTimeSpan is not a delay: a timer or a sleep must end. To wait without end, await a future that nothing completes, or give no timeout.")
        : span.TotalSeconds;
}
