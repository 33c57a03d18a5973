using System;

namespace Tulip;

public abstract partial class BaseEventLoop
{
    // Set by CreateTask around the call of the coroutine, taken by the builder of the first async
    // LoopTask method that starts then: its name (so the body sees it from its first line) and
    // whether its first step waits for the next iteration (eagerStart: false). Guarded by: the loop thread.
    private bool _nextTaskOptionsSet;
    private bool _deferNextTaskStart;
    private string? _nextTaskName;

    /// <summary>
    /// Calls <paramref name="coroutine"/> so that the task it starts is named <paramref name="name"/>
    /// before it runs and, if <paramref name="deferStart"/>, runs its first step on the next
    /// iteration rather than now (a lazy task, asyncio's default <c>create_task</c>).
    /// </summary>
    internal TTask InvokeWithTaskOptions<TTask>(Func<TTask> coroutine, string? name, bool deferStart)
    {
        _nextTaskOptionsSet = true;
        _nextTaskName = name;
        _deferNextTaskStart = deferStart;
        try
        {
            return coroutine();
        }
        finally
        {
            _nextTaskOptionsSet = false;
            _nextTaskName = null;
            _deferNextTaskStart = false;
        }
    }

    /// <summary>For the task builder: the options of the task starting now, taken once; true if it is to start lazily.</summary>
    internal bool TakeTaskOptions(out string? name)
    {
        if (!_nextTaskOptionsSet)
        {
            name = null;
            return false;
        }

        name = _nextTaskName;
        bool defer = _deferNextTaskStart;
        _nextTaskOptionsSet = false;
        _nextTaskName = null;
        _deferNextTaskStart = false;
        return defer;
    }
}
