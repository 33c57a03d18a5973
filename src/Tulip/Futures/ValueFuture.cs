using System;
using System.Runtime.CompilerServices;
using System.Threading.Tasks;

namespace Tulip;

/// <summary>
/// A result that is either already there or still to come in a <see cref="Future{T}"/>: Tulip's
/// <see cref="ValueTask{TResult}"/>. Hot paths (a stream read that finds its bytes buffered, a drain
/// that need not wait) return one so they allocate nothing, and when they must wait, a loop task
/// awaiting it waits on the future itself, so cancelling the task delivers <see cref="CancelledError"/>
/// at this await as for any future.
/// </summary>
/// <remarks>
/// As with a <see cref="ValueTask{TResult}"/>, await a value future once, right away. The future
/// behind it may be one its producer reuses for the next call once this await has taken the result:
/// to keep it, to await it twice or to give it to <see cref="Tasks"/> combinators, call
/// <see cref="AsFuture"/> first, which makes it a future of its own that is never reused.
/// </remarks>
/// <typeparam name="T">The result type.</typeparam>
public readonly struct ValueFuture<T>
{
    private readonly Future<T>? _future;
    private readonly T _result;

    /// <summary>A value future that is done with <paramref name="result"/>.</summary>
    public ValueFuture(T result)
    {
        _future = null;
        _result = result;
    }

    /// <summary>A value future that completes as <paramref name="future"/> does.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="future"/> is null.</exception>
    public ValueFuture(Future<T> future)
    {
        ArgumentNullException.ThrowIfNull(future);
        _future = future;
        _result = default!;
    }

    /// <summary>True if the result (or the failure) is there.</summary>
    public bool IsCompleted => _future is null || _future.Done;

    /// <summary>True if it finished with a result (no exception, not cancelled).</summary>
    public bool IsCompletedSuccessfully => _future is null || _future.Succeeded;

    /// <summary>The result.</summary>
    /// <exception cref="InvalidStateError">It is not done yet: await it.</exception>
    /// <exception cref="CancelledError">The future behind it was cancelled.</exception>
    /// <remarks>If it finished with an exception, that exception is thrown.</remarks>
    public T Result()
    {
        if (_future is null)
        {
            return _result;
        }

        return _future is ReusableFuture<T> reusable ? reusable.Take() : _future.Result();
    }

    /// <summary>
    /// The result as a future of its own: a new done future when the result is already there, else
    /// the future behind it, which its producer then never reuses.
    /// </summary>
    /// <exception cref="InvalidOperationException">A done value future was made without a future and
    /// there is no running loop to make one on.</exception>
    public Future<T> AsFuture()
    {
        if (_future is null)
        {
            var loop = BaseEventLoop.RunningLoopOrNull
                ?? throw new InvalidOperationException("AsFuture() on a completed ValueFuture needs a running loop to make the future on; call it from the loop thread.");
            var done = new Future<T>(loop);
            done.SetResult(_result);
            return done;
        }

        if (_future is ReusableFuture<T> reusable)
        {
            reusable.MarkEscaped();
        }

        return _future;
    }

    /// <summary>A .NET task that completes as this does; safe to use from any thread.</summary>
    public Task<T> AsTask()
    {
        if (_future is null)
        {
            return Task.FromResult(_result);
        }

        if (_future is ReusableFuture<T> reusable)
        {
            reusable.MarkEscaped();
        }

        return _future.AsTask();
    }

    /// <summary>Lets <c>await</c> work on the loop thread.</summary>
    public ValueFutureAwaiter<T> GetAwaiter()
    {
        _future?.LoopCore.CheckAwaitThread(_future);
        return new ValueFutureAwaiter<T>(this);
    }

    internal Future<T>? FutureOrNull => _future;

    internal T ResultUnchecked => _result;

    /// <summary>Describes the state.</summary>
    public override string ToString() => _future is null ? $"<ValueFuture finished result={_result}>" : _future.ToString();
}

/// <summary>Awaits a <see cref="ValueFuture{T}"/>. Not for direct use: <c>await valueFuture</c>.</summary>
/// <typeparam name="T">The result type.</typeparam>
public readonly struct ValueFutureAwaiter<T> : ICriticalNotifyCompletion, IFutureAwaiter
{
    private readonly ValueFuture<T> _value;

    internal ValueFutureAwaiter(ValueFuture<T> value) => _value = value;

    // Only asked for when not completed, so there is a future.
    Future IFutureAwaiter.Future => _value.FutureOrNull!;

    /// <summary>As <see cref="IFutureAwaiter.Future"/>, without the interface (see <c>LoopTask.FutureOf</c>).</summary>
    internal Future FutureCore => _value.FutureOrNull!;

    /// <summary>True if the result is there.</summary>
    public bool IsCompleted => _value.IsCompleted;

    /// <summary>The result; throws the future's exception, or <see cref="CancelledError"/> if it was cancelled.</summary>
    public T GetResult() => _value.Result();

    /// <summary>Schedules <paramref name="continuation"/> on the loop when the result is there.</summary>
    public void OnCompleted(Action continuation) => UnsafeOnCompleted(continuation);

    /// <summary>Schedules <paramref name="continuation"/> on the loop when the result is there.</summary>
    public void UnsafeOnCompleted(Action continuation)
    {
        var future = _value.FutureOrNull;
        if (future is null)
        {
            continuation();
            return;
        }

        future.LoopCore.CheckAwaitThread(future);
        future.AddCallbackCore(FutureAwaiter.RunContinuation, continuation);
    }
}
