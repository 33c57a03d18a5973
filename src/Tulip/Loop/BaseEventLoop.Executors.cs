using System;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip;

public abstract partial class BaseEventLoop
{
    /// <summary>How executor work calls the function it was given, without a closure.</summary>
    private static class ExecutorCalls<T>
    {
        public static readonly Func<object, CancellationToken, T> CallFunction = static (f, _) => ((Func<T>)f)();

        public static readonly Func<object, CancellationToken, T> CallWithToken = static (f, token) => ((Func<CancellationToken, T>)f)(token);
    }

    /// <inheritdoc/>
    public LoopTask<T> RunInExecutor<T>(TaskScheduler? executor, Func<T> function, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(function);
        return StartExecutorWork(executor, ExecutorCalls<T>.CallFunction, function, cancellationToken);
    }

    /// <inheritdoc/>
    public LoopTask RunInExecutor(TaskScheduler? executor, Action action, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(action);
        return RunInExecutorVoid(executor, action, cancellationToken);
    }

    /// <inheritdoc/>
    public LoopTask<T> RunInExecutor<T>(TaskScheduler? executor, Func<CancellationToken, T> function, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(function);
        return StartExecutorWork(executor, ExecutorCalls<T>.CallWithToken, function, cancellationToken);
    }

    private async LoopTask RunInExecutorVoid(TaskScheduler? executor, Action action, CancellationToken cancellationToken) =>
        await StartExecutorWork(executor, static (a, _) => { ((Action)a)(); return default(VoidResult); }, action, cancellationToken);

    /// <summary>
    /// Starts <paramref name="call"/>(<paramref name="function"/>, token) on <paramref name="executor"/>
    /// (null: the default executor) and returns the loop task that follows it. The work captures the
    /// caller's <see cref="ExecutionContext"/>, as every .NET task does, so <c>AsyncLocal</c> values
    /// flow into it (asyncio's <c>to_thread</c> copies the contextvars the same way).
    /// </summary>
    private LoopTask<T> StartExecutorWork<T>(TaskScheduler? executor, Func<object, CancellationToken, T> call, object function,
        CancellationToken cancellationToken)
    {
        CheckCallable();
        bool isDefault = executor is null;
        if (isDefault && _executorShutDown)
        {
            throw new InvalidOperationException("The default executor was shut down (ShutdownDefaultExecutorAsync or Close); no more work can be submitted.");
        }

        var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var token = cts.Token;
        var work = Task.Factory.StartNew(static s =>
        {
            var (call, function, token) = ((Func<object, CancellationToken, T>, object, CancellationToken))s!;
            return call(function, token);
        }, (call, function, token), token, TaskCreationOptions.DenyChildAttach, executor ?? _executor);
        if (isDefault)
        {
            // Only the default executor's work is waited for by ShutdownDefaultExecutorAsync (asyncio's rule).
            TrackExecutorWork(work);
        }

        return new DotnetTaskFollower<T>(this, work, cts);
    }

    /// <summary>
    /// Disposes a result that executor work returned after its loop task was cancelled: nobody else
    /// can reach it. Errors from <c>Dispose</c> go to the exception handler.
    /// </summary>
    internal void DisposeOrphanedResult(object? result, Future task)
    {
        try
        {
            switch (result)
            {
                case IDisposable disposable:
                    disposable.Dispose();
                    break;
                case IAsyncDisposable asyncDisposable:
                    var pending = asyncDisposable.DisposeAsync();
                    if (!pending.IsCompletedSuccessfully)
                    {
                        pending.AsTask().ContinueWith(static (t, s) =>
                        {
                            var (loop, task) = ((BaseEventLoop, Future))s!;
                            loop.ReportFromAnyThread(new ExceptionContext("DisposeAsync failed for the result of cancelled executor work")
                            {
                                Exception = t.Exception!.InnerException,
                                Future = task,
                            });
                        }, (this, task), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                    }

                    break;
            }
        }
        catch (Exception ex)
        {
            CallExceptionHandler(new ExceptionContext("Dispose failed for the result of cancelled executor work") { Exception = ex, Future = task });
        }
    }
}
