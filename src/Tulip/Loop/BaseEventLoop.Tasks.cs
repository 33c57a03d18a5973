using System;

namespace Tulip;

public abstract partial class BaseEventLoop
{
    // Set by CreateTask(..., eagerStart: false) around the call of the coroutine: the builder of the
    // first async LoopTask method that starts then schedules its first step instead of running it.
    // Guarded by: the loop thread.
    private bool _deferNextTaskStart;

    /// <summary>
    /// Calls <paramref name="coroutine"/> so that the task it starts runs its first step on the next
    /// iteration rather than now (a lazy task, asyncio's default <c>create_task</c>).
    /// </summary>
    private TTask InvokeDeferringStart<TTask>(Func<TTask> coroutine)
    {
        _deferNextTaskStart = true;
        try
        {
            return coroutine();
        }
        finally
        {
            _deferNextTaskStart = false;
        }
    }

    /// <summary>For the task builder: true (once) if the task starting now is to start lazily.</summary>
    internal bool TakeDeferredTaskStart()
    {
        if (!_deferNextTaskStart)
        {
            return false;
        }

        _deferNextTaskStart = false;
        return true;
    }
}
