using System;
using System.Runtime.CompilerServices;
using System.Threading;

namespace Tulip.Synchronization;

/// <summary>
/// asyncio's <c>mixins._LoopBoundMixin</c>: a primitive is made anywhere and bound to the loop
/// running on the thread where it is first used; from then on it refuses every other loop and
/// every thread but its loop's, with a message naming both loops or saying what to do instead.
/// </summary>
/// <remarks>
/// A mutable struct held in a field of its primitive (never copied). The binding itself is the one
/// write that may race between threads (two loops using a fresh primitive at once), so it is made
/// with a compare-exchange: exactly one loop wins and the other gets the error.
/// </remarks>
internal struct LoopBinding
{
    private BaseEventLoop? _loop;

    /// <summary>
    /// The loop the primitive belongs to: the running loop, bound to it if this is the first use.
    /// For members that may wait (they need a loop to make a future on).
    /// </summary>
    /// <exception cref="InvalidOperationException">No loop runs on this thread, or another loop than
    /// the primitive's runs here.</exception>
    public BaseEventLoop Bind(object owner)
    {
        var running = BaseEventLoop.RunningLoopOrNull;
        var bound = Volatile.Read(ref _loop);
        if (bound is null)
        {
            if (running is null)
            {
                throw NoLoop(owner);
            }

            bound = Interlocked.CompareExchange(ref _loop, running, null) ?? running;
        }

        if (!ReferenceEquals(bound, running))
        {
            throw Mismatch(owner, bound, running);
        }

        return bound;
    }

    /// <summary>
    /// For members that never wait (release, set, notify): on a loop thread this binds as
    /// <see cref="Bind"/> does; with no loop running here it is allowed only while the primitive is
    /// still unbound (asyncio lets a program set an Event or release a Semaphore before its loop
    /// runs: nobody can be waiting yet).
    /// </summary>
    /// <exception cref="InvalidOperationException">The primitive is bound to a loop and this thread
    /// is not running it.</exception>
    public void Check(object owner)
    {
        var running = BaseEventLoop.RunningLoopOrNull;
        var bound = Volatile.Read(ref _loop);
        if (running is null)
        {
            if (bound is not null)
            {
                throw Mismatch(owner, bound, null);
            }

            return;
        }

        if (bound is null)
        {
            bound = Interlocked.CompareExchange(ref _loop, running, null) ?? running;
        }

        if (!ReferenceEquals(bound, running))
        {
            throw Mismatch(owner, bound, running);
        }
    }

    /// <summary>The loop it is bound to, or null before its first use on a loop.</summary>
    public readonly BaseEventLoop? Loop => _loop;

    /// <summary>Names a loop so two loops of the same type are told apart in a message.</summary>
    internal static string Describe(BaseEventLoop loop) =>
        $"{loop.GetType().Name}@{RuntimeHelpers.GetHashCode(loop):x8}";

    private static InvalidOperationException NoLoop(object owner) => new(
        $"{owner.GetType().Name} was used on a thread with no running event loop: await it from a loop task " +
        "(EventLoop.Run(MainAsync)); from another thread, reach the loop with loop.RunCoroutineThreadSafe(...) or loop.CallSoonThreadSafe(...).");

    private static InvalidOperationException Mismatch(object owner, BaseEventLoop bound, BaseEventLoop? running) => running is null
        ? new InvalidOperationException(
            $"{owner.GetType().Name} is bound to event loop {Describe(bound)} and can only be used on the thread running it; " +
            "this thread runs no loop. Reach the loop with loop.CallSoonThreadSafe(...) or loop.RunCoroutineThreadSafe(...).")
        : new InvalidOperationException(
            $"{owner.GetType().Name} is bound to a different event loop: it was first used on {Describe(bound)} and is now used on {Describe(running)}. " +
            "A primitive belongs to the loop it is first used on (as in asyncio); make one per loop.");
}
