using System;
using System.Collections.Generic;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip;

/// <summary>
/// Runs tasks together and waits for all of them: asyncio's <c>TaskGroup</c> (3.11+ semantics).
/// Created inside a loop task, its <em>parent</em>; every task made with <see cref="CreateTask(Func{LoopTask}, string?, bool)"/>
/// is waited for when the group is left.
/// </summary>
/// <remarks>
/// <para>
/// When a task of the group fails, every other task is cancelled and so is the parent, so that the
/// body stops at its await. Leaving the group then waits for the cancelled tasks and throws an
/// <see cref="ExceptionGroup"/> of every failure (the parent's cancellation is withdrawn with
/// <see cref="LoopTask{T}.Uncancel"/>). If the parent is cancelled from elsewhere, the tasks are
/// cancelled and, when no task failed, <see cref="CancelledError"/> goes on.
/// </para>
/// <para>Two ways to use it:</para>
/// <list type="bullet">
/// <item><description>
/// <see cref="RunAsync(Func{TaskGroup, LoopTask}, CancellationToken)"/>: <c>await TaskGroup.RunAsync(async tg => { tg.CreateTask(...); })</c>.
/// Exactly asyncio's <c>async with TaskGroup()</c>: an exception the body throws also cancels the
/// tasks and joins the <see cref="ExceptionGroup"/>.
/// </description></item>
/// <item><description>
/// <c>await using var tg = new TaskGroup();</c>: <see cref="DisposeAsync"/> is a loop task that
/// leaves the group. C# does not tell it what exception, if any, the block is leaving with; it
/// tells a cancellation of the parent from elsewhere by the parent's <see cref="LoopTask{T}.Cancelling"/>
/// count, but it cannot see another exception the body throws: then the tasks are not cancelled
/// but waited for, and the body's exception goes on unless a task failed (whose
/// <see cref="ExceptionGroup"/> replaces it, as an exception thrown by a <c>finally</c> does).
/// Prefer <c>RunAsync</c> when the body can throw.
/// </description></item>
/// </list>
/// <para>
/// The group is an <see cref="IAsyncDisposable"/> too, for code that holds one: its
/// <see cref="IAsyncDisposable.DisposeAsync"/> leaves the group as <see cref="DisposeAsync"/> does, as a
/// <see cref="ValueTask"/> whose await keeps the loop await's cancellation (cancelling the parent while it
/// waits reaches the group at once). <c>await using</c> binds to the public <see cref="DisposeAsync"/>.
/// </para>
/// <para>Members are for the loop thread.</para>
/// </remarks>
public sealed class TaskGroup : IAsyncDisposable
{
    private static readonly Action<object?, object?> s_onTaskDone = static (task, group) => ((TaskGroup)group!).OnTaskDone((Future)task!);

    private readonly BaseEventLoop _loop;
    private readonly Future _parent;
    private readonly ILoopTask _parentControl;
    private readonly int _parentCancellingAtEntry;
    private readonly HashSet<Future> _tasks = [];
    private readonly List<Exception> _errors = [];
    private Future<VoidResult>? _onCompleted;
    private bool _exiting;
    private bool _aborting;
    private bool _finished;
    private bool _parentCancelRequested;

    /// <summary>Creates (and enters) a group whose parent is the current task.</summary>
    /// <exception cref="InvalidOperationException">Not called inside a loop task.</exception>
    public TaskGroup()
    {
        _loop = Tasks.RunningLoop();
        _parent = _loop.CurrentTask?.AsFuture
            ?? throw new InvalidOperationException("A TaskGroup must be created inside a loop task: that task is its parent, cancelled when a task of the group fails.");
        _parentControl = (ILoopTask)_parent;
        _parentCancellingAtEntry = _parentControl.Cancelling();
    }

