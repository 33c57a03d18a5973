using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip;

public abstract partial class BaseEventLoop
{
    // Guards: _threadSafeQueue, _wakePending, the _closed transition, and every WriteToSelf call
    // (so no wake-up is written after CloseCore starts releasing the wake-up fd).
    private readonly object _threadSafeLock = new();
    private List<ReadyItem> _threadSafeQueue = new();
    private List<ReadyItem> _threadSafeSpare = new();
    private bool _wakePending;
    // Set under the lock, read without it by the loop to skip taking the lock when nothing came in.
    private volatile bool _threadSafeHasItems;

    /// <summary>Whether a callback scheduled from another thread waits for the loop: for tests.</summary>
    internal bool HasThreadSafeCallbacksForTests => _threadSafeHasItems;

    private SynchronizationContext? _syncContext;
    private TaskScheduler _executor;
    private bool _executorShutDown;
    // Executor work still running, for ShutdownDefaultExecutorAsync. Guarded by: itself.
    private readonly HashSet<Task> _executorWork = new();

    internal SynchronizationContext SyncContext => _syncContext ??= new LoopSynchronizationContext(this);

    /// <inheritdoc/>
    public Handle CallSoonThreadSafe(Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var handle = new ActionHandle(this, callback);
        if (!TryEnqueueThreadSafe(new ReadyItem(s_runHandle, handle, null)))
        {
            ThrowClosed();
        }

        return handle;
    }

    /// <inheritdoc/>
    public Handle CallSoonThreadSafe<TState>(Action<TState> callback, TState state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var handle = new StateHandle<TState>(this, callback, state);
        if (!TryEnqueueThreadSafe(new ReadyItem(s_runHandle, handle, null)))
        {
            ThrowClosed();
        }

        return handle;
    }

    /// <summary>
    /// Schedules an internal callback from any thread: directly when called on the loop thread,
    /// through the thread-safe queue otherwise. Returns false (and drops it) if the loop is closed.
    /// </summary>
    internal bool ScheduleFromAnyThread(Action<object?, object?> callback, object? arg1, object? arg2)
    {
        if (IsOnLoopThread)
        {
            _ready.Enqueue(new ReadyItem(callback, arg1, arg2));
            return true;
        }

        return TryEnqueueThreadSafe(new ReadyItem(callback, arg1, arg2));
    }

    private bool TryEnqueueThreadSafe(in ReadyItem item)
    {
        lock (_threadSafeLock)
        {
            if (_closed)
            {
                return false;
            }

            _threadSafeQueue.Add(item);
            _threadSafeHasItems = true;
            if (!_wakePending)
            {
                _wakePending = true;
                WriteToSelf();
            }
        }

        return true;
    }

    /// <summary>Moves what other threads scheduled into the ready queue, in the order they scheduled it.</summary>
    private void DrainThreadSafeQueue()
    {
        if (!_threadSafeHasItems)
        {
            return;
        }

        List<ReadyItem> items;
        lock (_threadSafeLock)
        {
            items = _threadSafeQueue;
            _threadSafeQueue = _threadSafeSpare;
            _threadSafeSpare = items;
            _threadSafeHasItems = false;
            _wakePending = false;
        }

        foreach (var item in items)
        {
            _ready.Enqueue(item);
        }

        items.Clear();
    }

    /// <inheritdoc/>
    public Task<T> RunCoroutineThreadSafe<T>(Func<LoopTask<T>> coroutine, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        var submission = new ThreadSafeSubmission<T>(this, coroutine, cancellationToken);
        CallSoonThreadSafe(static s => s.Start(), submission);
        return submission.Completion.Task;
    }

    /// <summary>A coroutine submitted from another thread, and the .NET task that reports it.</summary>
    private sealed class ThreadSafeSubmission<T>
    {
        private readonly BaseEventLoop _loop;
        private readonly Func<LoopTask<T>> _coroutine;
        private readonly CancellationToken _cancellationToken;
        private CancellationTokenRegistration _registration;

