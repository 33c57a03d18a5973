using System;
using System.Threading;

namespace Tulip;

public static partial class Tasks
{
    /// <summary>
    /// Puts a deadline <paramref name="seconds"/> from now on the current task (null: none yet; see
    /// <see cref="TimeoutScope.Reschedule"/>): asyncio's <c>timeout()</c>. Use in a <c>using</c>
    /// block, or prefer <see cref="WithTimeout{T}(double?, Func{TimeoutScope, LoopTask{T}}, CancellationToken)"/>,
    /// which turns the expiry into <see cref="TimeoutError"/>; see <see cref="TimeoutScope"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">Not called inside a loop task.</exception>
    public static TimeoutScope Timeout(double? seconds)
    {
        CheckTimeout(seconds, nameof(seconds));
        return TimeoutScope.Enter(seconds is double s ? RunningLoop().Time() + s : null);
    }

    /// <summary>
    /// Puts a deadline at <paramref name="when"/> on the loop's clock (<see cref="IEventLoop.Time"/>)
    /// on the current task: asyncio's <c>timeout_at()</c>. See <see cref="Timeout(double?)"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">Not called inside a loop task.</exception>
    public static TimeoutScope TimeoutAt(double? when) => TimeoutScope.Enter(when);

    /// <summary>
    /// Runs <paramref name="body"/> with a deadline <paramref name="seconds"/> from now (null: none
    /// unless the body sets one with <see cref="TimeoutScope.Reschedule"/>), and returns its result:
    /// <c>async with asyncio.timeout(seconds): return await body()</c>.
    /// </summary>
    /// <remarks>
    /// At the deadline the body is cancelled at its await. If that cancellation is what ends it,
    /// <see cref="TimeoutError"/> is thrown (its inner exception is the <see cref="CancelledError"/>).
    /// If this task is also cancelled from elsewhere (including <paramref name="cancellationToken"/>),
    /// <see cref="CancelledError"/> goes on instead. A body that catches the cancellation and returns
    /// normally returns its result. The body runs as its own task, awaited by this one.
    /// </remarks>
    /// <exception cref="TimeoutError">The deadline passed and ended the body.</exception>
    public static LoopTask<T> WithTimeout<T>(double? seconds, Func<TimeoutScope, LoopTask<T>> body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        CheckTimeout(seconds, nameof(seconds));
        return WithTimeoutCore(seconds, body, cancellationToken);
    }

    /// <summary>As <see cref="WithTimeout{T}(double?, Func{TimeoutScope, LoopTask{T}}, CancellationToken)"/>, for a body that does not need the scope.</summary>
    public static LoopTask<T> WithTimeout<T>(double? seconds, Func<LoopTask<T>> body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return WithTimeout(seconds, _ => body(), cancellationToken);
    }

    /// <summary>As <see cref="WithTimeout{T}(double?, Func{TimeoutScope, LoopTask{T}}, CancellationToken)"/>, for a body without a result.</summary>
    public static LoopTask WithTimeout(double? seconds, Func<TimeoutScope, LoopTask> body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        CheckTimeout(seconds, nameof(seconds));
        return WithTimeoutCore(seconds, body, cancellationToken);
    }

    /// <summary>As <see cref="WithTimeout(double?, Func{TimeoutScope, LoopTask}, CancellationToken)"/>, for a body that does not need the scope.</summary>
    public static LoopTask WithTimeout(double? seconds, Func<LoopTask> body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return WithTimeout(seconds, _ => body(), cancellationToken);
    }

    private static async LoopTask<T> WithTimeoutCore<T>(double? seconds, Func<TimeoutScope, LoopTask<T>> body, CancellationToken cancellationToken)
    {
        using var registration = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var scope = Timeout(seconds);
        T result;
        try
        {
            result = await body(scope);
        }
        catch (Exception ex)
        {
            if (scope.Exit(ex) is { } timeout)
            {
                throw timeout;
            }

            throw;
        }

        scope.Exit(null);
        return result;
    }

    private static async LoopTask WithTimeoutCore(double? seconds, Func<TimeoutScope, LoopTask> body, CancellationToken cancellationToken)
    {
        using var registration = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var scope = Timeout(seconds);
        try
        {
            await body(scope);
        }
        catch (Exception ex)
        {
            if (scope.Exit(ex) is { } timeout)
            {
                throw timeout;
            }

            throw;
        }

        scope.Exit(null);
    }
}
