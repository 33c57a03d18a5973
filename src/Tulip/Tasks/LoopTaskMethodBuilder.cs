using System;
using System.ComponentModel;
using System.Runtime.CompilerServices;

namespace Tulip;

/// <summary>Builds <c>async LoopTask&lt;T&gt;</c> methods. Used by the compiler; not for direct use.</summary>
/// <typeparam name="T">The result type.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public struct LoopTaskMethodBuilder<T>
{
    private LoopTask<T>? _task;

    /// <summary>Creates a builder.</summary>
    public static LoopTaskMethodBuilder<T> Create() => default;

    /// <summary>The task.</summary>
    public LoopTask<T> Task => _task!;

    /// <summary>
    /// Starts the coroutine on the running loop: it runs until its first pending await (or, inside
    /// <c>CreateTask(..., eagerStart: false)</c>, from the loop's next iteration).
    /// </summary>
    public void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine
    {
        var loop = BaseEventLoop.RunningLoopForNewTask();
        var box = new StateMachineTask<T, TStateMachine>(loop);
        _task = box;
        box.StateMachine = stateMachine;
        bool deferStart = loop.TakeTaskOptions(out var name);
        if (name is not null)
        {
            box.Name = name;
        }

        if (deferStart)
        {
            box.StartLater();
        }
        else
        {
            box.Step();
        }
    }

    /// <summary>Not used: the state machine is boxed by <see cref="Start"/>.</summary>
    public void SetStateMachine(IAsyncStateMachine stateMachine)
    {
    }

    /// <summary>Finishes the task with the body's result.</summary>
    public void SetResult(T result) => _task!.CompleteFromBody(result);

    /// <summary>Finishes the task with the body's exception (a cancellation cancels it).</summary>
    public void SetException(Exception exception) => _task!.FailFromBody(exception);

    /// <summary>Suspends the task on an awaiter.</summary>
    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine
        => _task!.AwaitCore(ref awaiter);

    /// <summary>Suspends the task on an awaiter.</summary>
    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine
        => _task!.AwaitCore(ref awaiter);

}

/// <summary>Builds <c>async LoopTask</c> methods. Used by the compiler; not for direct use.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public struct LoopTaskMethodBuilder
{
    private LoopTask? _task;

    /// <summary>Creates a builder.</summary>
    public static LoopTaskMethodBuilder Create() => default;

    /// <summary>The task.</summary>
    public LoopTask Task => _task!;

    /// <summary>
    /// Starts the coroutine on the running loop: it runs until its first pending await (or, inside
    /// <c>CreateTask(..., eagerStart: false)</c>, from the loop's next iteration).
    /// </summary>
    public void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine
    {
        var loop = BaseEventLoop.RunningLoopForNewTask();
        var box = new VoidStateMachineTask<TStateMachine>(loop);
        _task = box;
        box.StateMachine = stateMachine;
        bool deferStart = loop.TakeTaskOptions(out var name);
        if (name is not null)
        {
            box.Name = name;
        }

        if (deferStart)
        {
            box.StartLater();
        }
        else
        {
            box.Step();
        }
    }

    /// <summary>Not used: the state machine is boxed by <see cref="Start"/>.</summary>
    public void SetStateMachine(IAsyncStateMachine stateMachine)
    {
    }

    /// <summary>Finishes the task.</summary>
    public void SetResult() => _task!.CompleteFromBody(default);

    /// <summary>Finishes the task with the body's exception (a cancellation cancels it).</summary>
    public void SetException(Exception exception) => _task!.FailFromBody(exception);

    /// <summary>Suspends the task on an awaiter.</summary>
    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine
        => _task!.AwaitCore(ref awaiter);

    /// <summary>Suspends the task on an awaiter.</summary>
    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine
        => _task!.AwaitCore(ref awaiter);

}

/// <summary>A task whose body is a compiler-generated state machine, boxed with it (one allocation per call).</summary>
internal sealed class StateMachineTask<T, TStateMachine> : LoopTask<T>
    where TStateMachine : IAsyncStateMachine
{
    public TStateMachine StateMachine = default!;

    public StateMachineTask(BaseEventLoop loop) : base(loop)
    {
    }

    private protected override void MoveNextCore() => StateMachine.MoveNext();
}

/// <summary>A result-less task whose body is a compiler-generated state machine.</summary>
internal sealed class VoidStateMachineTask<TStateMachine> : LoopTask
    where TStateMachine : IAsyncStateMachine
{
    public TStateMachine StateMachine = default!;

    public VoidStateMachineTask(BaseEventLoop loop) : base(loop)
    {
    }

    private protected override void MoveNextCore() => StateMachine.MoveNext();
}

/// <summary>
/// A task created with <c>CreateTask</c> outside its running loop: the coroutine is invoked on
/// the loop's next iteration (asyncio's <c>create_task</c>), and the task follows it.
/// </summary>
internal sealed class DeferredTask<T> : LoopTask<T>
{
    private Func<LoopTask<T>>? _coroutine;
    private LoopTask<T>? _inner;

    public DeferredTask(BaseEventLoop loop, Func<LoopTask<T>> coroutine, string? name) : base(loop, name)
    {
        _coroutine = coroutine;
        loop.ScheduleInternal(TaskStepper.Wake, null, this);
    }

    private protected override void MoveNextCore() => StepDeferred(ref _coroutine, ref _inner);
}

/// <summary>A result-less <see cref="DeferredTask{T}"/>.</summary>
internal sealed class DeferredVoidTask : LoopTask
{
    private Func<LoopTask<VoidResult>>? _coroutine;
    private LoopTask<VoidResult>? _inner;

    public DeferredVoidTask(BaseEventLoop loop, Func<LoopTask> coroutine, string? name) : base(loop, name)
    {
        _coroutine = coroutine;
        loop.ScheduleInternal(TaskStepper.Wake, null, this);
    }

    private protected override void MoveNextCore() => StepDeferred(ref _coroutine, ref _inner);
}
