using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Tulip.Diagnostics;
using Tulip.Internal;

namespace Tulip;

/// <summary>
/// The platform-neutral part of every loop (asyncio's <c>BaseEventLoop</c>): the ready queue, the
/// timer heap, running and stopping, thread-safe calls, executors, name lookups, the exception
/// handler and debug mode, and the connection code above the multiplexer (connections, servers,
/// datagram endpoints). A multiplexer derives from it and implements the protected hooks:
/// <see cref="ProcessEvents"/> (wait for I/O, schedule its callbacks), <see cref="WriteToSelf"/>
/// (wake a waiting loop from another thread) and <see cref="CloseCore"/>; for sockets, the
/// transport hooks <see cref="MakeSocketTransport"/>, <see cref="MakeDatagramTransport"/> and
/// <see cref="StartAccepting"/>, and the <c>Sock*</c> primitives (<see cref="SockConnectAsync"/>...).
/// </summary>
/// <remarks>
/// <para>
/// The hooks are protected and their signatures hold only public types: a loop outside this
/// assembly derives from this class as <see cref="SelectorEventLoop"/> does (Tulip.Testing's
/// <c>TestEventLoop</c> is one). See "The selector loop" in docs/ARCHITECTURE.md.
/// </para>
/// <para>
/// One iteration (<c>RunOnce</c>), as libuv's and asyncio's: take in thread-safe calls; drop
/// cancelled timers; wait for I/O for as long as nothing is ready and no timer is due; move due
/// timers to the ready queue; run exactly the callbacks that were ready when the run phase began
/// (callbacks they schedule wait for the next iteration, so I/O is never starved).
/// </para>
/// </remarks>
public abstract partial class BaseEventLoop : IEventLoop
{
    /// <summary>asyncio's MAXIMUM_SELECT_TIMEOUT: a wait never exceeds a day.</summary>
    private const double MaximumSelectTimeout = 24 * 3600;

    /// <summary>Below this many timers the heap is not swept for cancelled ones (asyncio's _MIN_SCHEDULED_TIMER_HANDLES).</summary>
    private const int MinTimersToPurge = 100;

    private static readonly double s_secondsPerTick = 1.0 / Stopwatch.Frequency;

    private static readonly Action<object?, object?> s_runHandle = static (handle, _) =>
    {
        var h = (Handle)handle!;
        if (!h.Cancelled)
        {
            h.Run();
        }
    };

    private static readonly Action<object?, object?> s_runTimer = static (handle, _) =>
    {
        var h = (TimerHandle)handle!;
        if (!h.Cancelled)
        {
            h.Run();
        }
    };

    [ThreadStatic]
    private static BaseEventLoop? t_runningLoop;

    // ---- State owned by the loop thread -------------------------------------------------------
    private readonly ReadyQueue _ready = new();
    private readonly TimerHeap _timers = new();
    private int _cancelledTimers;
    private long _timerSequence;
    // Set by Stop from any thread (volatile so a loop thread sees another thread's Stop); cleared by
    // the loop thread when RunForever returns.
    private volatile bool _stopping;
    private Future? _currentTask;
    private ILoopTask? _tasksHead;
    private int _taskCount;

    // ---- State other threads read ----------------------------------------------------------
    // The managed id of the thread running the loop, 0 when not running; read by other threads
    // for the wrong-thread checks.
    private volatile int _threadId;
    private volatile bool _closed;
    private bool _debug;

    /// <summary>Creates the loop; <paramref name="loggerFactory"/> is where the default exception handler and debug mode log (stderr if null).</summary>
    protected BaseEventLoop(ILoggerFactory? loggerFactory = null)
    {
        Logger = (loggerFactory ?? StderrLoggerFactory.Instance).CreateLogger("Tulip");
        _debug = Environment.GetEnvironmentVariable("TULIP_DEBUG") == "1";
        _executor = System.Threading.Tasks.TaskScheduler.Default;
        RegisterMetrics();
    }

    /// <summary>Where the loop logs: the default exception handler, slow callbacks in debug mode.</summary>
    protected internal ILogger Logger { get; }

    /// <inheritdoc/>
    public bool IsRunning => _threadId != 0;

    /// <inheritdoc/>
    public bool IsClosed => _closed;

    /// <inheritdoc/>
    public bool Debug
    {
        get => _debug;
        set => _debug = value;
    }

