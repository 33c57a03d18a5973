using System;
using System.Collections.Generic;
using System.Linq;

namespace Tulip;

/// <summary>
/// asyncio's <c>Runner</c>: one loop for several <see cref="Run{T}"/> calls, closed (with the
/// cleanup <see cref="EventLoop.Run{T}"/> does) when disposed.
/// </summary>
/// <remarks>
/// <para>
/// The loop comes from the factory given to the constructor, or else from the policy
/// (<see cref="EventLoop.NewEventLoop"/>), whose default makes the kind the environment variable
/// <c>TULIP_LOOP</c> names (<see cref="EventLoopKinds"/>).
/// </para>
/// <para>
/// Ctrl-C, as asyncio 3.11's runner: while <see cref="Run{T}"/> runs a main task, the first SIGINT
/// cancels that task (<see cref="CancelledError"/> at its await) and lets it clean up; if it then
/// ends cancelled, <see cref="Run{T}"/> throws <see cref="KeyboardInterruptException"/>, which,
/// left unhandled, ends the process with status 130. A task that catches the cancellation and
/// returns makes <see cref="Run{T}"/> return normally. A second SIGINT, or one that arrives when no
/// main task runs (before or after <see cref="Run{T}"/>, during <see cref="Dispose"/>), gets .NET's
/// default: the process ends at once, killed by SIGINT (status 130), with no <c>finally</c> run.
/// A loop with its own SIGINT handler (<see cref="IEventLoop.AddSignalHandler"/>) keeps SIGINT to
/// itself, and a process that started with SIGINT ignored keeps ignoring it.
/// </para>
/// <para>
/// SIGTERM is left alone, as asyncio leaves it: .NET's default ends the process at once (status
/// 143, no <c>finally</c>, no <see cref="AppDomain.ProcessExit"/>). To clean up on SIGTERM too,
/// cancel the main task from a handler set inside it:
/// <c>var me = Tasks.CurrentTask()!; loop.AddSignalHandler(PosixSignal.SIGTERM, () => me.Cancel());</c>
/// (<see cref="Run{T}"/> then throws <see cref="CancelledError"/> after the cleanup).
/// </para>
/// </remarks>
public sealed partial class Runner : IDisposable
{
    private readonly bool? _debug;
    private readonly Func<IEventLoop>? _loopFactory;
    private IEventLoop? _loop;
    private bool _closed;

    /// <summary>Creates a runner; the loop is made on first use.</summary>
    /// <param name="debug">Debug mode for the loop; null keeps the default.</param>
    /// <param name="loopFactory">Makes the loop (asyncio's <c>loop_factory</c>); null uses the policy's <c>NewEventLoop</c>,
    /// which by default makes the kind <c>TULIP_LOOP</c> names.</param>
    public Runner(bool? debug = null, Func<IEventLoop>? loopFactory = null)
    {
        _debug = debug;
        _loopFactory = loopFactory;
    }

    /// <summary>The runner's loop (created if needed).</summary>
    public IEventLoop Loop => EnsureLoop();

    /// <summary>
    /// Runs <paramref name="main"/> as a task on the runner's loop until it is done; a first
    /// SIGINT meanwhile cancels it (see the remarks on <see cref="Runner"/>).
    /// </summary>
    /// <returns>What <paramref name="main"/> returned.</returns>
    /// <exception cref="InvalidOperationException">A loop runs on this thread already.</exception>
    /// <exception cref="ObjectDisposedException">The runner is disposed.</exception>
    /// <exception cref="KeyboardInterruptException">SIGINT cancelled the main task, which ended cancelled after its cleanup.</exception>
    /// <exception cref="CancelledError">The main task was cancelled otherwise.</exception>
    public T Run<T>(Func<LoopTask<T>> main)
    {
        ArgumentNullException.ThrowIfNull(main);
        if (EventLoop.TryGetRunningLoop() is not null)
        {
            throw new InvalidOperationException("Runner.Run (and EventLoop.Run) cannot be called while an event loop runs on this thread; await the coroutine instead.");
        }

        var loop = EnsureLoop();
        var task = loop.CreateTask(main);
        using var interrupt = Interrupt.Install(loop, task);
        try
        {
            return loop.RunUntilComplete(task);
        }
        catch (CancelledError cancelled) when (interrupt.Interrupted && task.Uncancel() == 0)
        {
            // The cancellation was ours alone (asyncio: uncancel() == 0): the interrupt, not a cancel from the program.
            throw new KeyboardInterruptException(null, cancelled);
        }
    }

    /// <summary>Runs <paramref name="main"/> as a task on the runner's loop until it is done; see <see cref="Run{T}"/>.</summary>
    /// <exception cref="InvalidOperationException">A loop runs on this thread already.</exception>
    /// <exception cref="ObjectDisposedException">The runner is disposed.</exception>
    /// <exception cref="KeyboardInterruptException">SIGINT cancelled the main task, which ended cancelled after its cleanup.</exception>
    /// <exception cref="CancelledError">The main task was cancelled otherwise.</exception>
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
            _loop = _loopFactory is null
                ? EventLoop.NewEventLoop()
                : _loopFactory() ?? throw new InvalidOperationException("The Runner's loop factory returned null; it must return a new event loop.");
            if (_debug is { } debug)
            {
                _loop.Debug = debug;
            }

            EventLoop.SetEventLoop(_loop);
        }

        return _loop;
    }

    /// <summary>Cancels the loop's tasks, waits for them, and reports those that failed otherwise.</summary>
    internal static void CancelAllTasks(IEventLoop loop)
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
