using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading;

namespace Tulip;

/// <summary>
/// A coroutine running on an event loop: the PEP's <c>Task</c>, a <see cref="Future{T}"/> whose
/// result is what the <c>async</c> method returns. Declare a method <c>async LoopTask&lt;T&gt;</c>
/// and calling it on the loop thread starts a task.
/// </summary>
/// <remarks>
/// <para>
/// Calling an <c>async LoopTask</c> method starts it at once, on the caller's stack, up to its first
/// <c>await</c> of something not yet done (asyncio 3.12's eager tasks; .NET's usual start).
/// <see cref="IEventLoop.CreateTask{T}(Func{LoopTask{T}}, string?, bool)"/> called from outside the running loop
/// defers the start to the loop, as asyncio's <c>create_task</c> does.
/// </para>
/// <para>
/// <see cref="Cancel"/> delivers <see cref="CancelledError"/> at the <c>await</c> where the task is
/// waiting on a loop future; the task may catch it and go on (<see cref="Uncancel"/>). While it
/// awaits a .NET <see cref="System.Threading.Tasks.Task"/>, which the loop cannot interrupt,
/// <see cref="CancellationToken"/> is cancelled so that .NET APIs given that token stop, and the
/// cancellation is delivered at the next loop await. Awaiting a .NET task resumes on the loop thread.
/// </para>
/// <para>
/// Results are never thrown away (this differs from asyncio on purpose, so that a task returning a
/// resource cannot leak it):
/// </para>
/// <list type="bullet">
/// <item><description>
/// A cancellation requested after the awaited thing completed (a loop future done but the task not
/// yet resumed, a .NET task that ran to the end) does not replace that result: the <c>await</c>
/// returns it, and <see cref="CancelledError"/> is thrown at the next <c>await</c> that suspends,
/// so <c>using</c> and <c>finally</c> blocks holding the result run.
/// </description></item>
/// <item><description>
/// A body that returns while a cancellation is still pending (it reached no such await) completes
/// with its result, not cancelled: whoever awaits the task receives what it returned.
/// <see cref="Cancelling"/> still counts the request.
/// </description></item>
/// <item><description>
/// When the task awaits another task that it asked to cancel (cancelling a task cancels the task it
/// waits on) and that task completes with a result anyway, the await returns the result and the
/// cancellation is delivered at the next await that suspends, as above: the request is not lost.
/// </description></item>
/// </list>
/// <para>Members are for the loop thread, like every future's.</para>
/// </remarks>
/// <typeparam name="T">The result type.</typeparam>
// CA1001: the token source is disposed when the task finishes (a cancelled one is kept, so the
// token handed out stays valid); a task is not IDisposable, as asyncio's tasks are not closable.
#pragma warning disable CA1001
[AsyncMethodBuilder(typeof(LoopTaskMethodBuilder<>))]
public abstract class LoopTask<T> : Future<T>, ILoopTask, ITaskStep
{
    private static int s_nextId;

    private readonly int _id;
    private string? _name;
    private Future? _futWaiter;
    private bool _mustCancel;
    // Set when Cancel was handed on to _futWaiter (it accepted): if the waiter then completes without
    // being cancelled (a task that returned a result anyway), the request is re-armed in Step.
    private bool _cancelHandedOn;
    // A lazily started task (CreateTask with eagerStart: false) whose first step has not run yet.
    private bool _notStarted;
    private string? _cancelMessage;
    private int _numCancelsRequested;
    private CancellationTokenSource? _cts;
    private ExecutionContext? _executionContext;
    private Action? _foreignContinuation;

    private protected LoopTask(BaseEventLoop loop, string? name = null, bool register = true) : base(loop)
    {
        _id = Interlocked.Increment(ref s_nextId);
        _name = name;
        if (register)
        {
            loop.RegisterTask(this);
        }
    }