    /// <inheritdoc/>
    public double SlowCallbackDuration { get; set; } = 0.1;

    /// <inheritdoc/>
    public ILoopTask? CurrentTask => (ILoopTask?)_currentTask;

    /// <summary>Callbacks waiting in the ready queue (for tests and diagnostics).</summary>
    internal int ReadyCount => _ready.Count;

    /// <summary>Timers in the heap, cancelled ones included (for tests and diagnostics).</summary>
    internal int TimerCount => _timers.Count;

    /// <summary>The due time of the earliest timer that is not cancelled, or null.</summary>
    protected double? NextTimerDue
    {
        get
        {
            DropCancelledTopTimers();
            return _timers.Count > 0 ? _timers.Peek().When : null;
        }
    }

    /// <summary>True if a callback is ready to run (so waiting for I/O must not block).</summary>
    protected bool HasReadyCallbacks => _ready.Count > 0 || _threadSafeHasItems;

    /// <summary>The loop's clock: monotonic seconds. The virtual-clock test loop overrides it.</summary>
    public virtual double Time() => Stopwatch.GetTimestamp() * s_secondsPerTick;

    /// <summary>The clock's resolution: timers due within it of now are run now.</summary>
    protected virtual double ClockResolution => s_secondsPerTick;

    // ---- Multiplexer hooks ------------------------------------------------------------------

    /// <summary>
    /// Waits up to <paramref name="timeout"/> seconds (0: poll; a negative value: until something
    /// happens) for I/O, and schedules the callbacks of what became ready, with
    /// <see cref="AddReadyHandle"/> for the handles it keeps or <see cref="CallSoon(Action)"/>:
    /// they run in this iteration's run phase. Returns early when <see cref="WriteToSelf"/> is called.
    /// </summary>
    /// <remarks>Called on the loop thread, once per iteration, between the timers and the run phase.</remarks>
    protected abstract void ProcessEvents(double timeout);

    /// <summary>
    /// Wakes the loop if it waits in <see cref="ProcessEvents"/>. Called from any thread, under the
    /// loop's thread-safe lock, and never after <see cref="CloseCore"/> has started.
    /// </summary>
    protected abstract void WriteToSelf();

    /// <summary>Releases the multiplexer's resources. Called once, by <see cref="Close"/>.</summary>
    protected virtual void CloseCore()
    {
    }

    // ---- Running --------------------------------------------------------------------------------

    /// <inheritdoc/>
    public void RunForever()
    {
        CheckClosed();
        ClaimRunning();
        RunClaimed();
    }

    /// <summary>
    /// Makes the calling thread the loop's, atomically: of two threads that start the loop at once
    /// exactly one wins, the other gets the "already running" error and touches nothing. Released by
    /// <see cref="RunClaimed"/> when it returns, or by <see cref="ReleaseClaim"/> if it is never called.
    /// </summary>
    private void ClaimRunning()
    {
        int me = Environment.CurrentManagedThreadId;
        if (Interlocked.CompareExchange(ref _threadId, me, 0) != 0)
        {
            throw new InvalidOperationException("This event loop is already running.");
        }

        if (t_runningLoop is not null)
        {
            _threadId = 0;
            throw new InvalidOperationException("Cannot run an event loop while another loop is running on this thread.");
        }
    }

    private void ReleaseClaim() => _threadId = 0;

    /// <summary>Runs iterations until stopped, on the thread that <see cref="ClaimRunning"/> made the loop's; releases the claim when done.</summary>
    private void RunClaimed()
    {
        var previousContext = SynchronizationContext.Current;
        t_runningLoop = this;
        SynchronizationContext.SetSynchronizationContext(SyncContext);
        try
        {
            while (true)
            {
                RunOnce();
                if (_stopping)
                {
                    break;
                }
            }

            OnRunStopped();
        }
        finally
        {
            _stopping = false;
            t_runningLoop = null;
            SynchronizationContext.SetSynchronizationContext(previousContext);
            ReleaseClaim();
        }
    }

    /// <inheritdoc/>
    public T RunUntilComplete<T>(Future<T> future)
    {
        RunUntilDone(future);
        return future.Result();
    }

    /// <inheritdoc/>
    public void RunUntilComplete(Future future)
    {
        RunUntilDone(future);
        future.ThrowIfNotSuccess();
    }

