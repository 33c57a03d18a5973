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
    /// <param name="main">The program's main coroutine.</param>
    /// <param name="debug">Debug mode for the loop; null keeps the default (TULIP_DEBUG).</param>
    /// <exception cref="InvalidOperationException">Called while a loop runs on this thread.</exception>
    public static T Run<T>(Func<LoopTask<T>> main, bool? debug = null)
    {
        using var runner = new Runner(debug);
        return runner.Run(main);
    }

    /// <summary>As <see cref="Run{T}"/> for a coroutine without a result.</summary>
    public static void Run(Func<LoopTask> main, bool? debug = null)
    {
        using var runner = new Runner(debug);
        runner.Run(main);
    }
}
