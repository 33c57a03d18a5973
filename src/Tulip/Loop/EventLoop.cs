using System;
using System.Threading;

namespace Tulip;

/// <summary>
/// The module-level functions of asyncio's events and runners: policy access, the running loop,
/// and <see cref="Run{T}"/>, the usual entry point of a program.
/// </summary>
public static class EventLoop
{
    private static IEventLoopPolicy? s_policy;

    /// <summary>The policy in force (the default one unless set).</summary>
    public static IEventLoopPolicy GetEventLoopPolicy()
    {
        var policy = Volatile.Read(ref s_policy);
        if (policy is null)
        {
            Interlocked.CompareExchange(ref s_policy, new DefaultEventLoopPolicy(), null);
            policy = Volatile.Read(ref s_policy)!;
        }

        return policy;
    }

    /// <summary>Replaces the policy; null restores the default.</summary>
    public static void SetEventLoopPolicy(IEventLoopPolicy? policy) => Volatile.Write(ref s_policy, policy);

    /// <summary>The running loop if there is one on this thread, otherwise the policy's loop for this thread.</summary>
    public static IEventLoop GetEventLoop() => (IEventLoop?)BaseEventLoop.RunningLoopOrNull ?? GetEventLoopPolicy().GetEventLoop();

    /// <summary>Makes <paramref name="loop"/> this thread's loop (null clears it).</summary>
    public static void SetEventLoop(IEventLoop? loop) => GetEventLoopPolicy().SetEventLoop(loop);

    /// <summary>A new loop from the policy.</summary>
    public static IEventLoop NewEventLoop() => GetEventLoopPolicy().NewEventLoop();

    /// <summary>The loop running on this thread.</summary>
    /// <exception cref="InvalidOperationException">No loop runs on this thread.</exception>
    public static IEventLoop GetRunningLoop() =>
        BaseEventLoop.RunningLoopOrNull ?? throw new InvalidOperationException("No event loop is running on this thread.");

    /// <summary>The loop running on this thread, or null.</summary>
    public static IEventLoop? TryGetRunningLoop() => BaseEventLoop.RunningLoopOrNull;

    /// <summary>
    /// asyncio's <c>run</c>: creates a loop, runs <paramref name="main"/> to completion, cancels the
    /// tasks left, shuts down the default executor, closes the loop, and returns the result.
    /// </summary>
    /// <remarks>
    /// The loop comes from <paramref name="loopFactory"/>, or else from the policy, whose default
    /// makes the kind the environment variable <c>TULIP_LOOP</c> names (epoll, poll, io_uring or proactor; the best
    /// available when unset; see <see cref="EventLoopKinds"/>). Ctrl-C while <paramref name="main"/>
    /// runs cancels it and, once it has cleaned up, throws <see cref="KeyboardInterruptException"/>
    /// (unhandled: exit status 130); a second Ctrl-C ends the process at once. SIGTERM keeps .NET's
    /// default. The details are on <see cref="Runner"/>, which this is a one-shot use of.
    /// </remarks>
    /// <param name="main">The program's main coroutine.</param>
    /// <param name="debug">Debug mode for the loop; null keeps the default (TULIP_DEBUG).</param>
    /// <param name="loopFactory">Makes the loop (asyncio's <c>loop_factory</c>), e.g.
    /// <c>EventLoopKinds.GetFactory("poll")</c>; null uses the policy's <see cref="NewEventLoop"/>.</param>
    /// <returns>What <paramref name="main"/> returned.</returns>
    /// <exception cref="InvalidOperationException">Called while a loop runs on this thread, or <c>TULIP_LOOP</c> names no known loop kind.</exception>
    /// <exception cref="KeyboardInterruptException">SIGINT cancelled <paramref name="main"/>, which ended cancelled after its cleanup.</exception>
    public static T Run<T>(Func<LoopTask<T>> main, bool? debug = null, Func<IEventLoop>? loopFactory = null)
    {
        using var runner = new Runner(debug, loopFactory);
        return runner.Run(main);
    }

    /// <summary>As <see cref="Run{T}"/> for a coroutine without a result.</summary>
    /// <param name="main">The program's main coroutine.</param>
    /// <param name="debug">Debug mode for the loop; null keeps the default (TULIP_DEBUG).</param>
    /// <param name="loopFactory">Makes the loop (asyncio's <c>loop_factory</c>); null uses the policy's <see cref="NewEventLoop"/>.</param>
    /// <exception cref="InvalidOperationException">Called while a loop runs on this thread, or <c>TULIP_LOOP</c> names no known loop kind.</exception>
    /// <exception cref="KeyboardInterruptException">SIGINT cancelled <paramref name="main"/>, which ended cancelled after its cleanup.</exception>
    public static void Run(Func<LoopTask> main, bool? debug = null, Func<IEventLoop>? loopFactory = null)
    {
        using var runner = new Runner(debug, loopFactory);
        runner.Run(main);
    }
}