    /// <summary>The task's name; defaults to <c>Task-N</c>.</summary>
    public string Name
    {
        get => _name ?? $"Task-{_id}";
        set => _name = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>
    /// Cancelled when <see cref="Cancel"/> is called: give it to .NET APIs awaited inside the task
    /// so that they stop too. A new token is handed out after <see cref="Uncancel"/> brings the
    /// count of cancellation requests back to zero.
    /// </summary>
    public CancellationToken CancellationToken
    {
        get
        {
            if (_cts is null)
            {
                _cts = new CancellationTokenSource();
                if (_numCancelsRequested > 0 || Done)
                {
                    _cts.Cancel();
                }
            }

            return _cts.Token;
        }
    }

    /// <summary>
    /// Requests cancellation: <see cref="CancelledError"/> is thrown into the task at its await point
    /// on the next loop iteration. Unlike a plain future's, the task is not cancelled at once and
    /// may catch the error.
    /// </summary>
    /// <returns>False if the task is already done; true otherwise.</returns>
    public override bool Cancel(string? message = null)
    {
        if (Done)
        {
            return false;
        }

        _numCancelsRequested++;
        if (_cts is { IsCancellationRequested: false } cts)
        {
            try
            {
                cts.Cancel();
            }
            catch (AggregateException ex)
            {
                LoopCore.CallExceptionHandler(new ExceptionContext("Exception in a CancellationToken callback of a cancelled task")
                {
                    Exception = ex,
                    Future = this,
                });
            }
        }

        if (_futWaiter is { } waiter && waiter.Cancel(message))
        {
            // The waiter's done callback wakes us with CancelledError at the await (or, if the waiter
            // is a task that completes with a result anyway, Step re-arms the request).
            _cancelHandedOn = true;
            _cancelMessage = message;
            return true;
        }

        _mustCancel = true;
        _cancelMessage = message;
        return true;
    }

    /// <summary>The number of cancellation requests not yet withdrawn by <see cref="Uncancel"/>.</summary>
    public int Cancelling() => _numCancelsRequested;

    /// <summary>
    /// Withdraws one cancellation request (as timeout scopes and task groups do when they turn a
    /// cancellation into something else); returns the number left.
    /// </summary>
    public int Uncancel()
    {
        if (_numCancelsRequested > 0)
        {
            _numCancelsRequested--;
            if (_numCancelsRequested == 0)
            {
                _mustCancel = false;
                if (_cts is { IsCancellationRequested: true })
                {
                    _cts.Dispose();
                    _cts = null;
                }
            }
        }

        return _numCancelsRequested;
    }

    /// <summary>
    /// Takes the cancellation request waiting for the task's next loop await, for an awaitable the
    /// loop cannot interrupt that throws <see cref="CancelledError"/> itself when the task's token
    /// fires: without this, the task would be cancelled a second time at its next await.
    /// </summary>
    internal bool TakePendingCancellation()
    {
        if (!_mustCancel)
        {
            return false;
        }

        _mustCancel = false;
        return true;
    }

    bool ILoopTask.TakePendingCancellation() => TakePendingCancellation();

    /// <summary>Describes the task, its name and state.</summary>
    public override string ToString() => $"<Task {DescribeState()} name='{Name}'>";

    /// <summary>The future the task is waiting on, if any (for diagnostics and tests).</summary>
    internal Future? Waiter => _futWaiter;

    ILoopTask? ILoopTask.TaskPrev { get; set; }

    ILoopTask? ILoopTask.TaskNext { get; set; }

    /// <inheritdoc/>
    Future ILoopTask.AsFuture => this;

    /// <summary>Runs the coroutine one step: until it awaits something not done, or finishes.</summary>
    void ITaskStep.Step() => Step();

    internal void Step()
    {
        if (Done)
        {
            return;
        }

        if (_notStarted)
        {
            _notStarted = false;
            if (_mustCancel)
            {
                // Cancelled before its first step: the body never runs, so it makes nothing that
                // could be lost (asyncio throws CancelledError in before the first line).
                _mustCancel = false;
                FailFromBody(new CancelledError(_cancelMessage));
                return;
            }
        }

        if (_futWaiter is { } waiter)
        {
            _futWaiter = null;
            if (waiter.Cancelled)
            {
                // The await throws CancelledError now: that delivers a request still pending too
                // (asyncio throws once for any number of requests made before the step).
                _mustCancel = false;
            }
            else if (_cancelHandedOn && _numCancelsRequested > 0)
            {
                // The task we asked to cancel returned a result: the await gets it, and our own
                // cancellation is delivered at the next await that suspends.
                _mustCancel = true;
            }

            _cancelHandedOn = false;
        }

        var loop = LoopCore;
        var previousTask = loop.SwapCurrentTask(this);
        ExecutionContext? saved = ExecutionContext.Capture();
        ExecutionContext? mine = _executionContext;
        if (mine is not null && !ReferenceEquals(mine, saved))
        {
            ExecutionContext.Restore(mine);
        }

        try
        {
            MoveNextCore();
        }
        finally
        {
            ExecutionContext? after = ExecutionContext.Capture();
            _executionContext = after;
            if (saved is not null && !ReferenceEquals(after, saved))
            {
                ExecutionContext.Restore(saved);
            }

            loop.SwapCurrentTask(previousTask);
        }
    }

    /// <summary>
    /// Schedules the task's first step on the loop instead of running it now (a lazy start); the
    /// body runs in the creator's <see cref="ExecutionContext"/>, as an eager start would.
    /// </summary>
    internal void StartLater()
    {
        _notStarted = true;
        _executionContext = ExecutionContext.Capture();
        LoopCore.ScheduleInternal(TaskStepper.Wake, null, this);
    }

    /// <summary>Advances the state machine (or, for a deferred task, starts the coroutine).</summary>
    private protected abstract void MoveNextCore();

    /// <summary>Called by the builder when the task's body awaits something that is not done.</summary>
    internal void AwaitCore<TAwaiter>(ref TAwaiter awaiter)
        where TAwaiter : INotifyCompletion
    {
        if (awaiter is IFutureAwaiter)
        {
            WaitOn(FutureOf(ref awaiter));
        }
        else if (awaiter is ICriticalNotifyCompletion)
        {
            ((ICriticalNotifyCompletion)awaiter).UnsafeOnCompleted(_foreignContinuation ??= OnForeignCompleted);
        }
        else
        {
            awaiter.OnCompleted(_foreignContinuation ??= OnForeignCompleted);
        }
    }

    /// <summary>
    /// The future behind a loop future's awaiter. The awaiters the hot paths use (a future's, a
    /// stream read's and a drain's value future) are read by their exact type: the interface cast
    /// boxes the struct in code the JIT has not optimized (Debug builds, tier 0), 24 to 32 bytes per await.
    /// </summary>
    private static Future FutureOf<TAwaiter>(ref TAwaiter awaiter)
    {
        if (typeof(TAwaiter) == typeof(FutureAwaiter))
        {
            return Unsafe.As<TAwaiter, FutureAwaiter>(ref awaiter).FutureCore;
        }

        if (typeof(TAwaiter) == typeof(ValueFutureAwaiter<int>))
        {
            return Unsafe.As<TAwaiter, ValueFutureAwaiter<int>>(ref awaiter).FutureCore;
        }

        if (typeof(TAwaiter) == typeof(ValueFutureAwaiter<VoidResult>))
        {
            return Unsafe.As<TAwaiter, ValueFutureAwaiter<VoidResult>>(ref awaiter).FutureCore;
        }

        if (typeof(TAwaiter) == typeof(ValueFutureAwaiter<bool>))
        {
            return Unsafe.As<TAwaiter, ValueFutureAwaiter<bool>>(ref awaiter).FutureCore;
        }

        if (typeof(TAwaiter) == typeof(FutureAwaiter<VoidResult>))
        {
            return Unsafe.As<TAwaiter, FutureAwaiter<VoidResult>>(ref awaiter).FutureCore;
        }

        return ((IFutureAwaiter)awaiter!).Future;
    }

    /// <summary>
    /// The body of a deferred task: first invokes the coroutine, then follows the task it returns
    /// (waiting on it, so that cancelling this task cancels that one).
    /// </summary>
    private protected void StepDeferred(ref Func<LoopTask<T>>? coroutine, ref LoopTask<T>? inner)
    {
        if (inner is null)
        {
            var start = coroutine!;
            coroutine = null;
            if (_mustCancel)
            {
                // Cancelled before it started: the coroutine is never invoked, so it makes nothing
                // that could be lost (asyncio throws CancelledError in before the first line).
                _mustCancel = false;
                FailFromBody(new CancelledError(_cancelMessage));
                return;
            }

            try
            {
                // The body runs as the inner task (what Tasks.CurrentTask() sees inside): it carries the name given.
                inner = LoopCore.InvokeWithTaskOptions(start, _name, deferStart: false);
            }
            catch (Exception ex)
            {
                FailFromBody(ex);
                return;
            }

            if (!inner.Done)
            {
                WaitOn(inner);
                return;
            }
        }

        if (inner.Cancelled)
        {
            FailFromBody(new CancelledError(null));
        }
        else if (inner.Exception() is { } ex)
        {
            FailFromBody(ex);
        }
        else
        {
            CompleteFromBody(inner.ResultUnchecked);
        }
    }

    /// <summary>Waits on a loop future: its done callback steps the task again.</summary>
    private protected void WaitOn(Future future)
    {
        _futWaiter = future;
        future.AddCallbackCore(TaskStepper.Wake, this);
        if (_mustCancel && future.Cancel(_cancelMessage))
        {
            _mustCancel = false;
        }
    }

    private void OnForeignCompleted() => LoopCore.ScheduleFromAnyThread(TaskStepper.Wake, null, this);

    /// <summary>
    /// Called by the builder when the body returns. A cancellation still pending does not throw the
    /// result away (see the class remarks): the task completes with it, and <see cref="Cancelling"/>
    /// keeps counting the request.
    /// </summary>
    internal void CompleteFromBody(T result)
    {
        _mustCancel = false;
        TrySetResult(result);
        LoopCore.UnregisterTask(this);
        DisposeCts();
    }

    /// <summary>Called by the builder when the body throws.</summary>
    internal void FailFromBody(Exception exception)
    {
        if (exception is OperationCanceledException oce)
        {
            _mustCancel = false;
            FinishCancelled(oce is CancelledError ? oce.Message : _cancelMessage ?? oce.Message, oce);
            return;
        }

        TrySetException(exception);
        LoopCore.UnregisterTask(this);
        DisposeCts();
    }

    private void FinishCancelled(string? message, Exception? cause)
    {
        CancelCore(message, cause);
        LoopCore.UnregisterTask(this);
        DisposeCts();
    }

    private void DisposeCts()
    {
        // Keep a cancelled source: a token handed out stays cancelled. Others are dropped.
        if (_cts is { IsCancellationRequested: false })
        {
            _cts.Dispose();
            _cts = null;
        }
    }
}

#pragma warning restore CA1001

/// <summary>
/// A coroutine with no result running on an event loop: <c>async LoopTask</c> methods.
/// See <see cref="LoopTask{T}"/>.
/// </summary>
[AsyncMethodBuilder(typeof(LoopTaskMethodBuilder))]
public abstract class LoopTask : LoopTask<VoidResult>
{
    private protected LoopTask(BaseEventLoop loop, string? name = null) : base(loop, name)
    {
    }

