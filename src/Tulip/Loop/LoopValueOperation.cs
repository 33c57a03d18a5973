using System;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;
using System.Threading.Tasks.Sources;

namespace Tulip;

/// <summary>
/// A wait on the loop handed out as a <see cref="ValueTask{TResult}"/> (or <see cref="ValueTask"/>)
/// over this source, with a loop await's cancellation: the socket operations of the
/// <c>Sock*ValueAsync</c> methods that had to wait, which a loop keeps in a pool so the steady state
/// of a receive or a send allocates nothing (Kestrel's <c>SocketAwaitableEventArgs</c> pattern), and
/// <see cref="FutureValueOperation"/>, a loop future awaited as a <see cref="ValueTask"/> (the
/// <see cref="IAsyncDisposable"/> forms). Subclasses say how they wait (fd readiness, a runtime operation, a future).
/// </summary>
/// <remarks>
/// <para>
/// Loop thread only: it is started, completed, awaited and cancelled there (a token that fires on
/// another thread posts to the loop). A use ends when the awaiter takes the result
/// (<see cref="GetResult(short)"/>); the version then moves on, so a second await of the same
/// <see cref="ValueTask"/> fails as .NET's own sources do, and the object goes back to its pool.
/// </para>
/// <para>
/// Cancellation: by the caller's token, and by the cancellation of the loop task that started the
/// operation (<c>task.Cancel()</c>, a timeout, a task group), through the task's own token. Either
/// asks the subclass to withdraw the operation (<see cref="CancelCore"/>); the outcome is what the
/// operation then really did: <see cref="CancelledError"/> if it was withdrawn, the result if it had
/// already completed (never lost, as a loop task's await returns a result that raced a cancel).
/// When the task's cancellation caused the error, the task's pending request is taken
/// (one request, one <see cref="CancelledError"/>), so its next await is not cancelled again.
/// </para>
/// <para>
/// The continuation runs on the loop thread as the operation completes; a captured context other
/// than the loop's own (a foreign <see cref="SynchronizationContext"/> or <see cref="TaskScheduler"/>)
/// is posted to. A loop task's continuation only queues its next step, so nothing runs re-entrantly.
/// </para>
/// </remarks>
internal abstract class LoopValueOperation : IValueTaskSource<int>, IValueTaskSource
{
    private static readonly Action<object?, object?> s_cancelOnLoop = static (op, token) =>
        ((LoopValueOperation)op!).CancelOnLoop((CancellationToken)token!);

    private static readonly Action<object?, CancellationToken> s_tokenFired = static (state, token) =>
    {
        var op = (LoopValueOperation)state!;
        op._loop.ScheduleFromAnyThread(s_cancelOnLoop, op, token);
    };

    private static readonly Action<object?, object?> s_runContinuationLater = static (op, _) =>
        ((LoopValueOperation)op!).InvokeContinuation();

    private readonly BaseEventLoop _loop;

    // All owned by the loop thread.
    private short _version;
    private Phase _phase;
    private int _result;
    private Exception? _error;
    private Action<object?>? _continuation;
    private object? _continuationState;
    private ExecutionContext? _executionContext;
    private object? _scheduler;
    private CancellationToken _userToken;
    private CancellationToken _taskToken;
    private CancellationTokenRegistration _userRegistration;
    private CancellationTokenRegistration _taskRegistration;
    private ILoopTask? _task;
    private Cause _cancelledBy;

    private enum Phase : byte
    {
        Idle,
        Pending,
        Done,
    }

    private enum Cause : byte
    {
        None,
        Caller,
        Task,
    }

    protected LoopValueOperation(BaseEventLoop loop) => _loop = loop;

    /// <summary>The token of the current use, for the <see cref="ValueTask"/> handed out.</summary>
    public short Version => _version;

    /// <summary>True between <see cref="BeginPending"/> and <see cref="Complete"/>.</summary>
    protected bool IsPending => _phase == Phase.Pending;

    /// <summary>True once a token asked for the operation to stop (the subclass may stop at its next step).</summary>
    protected bool CancelRequested => _cancelledBy != Cause.None;

    /// <summary>
    /// Marks the operation pending (the subclass has started or armed it) and links the caller's
    /// token and the current loop task's cancellation to it.
    /// </summary>
    protected void BeginPending(CancellationToken cancellationToken)
    {
        _phase = Phase.Pending;
        _cancelledBy = Cause.None;
        _userToken = cancellationToken;
        // A token already cancelled calls back at once; the callback only posts, so the
        // cancellation is taken on a later iteration, after the caller awaited.
        if (cancellationToken.CanBeCanceled)
        {
            _userRegistration = cancellationToken.UnsafeRegister(s_tokenFired, this);
        }

        if (_loop.CurrentTask is { } task)
        {
            _task = task;
            _taskToken = task.CancellationToken;
            _taskRegistration = _taskToken.UnsafeRegister(s_tokenFired, this);
        }
    }

    /// <summary>Withdraws the pending operation; the subclass then calls <see cref="Complete"/> (at once or when the withdrawal is done).</summary>
    protected abstract void CancelCore();

    /// <summary>Puts the operation back in its loop's pool; called once the awaiter took the result.</summary>
    protected abstract void Release();

