using System;
using System.Runtime.CompilerServices;

namespace Tulip;

/// <summary>Implemented by the awaiters of loop futures, so a loop task can wait on the future itself.</summary>
internal interface IFutureAwaiter
{
    Future Future { get; }
}

/// <summary>Awaits a <see cref="Future"/> on its loop thread. Not for direct use: <c>await future</c>.</summary>
public readonly struct FutureAwaiter : ICriticalNotifyCompletion, IFutureAwaiter
{
    private static readonly Action<object?, object?> s_runContinuation = static (_, c) => ((Action)c!)();

    private readonly Future _future;

    internal FutureAwaiter(Future future) => _future = future;

    Future IFutureAwaiter.Future => _future;

    /// <summary>As <see cref="IFutureAwaiter.Future"/>, without the interface (see <c>LoopTask.FutureOf</c>).</summary>
    internal Future FutureCore => _future;

    /// <summary>True if the future is done.</summary>
    public bool IsCompleted => _future.Done;

    /// <summary>Throws the future's exception, or <see cref="CancelledError"/> if it was cancelled.</summary>
    public void GetResult() => _future.ThrowIfNotSuccess();

    /// <summary>Schedules <paramref name="continuation"/> on the loop when the future is done.</summary>
    public void OnCompleted(Action continuation) => UnsafeOnCompleted(continuation);

    /// <summary>Schedules <paramref name="continuation"/> on the loop when the future is done.</summary>
    public void UnsafeOnCompleted(Action continuation)
    {
        _future.LoopCore.CheckAwaitThread(_future);
        _future.AddCallbackCore(s_runContinuation, continuation);
    }

    internal static Action<object?, object?> RunContinuation => s_runContinuation;
}

/// <summary>Awaits a <see cref="Future{T}"/> on its loop thread. Not for direct use: <c>await future</c>.</summary>
/// <typeparam name="T">The result type.</typeparam>
public readonly struct FutureAwaiter<T> : ICriticalNotifyCompletion, IFutureAwaiter
{
    private readonly Future<T> _future;

    internal FutureAwaiter(Future<T> future) => _future = future;

    Future IFutureAwaiter.Future => _future;

    /// <summary>As <see cref="IFutureAwaiter.Future"/>, without the interface (see <c>LoopTask.FutureOf</c>).</summary>
    internal Future FutureCore => _future;

    /// <summary>True if the future is done.</summary>
    public bool IsCompleted => _future.Done;

    /// <summary>The result; throws the future's exception, or <see cref="CancelledError"/> if it was cancelled.</summary>
    public T GetResult()
    {
        _future.ThrowIfNotSuccess();
        return _future.ResultUnchecked;
    }

    /// <summary>Schedules <paramref name="continuation"/> on the loop when the future is done.</summary>
    public void OnCompleted(Action continuation) => UnsafeOnCompleted(continuation);

    /// <summary>Schedules <paramref name="continuation"/> on the loop when the future is done.</summary>
    public void UnsafeOnCompleted(Action continuation)
    {
        _future.LoopCore.CheckAwaitThread(_future);
        _future.AddCallbackCore(FutureAwaiter.RunContinuation, continuation);
    }
}
