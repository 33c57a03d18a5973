using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip;

/// <summary>
/// The PEP's <c>Future</c>: a result that is not there yet. Pending until one of
/// <see cref="Future{T}.SetResult"/>, <see cref="SetException"/> or <see cref="Cancel"/>; done after.
/// Done callbacks are always scheduled on the loop with <c>CallSoon</c>, never run inline, in the
/// order they were added. Awaitable on the loop thread.
/// </summary>
/// <remarks>
/// A future belongs to its loop's thread: every member is for the loop thread. From another thread,
/// use <see cref="AsTask"/> to get a .NET <see cref="Task"/>, or <see cref="IEventLoop.CallSoonThreadSafe(Action)"/>
/// to reach the loop. This base class is untyped; <see cref="Future{T}"/> carries the result.
/// </remarks>
public abstract class Future
{
    private static readonly Action<object?, object?> s_invokeUserCallback =
        static (future, callback) => ((Action<Future>)callback!)((Future)future!);

    private FutureState _state;
    private Exception? _exception;
    private string? _cancelMessage;
    private UnobservedExceptionReporter? _unobserved;

    // The first done callback is kept inline: most futures have exactly one (the task awaiting
    // them), so they need no list. Guarded by: the loop thread.
    private Action<object?, object?>? _callback0;
    private object? _callbackState0;
    private List<(Action<object?, object?> Fn, object? State)>? _moreCallbacks;

    private protected Future(BaseEventLoop loop)
    {
        LoopCore = loop;
        if (loop.Debug)
        {
            SourceTraceback = new StackTrace(2, fNeedFileInfo: true);
        }
    }

    internal BaseEventLoop LoopCore { get; }

    /// <summary>The loop this future belongs to.</summary>
    public IEventLoop Loop => LoopCore;

    /// <summary>True once the future has a result, an exception, or was cancelled.</summary>
    public bool Done => _state != FutureState.Pending;

    /// <summary>True if the future was cancelled.</summary>
    public bool Cancelled => _state == FutureState.Cancelled;

    /// <summary>True if it finished with a result (not cancelled, no exception); reading it does not mark an exception observed.</summary>
    internal bool Succeeded => _state == FutureState.Finished && _exception is null;

    /// <summary>In debug mode, where the future was created; otherwise null.</summary>
    public StackTrace? SourceTraceback { get; }

    private protected FutureState State => _state;

    /// <summary>
    /// Cancels the future: if it is pending, it becomes cancelled and its callbacks are scheduled.
    /// </summary>
    /// <param name="message">Carried by the <see cref="CancelledError"/> that readers of the result see.</param>
    /// <returns>False if the future was already done, otherwise true.</returns>
    public virtual bool Cancel(string? message = null)
    {
        if (_state != FutureState.Pending)
        {
            return false;
        }

        _state = FutureState.Cancelled;
        _cancelMessage = message;
        ScheduleCallbacks();
        return true;
    }

    /// <summary>
    /// The exception the future finished with, or null if it finished with a result.
    /// </summary>
    /// <exception cref="CancelledError">The future was cancelled.</exception>
    /// <exception cref="InvalidStateError">The future is not done yet.</exception>
    public Exception? Exception()
    {
        switch (_state)
        {
            case FutureState.Cancelled:
                throw MakeCancelledError();
            case FutureState.Pending:
                throw new InvalidStateError("Exception is not set: the future is not done yet. Await it, or add a done callback.");
            default:
                MarkExceptionObserved();
                return _exception;
        }
    }

    /// <summary>Finishes the future with an exception and schedules its callbacks.</summary>
    /// <exception cref="InvalidStateError">The future is already done.</exception>
    public void SetException(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (!TrySetException(exception))
        {
            throw new InvalidStateError($"Cannot set an exception on a future that is already {DescribeState()}.");
        }
    }

    /// <summary>Like <see cref="SetException"/>, but returns false instead of throwing when the future is done.</summary>
    public bool TrySetException(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (_state != FutureState.Pending)
        {
            return false;
        }

        if (exception is OperationCanceledException && this is not ILoopTask)
        {
            // asyncio refuses CancelledError in set_exception: use Cancel to cancel a future.
            throw new ArgumentException("A cancellation exception cannot be set as a future's exception; call Cancel() instead.", nameof(exception));
        }

        _exception = exception;
        _state = FutureState.Finished;
        _unobserved = new UnobservedExceptionReporter(this, exception);
        ScheduleCallbacks();
        return true;
    }

    /// <summary>
    /// Adds a callback run (scheduled with <c>CallSoon</c>) when the future is done, with the future
    /// as its argument. If the future is already done, the callback is scheduled at once.
    /// </summary>
    public void AddDoneCallback(Action<Future> callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        AddCallbackCore(s_invokeUserCallback, callback);
    }

    /// <summary>Removes every registration of <paramref name="callback"/>; returns how many were removed.</summary>
    public int RemoveDoneCallback(Action<Future> callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        int removed = 0;
        if (ReferenceEquals(_callback0, s_invokeUserCallback) && Equals(_callbackState0, callback))
        {
            _callback0 = null;
            _callbackState0 = null;
            removed++;
        }

        if (_moreCallbacks is not null)
        {
            removed += _moreCallbacks.RemoveAll(c => ReferenceEquals(c.Fn, s_invokeUserCallback) && Equals(c.State, callback));
        }

        return removed;
    }

    /// <summary>The result as an object (null for a future without one).</summary>
    /// <exception cref="CancelledError">The future was cancelled.</exception>
    /// <exception cref="InvalidStateError">The future is not done yet.</exception>
    public abstract object? ResultObject();

