using System;
using System.Collections.Concurrent;
using System.Threading;
using Microsoft.Extensions.Logging;

namespace Tulip;

/// <summary>
/// A notify-on-completion event loop (asyncio's <c>ProactorEventLoop</c>): transports start .NET
/// asynchronous socket operations (<see cref="System.Net.Sockets.SocketAsyncEventArgs"/>, IOCP on
/// Windows, the runtime's own engine elsewhere) and are called back on the loop thread when each
/// one completes. No fd readiness is involved, so the loop runs wherever .NET's sockets do.
/// </summary>
/// <remarks>
/// <para>
/// Completions arrive on pool threads. Each is handed to the loop as one queue entry, the
/// operation's own reusable <see cref="Handle"/> (no closure, no <c>Task</c>), and at most one
/// wake-up is signalled per drain: the first completion after the loop last drained sets the
/// event <see cref="ProcessEvents"/> waits on (with the timer timeout); the others only enqueue.
/// The handles then run in the iteration's run phase, as a selector loop's readiness handles do.
/// </para>
/// <para>
/// <see cref="AddReader"/>, <see cref="AddWriter"/> and their removals are refused with
/// <see cref="NotSupportedException"/>, as asyncio's proactor refuses them: readiness callbacks are
/// <see cref="SelectorEventLoop"/>'s. The loop does not implement <see cref="IReadinessEventLoop"/>.
/// </para>
/// <para>Nothing here calls native code: System.Net.Sockets and System.Threading only.</para>
/// </remarks>
public sealed partial class ProactorEventLoop : BaseEventLoop
{
    // Completed operations, in completion order: written by pool threads, drained by the loop thread.
    private readonly ConcurrentQueue<Handle> _completions = new();
    // The wake-up ProcessEvents waits on. Spinning is off: on a busy machine a spinning loop thread
    // takes the core the completing pool thread needs.
    private readonly ManualResetEventSlim _wakeup = new(false, 0);
    // 1 while a wake-up is signalled and not yet consumed by the loop: later posters skip the Set.
    private int _wakeupSignalled;
    // Set by CloseCore: completions that arrive afterwards are dropped (their transports are gone with the loop).
    private volatile bool _closedCore;

    /// <summary>Creates a proactor loop.</summary>
    /// <param name="loggerFactory">Where the loop logs; stderr if null.</param>
    public ProactorEventLoop(ILoggerFactory? loggerFactory = null) : base(loggerFactory)
    {
        // Pipes: the proactor's own implementation, found through the registry (seed 002).
        Transports.Register<IPipeTransportFactory>(new ProactorPipeTransportFactory());
    }

    /// <summary>Completions queued and not yet drained (for tests and diagnostics).</summary>
    internal int PendingCompletions => _completions.Count;

    /// <summary>Whether the loop's wake-up event is set (for tests: it must not stay set once consumed).</summary>
    internal bool WakeupIsSet => _wakeup.IsSet;

    /// <summary>For tests: a poster's two steps apart, to replay the interleaving where its Set comes after the drain.</summary>
    internal bool TakeWakeupFlagForTest() => Interlocked.Exchange(ref _wakeupSignalled, 1) == 0;

    /// <summary>For tests: the second step of <see cref="TakeWakeupFlagForTest"/>.</summary>
    internal void SetWakeupForTest() => _wakeup.Set();

    /// <summary>
    /// Hands a completed operation's handle to the loop: it runs on the loop thread in a coming
    /// iteration. Any thread; allocation-free in the steady state. Dropped once the loop is closed.
    /// </summary>
    internal void PostCompletion(Handle handle)
    {
        if (_closedCore)
        {
            return;
        }

        _completions.Enqueue(handle);
        Signal();
    }

    /// <summary>Runs a handle of an operation that completed synchronously on a later iteration. Loop thread only.</summary>
    internal void ScheduleCompletion(Handle handle) => AddReadyHandle(handle);

    /// <summary>Makes a reusable completion handle (loop thread).</summary>
    internal Handle MakeCompletionHandle<TState>(Action<TState> callback, TState state) => CreateReadyHandle(callback, state);

    private void Signal()
    {
        if (Interlocked.Exchange(ref _wakeupSignalled, 1) == 0)
        {
            _wakeup.Set();
        }
    }

    /// <inheritdoc/>
    protected override void ProcessEvents(double timeout)
    {
        if (timeout != 0 && _completions.IsEmpty)
        {
            int timeoutMs = timeout < 0 ? Timeout.Infinite : (int)Math.Min(Math.Ceiling(timeout * 1000), int.MaxValue);
            _wakeup.Wait(timeoutMs);
        }

        // Consume the wake-up before draining: a completion queued after this point either is
        // drained below or finds the flag clear and sets the event for the next wait. The event is
        // reset whenever it is set, not only when the flag is: a poster that took the flag before the
        // last drain may call Set only after it, and an event left set with the flag clear would make
        // every later wait return at once (a spinning idle loop) until the next completion.
        if (_wakeup.IsSet)
        {
            _wakeup.Reset();
        }

        if (Volatile.Read(ref _wakeupSignalled) != 0)
        {
            Volatile.Write(ref _wakeupSignalled, 0);
            Interlocked.MemoryBarrier();
        }

        while (_completions.TryDequeue(out var handle))
        {
            AddReadyHandle(handle);
        }
    }

    /// <inheritdoc/>
    protected override void WriteToSelf() => Signal();

    /// <inheritdoc/>
    protected override void CloseCore()
    {
        _closedCore = true;
        _completions.Clear();
        // _wakeup is not disposed: a pool thread may still be inside Signal. It holds no OS handle
        // unless its WaitHandle is asked for, which never happens here.
    }

    /// <inheritdoc/>
    public override Handle AddReader(int fd, Action callback) => throw ReadinessUnsupported(nameof(AddReader));

    /// <inheritdoc/>
    public override bool RemoveReader(int fd) => throw ReadinessUnsupported(nameof(RemoveReader));

    /// <inheritdoc/>
    public override Handle AddWriter(int fd, Action callback) => throw ReadinessUnsupported(nameof(AddWriter));

    /// <inheritdoc/>
    public override bool RemoveWriter(int fd) => throw ReadinessUnsupported(nameof(RemoveWriter));

    private static NotSupportedException ReadinessUnsupported(string member) =>
        new($"ProactorEventLoop does not support {member}: it is a completion loop, with no fd readiness. " +
            "Use SelectorEventLoop (TULIP_LOOP=epoll or poll) for readiness callbacks.");

    /// <inheritdoc/>
    protected override string SupportHint(string member) => member switch
    {
        nameof(SubprocessExecAsync) or nameof(SubprocessShellAsync) => base.SupportHint(member),
        _ => "ProactorEventLoop does not provide it yet (issue 12); SelectorEventLoop (TULIP_LOOP=epoll or poll) does.",
    };
}