    /// <summary>Awaits the task; the result is discarded.</summary>
    public new FutureAwaiter GetAwaiter()
    {
        LoopCore.CheckAwaitThread(this);
        return new FutureAwaiter(this);
    }
}

/// <summary>The result of a task that has none (<c>async LoopTask</c>).</summary>
public readonly struct VoidResult : IEquatable<VoidResult>
{
    /// <summary>All values are equal.</summary>
    public bool Equals(VoidResult other) => true;

    /// <summary>All values are equal.</summary>
    public override bool Equals(object? obj) => obj is VoidResult;

    /// <summary>Zero.</summary>
    public override int GetHashCode() => 0;

    /// <summary>"None", as asyncio prints it.</summary>
    public override string ToString() => "None";

    /// <summary>Always true.</summary>
    public static bool operator ==(VoidResult left, VoidResult right) => true;

    /// <summary>Always false.</summary>
    public static bool operator !=(VoidResult left, VoidResult right) => false;
}

/// <summary>Something the loop can step: a task.</summary>
internal interface ITaskStep
{
    void Step();
}

/// <summary>Static callbacks shared by every task type.</summary>
internal static class TaskStepper
{
    /// <summary>A future's done callback that steps the waiting task (state is the task).</summary>
    public static readonly Action<object?, object?> Wake = static (_, task) => ((ITaskStep)task!).Step();
}
