using System;
using System.Diagnostics.CodeAnalysis;
using System.Threading.Tasks;

namespace Tulip;

/// <summary>A <see cref="Future"/> that carries a result of type <typeparamref name="T"/>.</summary>
/// <typeparam name="T">The result type.</typeparam>
public class Future<T> : Future
{
    private T _result = default!;

    /// <summary>Creates a pending future on <paramref name="loop"/>; usually call <see cref="IEventLoop.CreateFuture{T}"/>.</summary>
    [SuppressMessage("ApiDesign", "RS0022:Constructor make noninheritable base class inheritable",
        Justification = "Future<T> is open to subclassing, as asyncio's Future is; Future has no protected members (only private protected ones), so nothing of it is exposed.")]
    public Future(IEventLoop loop) : this(BaseEventLoop.FromInterface(loop))
    {
    }

    private protected Future(BaseEventLoop loop) : base(loop)
    {
    }

    /// <summary>The result.</summary>
    /// <exception cref="CancelledError">The future was cancelled.</exception>
    /// <exception cref="InvalidStateError">The future is not done yet.</exception>
    /// <remarks>If the future finished with an exception, that exception is thrown.</remarks>
    public T Result()
    {
        ThrowIfNotSuccess();
        return _result;
    }

    /// <inheritdoc/>
    public override object? ResultObject() => Result();

    /// <summary>Finishes the future with a result and schedules its callbacks.</summary>
    /// <exception cref="InvalidStateError">The future is already done.</exception>
    public void SetResult(T result)
    {
        if (!TrySetResult(result))
        {
            throw new InvalidStateError($"Cannot set the result of a future that is already {DescribeState()}.");
        }
    }

    /// <summary>Like <see cref="SetResult"/>, but returns false instead of throwing when the future is done.</summary>
    public bool TrySetResult(T result)
    {
        if (Done)
        {
            return false;
        }

        _result = result;
        return TryFinish();
    }

    /// <summary>Lets <c>await future</c> work on the loop thread and give the result.</summary>
    public new FutureAwaiter<T> GetAwaiter()
    {
        LoopCore.CheckAwaitThread(this);
        return new FutureAwaiter<T>(this);
    }

    /// <summary>A .NET task that completes as this future does; safe to use from any thread.</summary>
    public new Task<T> AsTask()
    {
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        AddCallbackCore(static (f, s) =>
        {
            var future = (Future<T>)f!;
            var source = (TaskCompletionSource<T>)s!;
            if (future.Cancelled)
            {
                source.TrySetCanceled();
            }
            else if (future.Exception() is { } ex)
            {
                source.TrySetException(ex);
            }
            else
            {
                source.TrySetResult(future._result);
            }
        }, tcs);
        return tcs.Task;
    }

    private protected override Task AsTaskCore() => AsTask();

    internal T ResultUnchecked => _result;

    /// <summary>
    /// Replaces the result of a future that finished with one, for <see cref="ReusableFuture{T}"/>
    /// owners whose result is only known when its awaiter takes it (a stream read copies its bytes then).
    /// </summary>
    private protected void ReplaceResult(T result) => _result = result;
}