        public ThreadSafeSubmission(BaseEventLoop loop, Func<LoopTask<T>> coroutine, CancellationToken cancellationToken)
        {
            _loop = loop;
            _coroutine = coroutine;
            _cancellationToken = cancellationToken;
        }

        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Start()
        {
            if (_cancellationToken.IsCancellationRequested)
            {
                Completion.TrySetCanceled(_cancellationToken);
                return;
            }

            LoopTask<T> task;
            try
            {
                task = _loop.CreateTask(_coroutine);
            }
            catch (Exception ex)
            {
                Completion.TrySetException(ex);
                return;
            }

            if (_cancellationToken.CanBeCanceled)
            {
                _registration = _cancellationToken.UnsafeRegister(static s =>
                {
                    var t = (LoopTask<T>)s!;
                    t.LoopCore.ScheduleFromAnyThread(static (task, _) => ((LoopTask<T>)task!).Cancel(), t, null);
                }, task);
            }

            task.AddCallbackCore(static (f, s) =>
            {
                var self = (ThreadSafeSubmission<T>)s!;
                self._registration.Dispose();
                var done = (LoopTask<T>)f!;
                if (done.Cancelled)
                {
                    self.Completion.TrySetCanceled();
                }
                else if (done.Exception() is { } ex)
                {
                    self.Completion.TrySetException(ex);
                }
                else
                {
                    self.Completion.TrySetResult(done.ResultUnchecked);
                }
            }, this);
        }
    }

    // ---- Executors ------------------------------------------------------------------------------

    /// <inheritdoc/>
    public void SetDefaultExecutor(TaskScheduler executor)
    {
        ArgumentNullException.ThrowIfNull(executor);
        _executor = executor;
    }

    /// <inheritdoc/>
    public LoopTask<T> RunInExecutor<T>(Func<T> function, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(function);
        return StartExecutorWork(null, ExecutorCalls<T>.CallFunction, function, cancellationToken);
    }

    /// <inheritdoc/>
    public LoopTask RunInExecutor(Action action, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(action);
        return RunInExecutorVoid(action, cancellationToken);
    }

    private async LoopTask RunInExecutorVoid(Action action, CancellationToken cancellationToken) =>
        await RunInExecutor(() => { action(); return default(VoidResult); }, cancellationToken);