    /// <inheritdoc/>
    public T RunUntilComplete<T>(Func<LoopTask<T>> coroutine)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckClosed();
        // Claimed before the task is made: a second thread starting the loop at the same moment must
        // not schedule the task's first step into the ready queue the winner is running.
        ClaimRunning();
        LoopTask<T> task;
        try
        {
            task = CreateTask(coroutine);
        }
        catch
        {
            ReleaseClaim();
            throw;
        }

        RunUntilDoneClaimed(task);
        return task.Result();
    }

    /// <inheritdoc/>
    public void RunUntilComplete(Func<LoopTask> coroutine)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckClosed();
        ClaimRunning();
        LoopTask task;
        try
        {
            task = CreateTask(coroutine);
        }
        catch
        {
            ReleaseClaim();
            throw;
        }

        RunUntilDoneClaimed(task);
        task.ThrowIfNotSuccess();
    }

    private void RunUntilDone(Future future)
    {
        ArgumentNullException.ThrowIfNull(future);
        CheckClosed();
        ClaimRunning();
        if (!ReferenceEquals(future.LoopCore, this))
        {
            ReleaseClaim();
            throw new ArgumentException("The future belongs to another event loop; run it on its own loop.", nameof(future));
        }

        RunUntilDoneClaimed(future);
    }

    /// <summary>Runs the claimed loop until <paramref name="future"/> is done (the claim is released on return).</summary>
    private void RunUntilDoneClaimed(Future future)
    {
        try
        {
            future.AddCallbackCore(s_stopLoop, this);
        }
        catch
        {
            ReleaseClaim();
            throw;
        }

        try
        {
            RunClaimed();
        }
        finally
        {
            future.RemoveCallbackCore(s_stopLoop, this);
        }

        if (!future.Done)
        {
            throw new InvalidOperationException("The event loop stopped before the future completed (Stop() was called while RunUntilComplete waited).");
        }
    }

    private static readonly Action<object?, object?> s_stopLoop = static (_, loop) => ((BaseEventLoop)loop!).Stop();

    /// <inheritdoc/>
    public void Stop()
    {
        _stopping = true;
        if (!IsOnLoopThread)
        {
            // From another thread the loop may be blocked waiting for I/O with nothing scheduled:
            // wake it, or it would only see the flag when something else happened. The loop thread
            // itself reads the flag before it next waits, so it needs no system call.
            lock (_threadSafeLock)
            {
                if (!_closed)
                {
                    WriteToSelf();
                }
            }
        }
    }

    /// <inheritdoc/>
    public void Close()
    {
        if (IsRunning)
        {
            throw new InvalidOperationException("Cannot close a running event loop: call Stop() first, and Close() once RunForever has returned.");
        }

        List<ReadyItem> fromOtherThreads;
        lock (_threadSafeLock)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            fromOtherThreads = _threadSafeQueue;
            _threadSafeQueue = new List<ReadyItem>();
            _threadSafeHasItems = false;
        }

        if (_debug && Logger.IsEnabled(LogLevel.Debug) && (_ready.Count > 0 || _timers.Count > _cancelledTimers))
        {
            Log.LoopClosingWithPendingCallbacks(Logger, _ready.Count, _timers.Count - _cancelledTimers);
        }

        DeliverReportsAtClose(fromOtherThreads);
        _ready.Clear();
        _timers.Clear();
        _cancelledTimers = 0;
        _executorShutDown = true;
        RunCloseHooks();
        CloseSignalHandlers();
        CloseCore();
        UnregisterMetrics();
    }

    /// <summary>Closes the loop.</summary>
    public void Dispose()
    {
        Close();
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// The loop stopped running (on its thread, before <see cref="RunForever"/> returns): a loop that
    /// queues work for its multiplexer to submit with the next wait (the io_uring loop's sends) hands it
    /// over now, so what was written before the stop reaches the kernel while the loop is not running.
    /// </summary>
    private protected virtual void OnRunStopped()
    {
    }

    /// <summary>One iteration of the loop: see the class remarks.</summary>
    private void RunOnce()
    {
        DrainThreadSafeQueue();
        DropCancelledTimers();

        double timeout;
        if (_ready.Count > 0 || _stopping || _threadSafeHasItems)
        {
            timeout = 0;
        }
        else if (_timers.Count > 0)
        {
            timeout = Math.Clamp(_timers.Peek().When - Time(), 0, MaximumSelectTimeout);
        }
        else
        {
            timeout = -1;
        }

        ProcessEvents(timeout);
        DrainThreadSafeQueue();

        if (_timers.Count > 0)
        {
            double endTime = Time() + ClockResolution;
            while (_timers.Count > 0)
            {
                var timer = _timers.Peek();
                if (timer.When >= endTime)
                {
                    break;
                }

                _timers.Pop();
                if (timer.Cancelled)
                {
                    _cancelledTimers--;
                    continue;
                }

                _ready.Enqueue(new ReadyItem(s_runTimer, timer, null));
            }
        }

        // Run only what is ready now; what these callbacks schedule runs next iteration.
        int ntodo = _ready.Count;
        MetricIterations++;
        MetricCallbacks += ntodo;
        if (_debug || Diagnostics.TulipMetrics.TimingWanted)
        {
            RunReadyTimed(ntodo);
            return;
        }

        for (int i = 0; i < ntodo; i++)
        {
            var item = _ready.Dequeue();
            try
            {
                item.Callback(item.Arg1, item.Arg2);
            }
            catch (Exception ex)
            {
                ReportCallbackException(item, ex);
            }
        }
    }

    /// <summary>
    /// The ready callbacks, each timed: in debug mode (slow ones are logged) and while the metrics of
    /// slow callbacks or loop lag are listened to (counted, recorded).
    /// </summary>
    private void RunReadyTimed(int ntodo)
    {
        var lag = Diagnostics.TulipMetrics.Lag;
        for (int i = 0; i < ntodo; i++)
        {
            var item = _ready.Dequeue();
            if (ReferenceEquals(item.Callback, s_runTimer) && lag.Enabled && item.Arg1 is TimerHandle due)
            {
                lag.Record(Math.Max(0, Time() - due.When), MetricTags);
            }

            long start = Stopwatch.GetTimestamp();
            try
            {
                item.Callback(item.Arg1, item.Arg2);
            }
            catch (Exception ex)
            {
                ReportCallbackException(item, ex);
            }

            double took = (Stopwatch.GetTimestamp() - start) * s_secondsPerTick;
            if (took < SlowCallbackDuration)
            {
                continue;
            }

            MetricSlowCallbacks++;
            if (_debug && Logger.IsEnabled(LogLevel.Warning))
            {
                string where = item.Arg1 is Handle { SourceTraceback: { } tb } ? $"; created at:\n{tb}" : string.Empty;
                Log.SlowCallback(Logger, DescribeItem(item), took, where);
            }
        }
    }

    private void ReportCallbackException(in ReadyItem item, Exception ex)
    {
        CallExceptionHandler(new ExceptionContext($"Exception in callback {DescribeItem(item)}")
        {
            Exception = ex,
            Handle = item.Arg1 as Handle,
            Future = item.Arg2 as Future ?? item.Arg1 as Future,
        });
    }

    private static string DescribeItem(in ReadyItem item) => item.Arg1 switch
    {
        Handle h => h.ToString(),
        _ when item.Arg2 is Future task => $"step of {task}",
        _ => Handle.Describe(item.Callback),
    };

    private void DropCancelledTimers()
    {
        if (_timers.Count > MinTimersToPurge && _cancelledTimers * 2 > _timers.Count)
        {
            _timers.RemoveCancelled();
            _cancelledTimers = 0;
        }
        else
        {
            DropCancelledTopTimers();
        }
    }

    private void DropCancelledTopTimers()
    {
        while (_timers.Count > 0 && _timers.Peek().Cancelled)
        {
            _timers.Pop();
            _cancelledTimers--;
        }
    }

    /// <summary>Called by a scheduled timer when it is cancelled; sweeps the heap once most of it is cancelled.</summary>
    internal void TimerHandleCancelled()
    {
        _cancelledTimers++;
        if (_timers.Count > MinTimersToPurge && _cancelledTimers * 2 > _timers.Count)
        {
            _timers.RemoveCancelled();
            _cancelledTimers = 0;
        }
    }

    // ---- Scheduling -----------------------------------------------------------------------------

    /// <inheritdoc/>
    public Handle CallSoon(Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        CheckCallable();
        var handle = new ActionHandle(this, callback);
        _ready.Enqueue(new ReadyItem(s_runHandle, handle, null));
        return handle;
    }

    /// <inheritdoc/>
    public Handle CallSoon<TState>(Action<TState> callback, TState state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        CheckCallable();
        var handle = new StateHandle<TState>(this, callback, state);
        _ready.Enqueue(new ReadyItem(StateHandle<TState>.RunItem, handle, null));
        return handle;
    }

    /// <inheritdoc/>
    public TimerHandle CallLater(double delay, Action callback)
    {
        CheckDelay(delay);
        return CallAt(Time() + delay, callback);
    }

    /// <inheritdoc/>
    public TimerHandle CallLater<TState>(double delay, Action<TState> callback, TState state)
    {
        CheckDelay(delay);
        return CallAt(Time() + delay, callback, state);
    }

    /// <inheritdoc/>
    public TimerHandle CallLater(TimeSpan delay, Action callback) => CallLater(Tasks.FiniteSeconds(delay, nameof(delay)), callback);

    /// <inheritdoc/>
    public TimerHandle CallLater<TState>(TimeSpan delay, Action<TState> callback, TState state) =>
        CallLater(Tasks.FiniteSeconds(delay, nameof(delay)), callback, state);

    /// <inheritdoc/>
    public TimerHandle CallAt(double when, Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        CheckWhen(when);
        CheckCallable();
        var timer = new ActionTimerHandle(this, when, _timerSequence++, callback);
        _timers.Push(timer);
        return timer;
    }

    /// <inheritdoc/>
    public TimerHandle CallAt<TState>(double when, Action<TState> callback, TState state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        CheckWhen(when);
        CheckCallable();
        var timer = new StateTimerHandle<TState>(this, when, _timerSequence++, callback, state);
        _timers.Push(timer);
        return timer;
    }

    /// <summary>
    /// Schedules an internal callback for the next iteration without allocating: the hot path of
    /// futures, tasks and transports. Loop thread only.
    /// </summary>
    internal void ScheduleInternal(Action<object?, object?> callback, object? arg1, object? arg2)
    {
        if (_debug)
        {
            CheckThread();
        }

        _ready.Enqueue(new ReadyItem(callback, arg1, arg2));
    }

    /// <summary>
    /// Adds a handle (made by a multiplexer for a ready fd, with <see cref="CreateReadyHandle{TState}"/>
    /// or <see cref="IReadinessEventLoop.CreateIoHandle{TState}"/>) to the ready queue: it runs in
    /// this iteration's run phase, unless it is cancelled first. Loop thread only; unchecked, as
    /// it runs once per I/O event.
    /// </summary>
    protected void AddReadyHandle(Handle handle) => _ready.Enqueue(new ReadyItem(s_runHandle, handle, null));

    /// <summary>
    /// Makes a handle that runs <paramref name="callback"/>(<paramref name="state"/>) each time it is
    /// given to <see cref="AddReadyHandle"/>, until it is cancelled: what a multiplexer keeps per
    /// watched fd or pending operation, so that <see cref="ProcessEvents"/> allocates nothing per event.
    /// </summary>
    protected Handle CreateReadyHandle<TState>(Action<TState> callback, TState state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        return new StateHandle<TState>(this, callback, state);
    }

    private static void CheckDelay(double delay)
    {
        if (double.IsNaN(delay))
        {
            throw new ArgumentOutOfRangeException(nameof(delay), "The delay is NaN: give a number of seconds (negative means now).");
        }
    }

    private static void CheckWhen(double when)
    {
        if (double.IsNaN(when))
        {
            throw new ArgumentOutOfRangeException(nameof(when), "The time is NaN: give a time on the loop's clock (loop.Time() + seconds).");
        }
    }

    // ---- Tasks -------------------------------------------------------------------------------

    /// <inheritdoc/>
    public Future<T> CreateFuture<T>() => new Future<T>(this);

    /// <inheritdoc/>
    public Future<object?> CreateFuture() => new Future<object?>(this);

    /// <inheritdoc/>
    public LoopTask<T> CreateTask<T>(Func<LoopTask<T>> coroutine, string? name = null, bool eagerStart = true)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckClosed();
        if (t_runningLoop == this)
        {
            var task = eagerStart && name is null ? coroutine() : InvokeWithTaskOptions(coroutine, name, deferStart: !eagerStart);
            if (name is not null)
            {
                task.Name = name;
            }

            return task;
        }

        CheckCallable();
        return new DeferredTask<T>(this, coroutine, name);
    }

    /// <inheritdoc/>
    public LoopTask CreateTask(Func<LoopTask> coroutine, string? name = null, bool eagerStart = true)
    {
        ArgumentNullException.ThrowIfNull(coroutine);
        CheckClosed();
        if (t_runningLoop == this)
        {
            var task = eagerStart && name is null ? coroutine() : InvokeWithTaskOptions(coroutine, name, deferStart: !eagerStart);
            if (name is not null)
            {
                task.Name = name;
            }

            return task;
        }

        CheckCallable();
        return new DeferredVoidTask(this, coroutine, name);
    }

    /// <inheritdoc/>
    public IReadOnlyCollection<ILoopTask> AllTasks()
    {
        var list = new List<ILoopTask>(_taskCount);
        for (var t = _tasksHead; t is not null; t = t.TaskNext)
        {
            if (!t.Done)
            {
                list.Add(t);
            }
        }

        return list;
    }

    internal Future? SwapCurrentTask(Future? task)
    {
        var previous = _currentTask;
        _currentTask = task;
        return previous;
    }

    internal void RegisterTask(ILoopTask task)
    {
        task.TaskNext = _tasksHead;
        if (_tasksHead is not null)
        {
            _tasksHead.TaskPrev = task;
        }

        _tasksHead = task;
        _taskCount++;
    }

    internal void UnregisterTask(ILoopTask task)
    {
        var prev = task.TaskPrev;
        var next = task.TaskNext;
        if (prev is null && next is null && !ReferenceEquals(_tasksHead, task))
        {
            return;
        }

        if (prev is null)
        {
            _tasksHead = next;
        }
        else
        {
            prev.TaskNext = next;
        }

        if (next is not null)
        {
            next.TaskPrev = prev;
        }

        task.TaskPrev = null;
        task.TaskNext = null;
        _taskCount--;
    }

    /// <summary>The loop running on this thread, for a coroutine that is starting.</summary>
    internal static BaseEventLoop RunningLoopForNewTask() =>
        t_runningLoop ?? throw new InvalidOperationException(
            "An async LoopTask method was called on a thread with no running event loop. Start it inside the loop: " +
            "EventLoop.Run(MainAsync), loop.RunUntilComplete(MainAsync), loop.CreateTask(...), or from another thread loop.RunCoroutineThreadSafe(...).");

    /// <summary>The loop running on this thread, or null.</summary>
    internal static BaseEventLoop? RunningLoopOrNull => t_runningLoop;

    internal static BaseEventLoop FromInterface(IEventLoop loop) =>
        loop as BaseEventLoop ?? throw new ArgumentException(
            $"{loop?.GetType().Name ?? "null"} is not a Tulip event loop derived from BaseEventLoop; futures need one.", nameof(loop));

    // ---- Thread checks ------------------------------------------------------------------------

    private void CheckClosed()
    {
        if (_closed)
        {
            ThrowClosed();
        }
    }

    private static void ThrowClosed() => throw new InvalidOperationException("The event loop is closed: create a new one with EventLoop.NewEventLoop().");

    /// <summary>The checks every non-thread-safe scheduling method makes: closed, and in debug mode the thread.</summary>
    private void CheckCallable()
    {
        CheckClosed();
        if (_debug)
        {
            CheckThread();
        }
    }

    /// <summary>Throws if the loop runs on another thread than the caller's (debug mode calls it from every loop method).</summary>
    protected void CheckThread()
    {
        int owner = _threadId;
        if (owner != 0 && owner != Environment.CurrentManagedThreadId)
        {
            throw new InvalidOperationException(
                "A non-thread-safe event loop method was called from a thread that is not the loop's. " +
                "From other threads use loop.CallSoonThreadSafe(...) or loop.RunCoroutineThreadSafe(...).");
        }
    }

    /// <summary>Refuses to await a loop future except on the thread running its loop.</summary>
    internal void CheckAwaitThread(Future future)
    {
        if (_threadId != Environment.CurrentManagedThreadId)
        {
            ThrowAwaitFromWrongThread(future);
        }
    }

    private void ThrowAwaitFromWrongThread(Future future) => throw new InvalidOperationException(
        $"{future} can only be awaited on the thread running its event loop{(IsRunning ? string.Empty : " (the loop is not running)")}. " +
        "From another thread, submit the work with loop.RunCoroutineThreadSafe(...) and await the .NET Task it returns, or await future.AsTask().");

    /// <summary>True when the caller runs on the loop's thread while the loop runs.</summary>
    internal bool IsOnLoopThread => _threadId == Environment.CurrentManagedThreadId;
}
