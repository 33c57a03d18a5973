using System;
using System.Collections.Generic;
using System.Linq;

namespace Tulip;

/// <summary>
/// asyncio's <c>Runner</c>: one loop for several <see cref="Run{T}"/> calls, closed (with the
/// cleanup <see cref="EventLoop.Run{T}"/> does) when disposed.
/// </summary>
public sealed class Runner : IDisposable
{
    private readonly bool? _debug;
    private readonly Func<IEventLoop>? _loopFactory;
    private IEventLoop? _loop;
    private bool _closed;

    /// <summary>Creates a runner; the loop is made on first use.</summary>
    /// <param name="debug">Debug mode for the loop; null keeps the default.</param>
    /// <param name="loopFactory">Makes the loop; the policy's <c>NewEventLoop</c> by default.</param>
    public Runner(bool? debug = null, Func<IEventLoop>? loopFactory = null)
    {
        _debug = debug;
        _loopFactory = loopFactory;
    }

    /// <summary>The runner's loop (created if needed).</summary>
    public IEventLoop Loop => EnsureLoop();

    /// <summary>Runs <paramref name="main"/> as a task on the runner's loop until it is done.</summary>
    public T Run<T>(Func<LoopTask<T>> main)
    {
        ArgumentNullException.ThrowIfNull(main);
        if (EventLoop.TryGetRunningLoop() is not null)
        {
            throw new InvalidOperationException("Runner.Run (and EventLoop.Run) cannot be called while an event loop runs on this thread; await the coroutine instead.");
        }

        var loop = EnsureLoop();
        return loop.RunUntilComplete(main);
    }

    /// <summary>Runs <paramref name="main"/> as a task on the runner's loop until it is done.</summary>
    public void Run(Func<LoopTask> main)
    {
        ArgumentNullException.ThrowIfNull(main);
        Run<VoidResult>(main);
    }

    /// <summary>Cancels what is left, shuts down the default executor and closes the loop. Idempotent.</summary>
    public void Dispose()
    {
        if (_closed)
        {
            return;
        }

        _closed = true;
        var loop = _loop;
        if (loop is null)
        {
            return;
        }

        try
        {
            CancelAllTasks(loop);
            loop.RunUntilComplete(() => loop.ShutdownDefaultExecutorAsync());
        }
        finally
        {
            EventLoop.SetEventLoop(null);
            loop.Close();
        }
    }

    private IEventLoop EnsureLoop()
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        if (_loop is null)
        {
            _loop = _loopFactory?.Invoke() ?? EventLoop.NewEventLoop();
            if (_debug is { } debug)
            {
                _loop.Debug = debug;
            }

            EventLoop.SetEventLoop(_loop);
        }

        return _loop;
    }

    /// <summary>Cancels the loop's tasks, waits for them, and reports those that failed otherwise.</summary>
    private static void CancelAllTasks(IEventLoop loop)
    {
        var tasks = new List<Future>(loop.AllTasks().Select(static t => t.AsFuture));
        if (tasks.Count == 0)
        {
            return;
        }

        foreach (var task in tasks)
        {
            task.Cancel();
        }

        var all = Tasks.Gather(loop, tasks, returnExceptions: true);
        loop.RunUntilComplete(all);
        foreach (var task in tasks)
        {
            if (!task.Cancelled && task.Exception() is { } ex)
            {
                loop.CallExceptionHandler(new ExceptionContext("Unhandled exception during EventLoop.Run() shutdown")
                {
                    Exception = ex,
                    Future = task,
                });
            }
        }
    }
}
