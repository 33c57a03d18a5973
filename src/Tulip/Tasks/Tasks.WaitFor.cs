using System;
using System.Threading;

namespace Tulip;

public static partial class Tasks
{
    /// <summary>
    /// Waits for <paramref name="future"/> for at most <paramref name="timeout"/> seconds and returns
    /// its result: asyncio's <c>wait_for</c> (3.12 and later, built on a timeout scope).
    /// </summary>
    /// <remarks>
    /// <para>
    /// When the timeout passes, the future is cancelled, waited for, and <see cref="TimeoutError"/>
    /// is thrown (if the future, a task, catches the cancellation and returns a result anyway, that
    /// result is returned). A timeout of zero or less cancels a future that is not yet done at once.
    /// A null timeout waits for as long as it takes.
    /// </para>
    /// <para>
    /// Cancelling the returned task (or <paramref name="cancellationToken"/>) cancels the future too,
    /// and <see cref="CancelledError"/> is thrown, never <see cref="TimeoutError"/>.
    /// </para>
    /// </remarks>
    /// <exception cref="TimeoutError">The timeout passed before the future was done.</exception>
    public static LoopTask<T> WaitFor<T>(Future<T> future, double? timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(future);
        CheckTimeout(timeout, nameof(timeout));
        CheckSameLoop(future, RunningLoop(), nameof(future));
        return WaitForCore(future, timeout, cancellationToken);
    }

    /// <summary>As <see cref="WaitFor{T}(Future{T}, double?, CancellationToken)"/>, for a future whose result is not needed.</summary>
    public static LoopTask WaitFor(Future future, double? timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(future);
        CheckTimeout(timeout, nameof(timeout));
        CheckSameLoop(future, RunningLoop(), nameof(future));
        return WaitForCore(future, timeout, cancellationToken);
    }

    private static async LoopTask<T> WaitForCore<T>(Future<T> future, double? timeout, CancellationToken cancellationToken)
    {
        using var registration = TaskCancellation.LinkToCurrentTask(cancellationToken);
        if (timeout is <= 0)
        {
            if (!future.Done)
            {
                await CancelAndWait(future);
            }

            try
            {
                return future.Result();
            }
            catch (CancelledError ex)
            {
                throw new TimeoutError("The operation timed out: the timeout was zero and the future was not done.", ex);
            }
        }

        var scope = Timeout(timeout);
        T result;
        try
        {
            // Awaiting the future itself: cancelling this task (the scope does at the deadline) cancels it.
            result = await future;
        }
        catch (Exception ex)
        {
            if (scope.Exit(ex) is { } timeoutError)
            {
                throw timeoutError;
            }

            throw;
        }

        scope.Exit(null);
        return result;
    }

    private static async LoopTask WaitForCore(Future future, double? timeout, CancellationToken cancellationToken)
    {
        using var registration = TaskCancellation.LinkToCurrentTask(cancellationToken);
        if (timeout is <= 0)
        {
            if (!future.Done)
            {
                await CancelAndWait(future);
            }

            try
            {
                future.ThrowIfNotSuccess();
                return;
            }
            catch (CancelledError ex)
            {
                throw new TimeoutError("The operation timed out: the timeout was zero and the future was not done.", ex);
            }
        }

        var scope = Timeout(timeout);
        try
        {
            await future;
        }
        catch (Exception ex)
        {
            if (scope.Exit(ex) is { } timeoutError)
            {
                throw timeoutError;
            }

            throw;
        }

        scope.Exit(null);
    }

    /// <summary>
    /// Cancels <paramref name="future"/> and waits until it is done, without handing a cancellation
    /// of the waiting task on to it (asyncio's <c>_cancel_and_wait</c>).
    /// </summary>
    private static async LoopTask CancelAndWait(Future future)
    {
        var waiter = new Future<VoidResult>(future.LoopCore);
        future.AddCallbackCore(s_releaseWaiter, waiter);
        try
        {
            future.Cancel();
            await waiter;
        }
        finally
        {
            future.RemoveCallbackCore(s_releaseWaiter, waiter);
        }
    }

    private static readonly Action<object?, object?> s_releaseWaiter = static (_, w) => ((Future<VoidResult>)w!).TrySetResult(default);
}