    /// <summary>
    /// Runs <paramref name="body"/> with a new group and leaves the group when it returns: asyncio's
    /// <c>async with TaskGroup() as tg: await body(tg)</c>, with its full semantics (see the remarks
    /// of <see cref="TaskGroup"/>). The group's parent is the task this method runs as.
    /// </summary>
    /// <exception cref="ExceptionGroup">A task of the group, or the body, failed.</exception>
    /// <exception cref="CancelledError">This task was cancelled (or <paramref name="cancellationToken"/>) and nothing failed.</exception>
    public static LoopTask RunAsync(Func<TaskGroup, LoopTask> body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return RunCore(body, cancellationToken);
    }

    /// <summary>As <see cref="RunAsync(Func{TaskGroup, LoopTask}, CancellationToken)"/>, returning the body's result.</summary>
    public static LoopTask<T> RunAsync<T>(Func<TaskGroup, LoopTask<T>> body, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return RunCore(body, cancellationToken);
    }

    /// <summary>
    /// Starts <paramref name="coroutine"/> as a task of the group: at once up to its first pending
    /// await, as every loop task does, or from the next iteration with <paramref name="eagerStart"/>
    /// false (see <see cref="IEventLoop.CreateTask{T}(Func{LoopTask{T}}, string?, bool)"/>).
    /// </summary>
    /// <exception cref="InvalidOperationException">The group is finished, or shutting down after a failure or cancellation.</exception>
    public LoopTask<T> CreateTask<T>(Func<LoopTask<T>> coroutine, string? name = null, bool eagerStart = true)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckCanCreate();
        var task = _loop.CreateTask(coroutine, name, eagerStart);
        Track(task);
        return task;
    }

    /// <summary>As <see cref="CreateTask{T}(Func{LoopTask{T}}, string?, bool)"/>, for a task without a result.</summary>
    /// <exception cref="InvalidOperationException">The group is finished, or shutting down after a failure or cancellation.</exception>
    public LoopTask CreateTask(Func<LoopTask> coroutine, string? name = null, bool eagerStart = true)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckCanCreate();
        var task = _loop.CreateTask(coroutine, name, eagerStart);
        Track(task);
        return task;
    }

    /// <summary>
    /// Leaves the group: waits for its tasks, then throws as the class remarks say. This is what
    /// <c>await using</c> calls; it returns a loop task, so awaiting it is a loop await (cancelling
    /// the parent reaches the group at once).
    /// </summary>
    /// <exception cref="InvalidOperationException">The group is already being left.</exception>
    public LoopTask DisposeAsync()
    {
        if (_exiting)
        {
            throw new InvalidOperationException("This TaskGroup is already being left; leave it once.");
        }

        // The body's exception is unknown here; a cancellation of the parent beyond the group's own
        // request is the one case that can be told (see the class remarks).
        int ours = _parentCancellingAtEntry + (_parentCancelRequested ? 1 : 0);
        Exception? bodyError = _parentControl.Cancelling() > ours ? new CancelledError() : null;
        return ExitAsync(bodyError);
    }

    /// <summary>
    /// Leaves the group as <see cref="DisposeAsync"/> does, for code that holds an <see cref="IAsyncDisposable"/>
    /// (see the class remarks); on the loop thread, inside the parent task.
    /// </summary>
    /// <exception cref="InvalidOperationException">The group is already being left, or not on the loop thread.</exception>
    ValueTask IAsyncDisposable.DisposeAsync() => FutureValueOperation.Await(DisposeAsync(), cancelFuture: true);

    /// <summary>Describes the group.</summary>
    public override string ToString()
    {
        string state = _finished ? "finished" : _aborting ? "aborting" : _exiting ? "exiting" : "entered";
        return $"<TaskGroup {state} tasks={_tasks.Count} errors={_errors.Count}>";
    }

    private static async LoopTask RunCore(Func<TaskGroup, LoopTask> body, CancellationToken cancellationToken)
    {
        using var registration = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var group = new TaskGroup();
        Exception? bodyError = null;
        try
        {
            await body(group);
        }
        catch (Exception ex)
        {
            bodyError = ex;
        }

        await group.ExitAsync(bodyError);
        if (bodyError is not null)
        {
            ExceptionDispatchInfo.Throw(bodyError);
        }
    }

    private static async LoopTask<T> RunCore<T>(Func<TaskGroup, LoopTask<T>> body, CancellationToken cancellationToken)
    {
        using var registration = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var group = new TaskGroup();
        Exception? bodyError = null;
        T result = default!;
        try
        {
            result = await body(group);
        }
        catch (Exception ex)
        {
            bodyError = ex;
        }

        await group.ExitAsync(bodyError);
        if (bodyError is not null)
        {
            ExceptionDispatchInfo.Throw(bodyError);
        }

        return result;
    }

    private void CheckCanCreate()
    {
        if (_finished || (_exiting && _tasks.Count == 0))
        {
            throw new InvalidOperationException($"Cannot create a task in {this}: the group is finished; create tasks while it is entered.");
        }

        if (_aborting)
        {
            throw new InvalidOperationException($"Cannot create a task in {this}: the group is shutting down after a failure or cancellation.");
        }
    }

    private void Track(Future task)
    {
        // A task that finished eagerly needs no callback (asyncio does the same).
        if (task.Done)
        {
            OnTaskDone(task);
            return;
        }

        _tasks.Add(task);
        task.AddCallbackCore(s_onTaskDone, this);
    }

    /// <summary>asyncio's <c>TaskGroup._aexit</c>, given what the body ended with.</summary>
    private async LoopTask ExitAsync(Exception? bodyError)
    {
        _exiting = true;
        try
        {
            Exception? propagateCancellation = bodyError as OperationCanceledException;
            if (bodyError is not null && !_aborting)
            {
                // The parent is being cancelled, or the body failed: stop the tasks.
                Abort();
            }

            // A loop: the wait can be cancelled more than once (the parent cancelled again, or
            // the group's own cancellation of the parent arriving here).
            while (_tasks.Count > 0)
            {
                _onCompleted ??= new Future<VoidResult>(_loop);
                try
                {
                    await _onCompleted;
                }
                catch (OperationCanceledException ex)
                {
                    if (!_aborting)
                    {
                        // The parent is cancelled from elsewhere while the group waits.
                        propagateCancellation = ex;
                        Abort();
                    }
                }

                _onCompleted = null;
            }

            if (_parentCancelRequested && _parentControl.Uncancel() == 0)
            {
                // The group's own cancellation of the parent was the only one: it goes no further.
                propagateCancellation = null;
            }

            if (propagateCancellation is not null && _errors.Count == 0)
            {
                ExceptionDispatchInfo.Throw(propagateCancellation);
            }

            if (bodyError is not null and not OperationCanceledException)
            {
                _errors.Add(bodyError);
            }

            if (_errors.Count > 0)
            {
                if (_parentControl.Cancelling() > 0)
                {
                    // The parent is also cancelled from elsewhere, and the ExceptionGroup swallows
                    // that CancelledError: request it again so it reaches the parent's next await,
                    // keeping the count. Scheduled, because the parent is waiting on this task now.
                    _parentControl.Uncancel();
                    _loop.ScheduleInternal(static (p, _) => ((Future)p!).Cancel(), _parent, null);
                }

                throw new ExceptionGroup("unhandled errors in a TaskGroup", _errors);
            }
        }
        finally
        {
            _finished = true;
        }
    }

    private void Abort()
    {
        _aborting = true;
        foreach (var task in _tasks)
        {
            // Cancel only schedules callbacks, so the set is not changed while we walk it.
            task.Cancel();
        }
    }

    private void OnTaskDone(Future task)
    {
        _tasks.Remove(task);
        if (_onCompleted is not null && _tasks.Count == 0)
        {
            _onCompleted.TrySetResult(default);
        }

        if (task.Cancelled)
        {
            return;
        }

        var error = task.Exception();
        if (error is null)
        {
            return;
        }

        _errors.Add(error);
        if (_parent.Done)
        {
            _loop.CallExceptionHandler(new ExceptionContext("Task in a TaskGroup failed after its parent task was done")
            {
                Exception = error,
                Future = task,
            });
            return;
        }

        if (!_aborting && !_parentCancelRequested)
        {
            // Stop the other tasks and the body; the parent's cancellation is withdrawn on exit.
            Abort();
            _parentCancelRequested = true;
            _parent.Cancel();
        }
    }
}