    /// <summary>
    /// A .NET task that completes as this future does; safe to use from any thread. The conversion
    /// runs on the loop thread, so call it there.
    /// </summary>
    public Task AsTask() => AsTaskCore();

    private protected abstract Task AsTaskCore();

    /// <summary>Lets <c>await future</c> work on the loop thread; the result is discarded.</summary>
    public FutureAwaiter GetAwaiter()
    {
        LoopCore.CheckAwaitThread(this);
        return new FutureAwaiter(this);
    }

    /// <summary>Describes the future and its state.</summary>
    public override string ToString() => $"<{GetType().Name.Split('`')[0]} {DescribeState()}>";

    internal string DescribeState() => _state switch
    {
        FutureState.Pending => "pending",
        FutureState.Cancelled => "cancelled",
        _ => _exception is null ? "finished" : $"finished exception={_exception.GetType().Name}",
    };

    /// <summary>Registers an internal callback without allocating a handle or a closure.</summary>
    internal void AddCallbackCore(Action<object?, object?> fn, object? state)
    {
        if (_state != FutureState.Pending)
        {
            LoopCore.ScheduleInternal(fn, this, state);
            return;
        }

        if (_callback0 is null && _moreCallbacks is null)
        {
            _callback0 = fn;
            _callbackState0 = state;
        }
        else
        {
            (_moreCallbacks ??= new List<(Action<object?, object?>, object?)>(2)).Add((fn, state));
        }
    }

    /// <summary>Removes an internal callback registered with <see cref="AddCallbackCore"/>.</summary>
    internal void RemoveCallbackCore(Action<object?, object?> fn, object? state)
    {
        if (ReferenceEquals(_callback0, fn) && ReferenceEquals(_callbackState0, state))
        {
            _callback0 = null;
            _callbackState0 = null;
            return;
        }

        _moreCallbacks?.RemoveAll(c => ReferenceEquals(c.Fn, fn) && ReferenceEquals(c.State, state));
    }

    private protected bool TryFinish()
    {
        if (_state != FutureState.Pending)
        {
            return false;
        }

        _state = FutureState.Finished;
        ScheduleCallbacks();
        return true;
    }

    /// <summary>
    /// Makes a done future pending again, for <see cref="ReusableFuture{T}"/> only: its owner calls
    /// it when the one awaiter has taken the result, so no callback is still registered or queued.
    /// </summary>
    private protected void ResetCore()
    {
        Debug.Assert(_state != FutureState.Pending, "only a done future is reset");
        Debug.Assert(_callback0 is null && _moreCallbacks is null, "a reset future has no callbacks left");
        MarkExceptionObserved();
        _state = FutureState.Pending;
        _exception = null;
        _cancelMessage = null;
    }

    /// <summary>Marks the future cancelled from inside (a task whose body ended in cancellation).</summary>
    private protected void CancelCore(string? message, Exception? cause)
    {
        _state = FutureState.Cancelled;
        _cancelMessage = message;
        _exception = cause;
        ScheduleCallbacks();
    }

    /// <summary>Throws what awaiting the future must throw, if anything: its exception, or CancelledError.</summary>
    internal void ThrowIfNotSuccess()
    {
        switch (_state)
        {
            case FutureState.Finished when _exception is not null:
                MarkExceptionObserved();
                ExceptionDispatchInfo.Throw(_exception);
                break;
            case FutureState.Cancelled:
                throw MakeCancelledError();
            case FutureState.Pending:
                throw new InvalidStateError("Result is not ready: the future is not done yet. Await it, or add a done callback.");
        }
    }

    private protected CancelledError MakeCancelledError() =>
        _exception is CancelledError ce && _cancelMessage == ce.Message ? ce : new CancelledError(_cancelMessage, _exception);

    internal void MarkExceptionObserved()
    {
        if (_unobserved is not null)
        {
            _unobserved.Disarm();
            _unobserved = null;
        }
    }

    private void ScheduleCallbacks()
    {
        var loop = LoopCore;
        if (_callback0 is not null)
        {
            loop.ScheduleInternal(_callback0, this, _callbackState0);
            _callback0 = null;
            _callbackState0 = null;
        }

        if (_moreCallbacks is not null)
        {
            foreach (var (fn, state) in _moreCallbacks)
            {
                loop.ScheduleInternal(fn, this, state);
            }

            _moreCallbacks = null;
        }
    }

    private protected enum FutureState : byte
    {
        Pending,
        Finished,
        Cancelled,
    }

    /// <summary>
    /// Reports an exception nobody retrieved when its future is collected: asyncio's
    /// "exception was never retrieved". A separate small object, so that only futures that
    /// failed pay for a finalizer.
    /// </summary>
    private sealed class UnobservedExceptionReporter
    {
        private readonly Future _future;
        private readonly Exception _exception;

        public UnobservedExceptionReporter(Future future, Exception exception)
        {
            _future = future;
            _exception = exception;
        }

#pragma warning disable CA1816 // not a Dispose: the exception was observed, so there is nothing to report
        public void Disarm() => GC.SuppressFinalize(this);
#pragma warning restore CA1816

        ~UnobservedExceptionReporter()
        {
            string what = _future is ILoopTask ? "Task" : "Future";
            var context = new ExceptionContext($"{what} exception was never retrieved")
            {
                Exception = _exception,
                Future = _future,
            };
            _future.LoopCore.ReportFromAnyThread(context);
        }
    }
}