    /// <summary>Ends the use with its outcome and runs the awaiter's continuation. Loop thread.</summary>
    protected void Complete(int result, Exception? error)
    {
        if (_phase != Phase.Pending)
        {
            return;
        }

        _userRegistration.Unregister();
        _taskRegistration.Unregister();
        _userRegistration = default;
        _taskRegistration = default;
        if (error is OperationCanceledException and not CancelledError && _cancelledBy != Cause.None)
        {
            error = new CancelledError();
        }

        _result = result;
        _error = error;
        _phase = Phase.Done;
        if (_continuation is not null)
        {
            // Last: the continuation may take the result, and this object may be reused inside it.
            InvokeContinuation();
        }
    }

    private void CancelOnLoop(CancellationToken token)
    {
        if (_phase != Phase.Pending || _cancelledBy != Cause.None)
        {
            return;
        }

        // A registration of an earlier use may fire late: only this use's tokens count.
        if (token == _userToken && _userToken.CanBeCanceled)
        {
            _cancelledBy = Cause.Caller;
        }
        else if (token == _taskToken && _taskToken.CanBeCanceled)
        {
            _cancelledBy = Cause.Task;
        }
        else
        {
            return;
        }

        CancelCore();
    }

    /// <inheritdoc/>
    public ValueTaskSourceStatus GetStatus(short token)
    {
        CheckVersion(token);
        return _phase != Phase.Done ? ValueTaskSourceStatus.Pending
            : _error is null ? ValueTaskSourceStatus.Succeeded
            : _error is OperationCanceledException ? ValueTaskSourceStatus.Canceled
            : ValueTaskSourceStatus.Faulted;
    }

    /// <inheritdoc/>
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        CheckVersion(token);
        if (_continuation is not null)
        {
            throw new InvalidOperationException("This ValueTask is already awaited: await a ValueTask once (call AsTask() to share it).");
        }

        if ((flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0)
        {
            _executionContext = ExecutionContext.Capture();
        }

        if ((flags & ValueTaskSourceOnCompletedFlags.UseSchedulingContext) != 0)
        {
            // The loop's own context needs no posting: the operation completes on the loop thread.
            var context = SynchronizationContext.Current;
            if (context is not null && context.GetType() != typeof(SynchronizationContext) && !ReferenceEquals(context, _loop.SyncContext))
            {
                _scheduler = context;
            }
            else if (TaskScheduler.Current != TaskScheduler.Default)
            {
                _scheduler = TaskScheduler.Current;
            }
        }

        _continuationState = state;
        _continuation = continuation;
        if (_phase == Phase.Done)
        {
            // Completed between the awaiter's IsCompleted and now (an await from another thread):
            // run it from the loop, not on this stack.
            _loop.ScheduleFromAnyThread(s_runContinuationLater, this, null);
        }
    }

    /// <inheritdoc/>
    public int GetResult(short token)
    {
        CheckVersion(token);
        if (_phase != Phase.Done)
        {
            throw new InvalidOperationException("The operation behind this ValueTask has not completed: await it instead of reading its result.");
        }

        int result = _result;
        var error = _error;
        var cause = _cancelledBy;
        var task = _task;
        Reset();
        if (error is null)
        {
            return result;
        }

        if (cause == Cause.Task && error is CancelledError && task is not null && ReferenceEquals(_loop.CurrentTask, task))
        {
            // The task's cancellation is delivered here, by this CancelledError: not again at its next await.
            task.TakePendingCancellation();
        }

        ExceptionDispatchInfo.Throw(error);
        return 0;
    }

    /// <inheritdoc/>
    void IValueTaskSource.GetResult(short token) => GetResult(token);

    /// <summary>
    /// <see cref="GetResult(short)"/> for an operation whose result is an object (an accepted socket),
    /// which the subclass keeps in <paramref name="value"/>: takes it from there (the field is cleared,
    /// so the pooled operation holds nothing) and ends the use, or throws the failure.
    /// </summary>
    protected T GetResult<T>(short token, ref T? value)
        where T : class
    {
        CheckVersion(token);
        var result = value;
        value = null;
        GetResult(token);
        return result!;
    }

    private void Reset()
    {
        _version++;
        _phase = Phase.Idle;
        _error = null;
        _result = 0;
        _continuation = null;
        _continuationState = null;
        _executionContext = null;
        _scheduler = null;
        _task = null;
        _userToken = default;
        _taskToken = default;
        _cancelledBy = Cause.None;
        if (_loop.IsOnLoopThread)
        {
            Release();
        }
    }

    private void CheckVersion(short token)
    {
        if (token != _version)
        {
            throw new InvalidOperationException(
                "This ValueTask was already awaited: a ValueTask is awaited once (call AsTask() to await it more than once).");
        }
    }

    private void InvokeContinuation()
    {
        var continuation = _continuation!;
        var state = _continuationState;
        var executionContext = _executionContext;
        switch (_scheduler)
        {
            case SynchronizationContext context:
                context.Post(static s => { var (c, st) = ((Action<object?>, object?))s!; c(st); }, (continuation, state));
                return;
            case TaskScheduler scheduler:
                _ = Task.Factory.StartNew(continuation, state, CancellationToken.None, TaskCreationOptions.DenyChildAttach, scheduler);
                return;
        }

        if (executionContext is null)
        {
            continuation(state);
            return;
        }

        ExecutionContext.Run(executionContext, static s => { var (c, st) = ((Action<object?>, object?))s!; c(st); }, (continuation, state));
    }
}