    private void TrackExecutorWork(Task work)
    {
        lock (_executorWork)
        {
            _executorWork.Add(work);
        }

        work.ContinueWith(static (t, s) =>
        {
            var set = (HashSet<Task>)s!;
            lock (set)
            {
                set.Remove(t);
            }
        }, _executorWork, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <inheritdoc/>
    public async LoopTask ShutdownDefaultExecutorAsync(CancellationToken cancellationToken = default)
    {
        _executorShutDown = true;
        Task[] pending;
        lock (_executorWork)
        {
            pending = new Task[_executorWork.Count];
            _executorWork.CopyTo(pending);
        }

        if (pending.Length > 0)
        {
            // Work that failed reported to its own awaiter; here only completion matters.
            await Task.WhenAll(pending).ContinueWith(static _ => { }, CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).WaitAsync(cancellationToken);
        }
    }

    /// <inheritdoc/>
    public Future<T> WrapTask<T>(Task<T> task)
    {
        ArgumentNullException.ThrowIfNull(task);
        CheckClosed();
        return new DotnetTaskFollower<T>(this, task, null);
    }

    /// <inheritdoc/>
    public Future<VoidResult> WrapTask(Task task)
    {
        ArgumentNullException.ThrowIfNull(task);
        CheckClosed();
        var typed = task.ContinueWith(static t =>
        {
            t.GetAwaiter().GetResult();
            return default(VoidResult);
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return new DotnetTaskFollower<VoidResult>(this, typed, null);
    }

    /// <summary>
    /// Runs posted continuations on the loop, so plain <c>async Task</c> code on the loop thread
    /// resumes there too.
    /// </summary>
    private sealed class LoopSynchronizationContext : SynchronizationContext
    {
        private static readonly Action<object?, object?> s_invoke = static (d, s) => ((SendOrPostCallback)d!)(s);
        private readonly BaseEventLoop _loop;

        public LoopSynchronizationContext(BaseEventLoop loop) => _loop = loop;

        public override void Post(SendOrPostCallback d, object? state)
        {
            if (!_loop.ScheduleFromAnyThread(s_invoke, d, state))
            {
                // The loop is closed: nothing will ever run this continuation. Say so rather than lose it quietly.
                _loop.DefaultExceptionHandler(new ExceptionContext("A continuation was posted to a closed event loop and dropped."));
            }
        }

        public override void Send(SendOrPostCallback d, object? state)
        {
            if (_loop.IsOnLoopThread)
            {
                d(state);
                return;
            }

            throw new NotSupportedException("Synchronous Send to an event loop from another thread would block it; use Post or loop.CallSoonThreadSafe.");
        }

        public override SynchronizationContext CreateCopy() => this;
    }
}

/// <summary>
/// A loop task that follows a .NET <see cref="Task{T}"/>: the PEP's wrap_future, and what
/// <c>RunInExecutor</c> returns. Cancelling it cancels the token the work was started with; a
/// result that work already running returns afterwards is disposed if it is disposable (executor
/// work only: a wrapped task keeps its result), so it is never silently lost.
/// </summary>
internal sealed class DotnetTaskFollower<T> : LoopTask<T>
{
    private static readonly Action<object?, object?> s_copy = static (follower, _) => ((DotnetTaskFollower<T>)follower!).CopyOutcome();
    private readonly Task<T> _task;
    private readonly CancellationTokenSource? _cts;
    private readonly bool _disposeOrphanedResult;

    public DotnetTaskFollower(BaseEventLoop loop, Task<T> task, CancellationTokenSource? cts) : base(loop, name: null, register: false)
    {
        _task = task;
        _cts = cts;
        // Executor work (cts given) has no other owner: a result it returns after the follower was
        // cancelled is disposed rather than dropped. A wrapped task's result stays on that task.
        _disposeOrphanedResult = cts is not null;
        if (task.IsCompleted)
        {
            CopyOutcome();
        }
        else
        {
            task.ContinueWith(static (_, s) =>
            {
                var self = (DotnetTaskFollower<T>)s!;
                self.LoopCore.ScheduleFromAnyThread(s_copy, self, null);
            }, this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    public override bool Cancel(string? message = null)
    {
        if (!base.Cancel(message))
        {
            return false;
        }

        // Nothing awaits inside a follower: finish cancelled now, as a future would.
        FailFromBody(new CancelledError(message));
        try
        {
            _cts?.Cancel();
        }
        catch (AggregateException ex)
        {
            LoopCore.CallExceptionHandler(new ExceptionContext("Exception in a cancellation callback of executor work") { Exception = ex, Future = this });
        }

        return true;
    }

    private protected override void MoveNextCore()
    {
    }

    private void CopyOutcome()
    {
        _cts?.Dispose();
        if (Done)
        {
            if (_task.IsFaulted)
            {
                _ = _task.Exception; // observed: the caller cancelled and no longer wants it
            }
            else if (_task.IsCompletedSuccessfully && _disposeOrphanedResult)
            {
                LoopCore.DisposeOrphanedResult(_task.Result, this);
            }

            return;
        }

        if (_task.IsCanceled)
        {
            FailFromBody(new CancelledError("The .NET task was cancelled."));
        }
        else if (_task.IsFaulted)
        {
            var ex = _task.Exception!;
            FailFromBody(ex.InnerExceptions.Count == 1 ? ex.InnerExceptions[0] : ex);
        }
        else
        {
            CompleteFromBody(_task.Result);
        }
    }
}
