using Tulip.Testing;

namespace Tulip.Tests.Synchronization;

/// <summary>
/// Runs a test body on a fresh virtual-clock loop (Tulip.Testing's <see cref="TestEventLoop"/>,
/// auto-advancing) and fails the test if anything reached the loop's exception handler. The
/// primitives use only futures and timers, so virtual time makes every timeout here instant and
/// deterministic. <see cref="Spawn(Func{LoopTask})"/> is asyncio's <c>create_task</c>: the task's
/// first step runs on the next iteration, so the orderings asyncio's test_locks.py checks hold.
/// </summary>
internal static class SyncRunner
{
    /// <summary>Runs <paramref name="body"/> on a fresh virtual-clock loop (<see cref="Combinators.LoopRunner.Run(Func{LoopTask})"/>).</summary>
    public static void Run(Func<LoopTask> body) => Combinators.LoopRunner.Run(body);

    /// <summary>asyncio's <c>create_task</c>: starts <paramref name="body"/> on the next iteration.</summary>
    public static LoopTask Spawn(Func<LoopTask> body) => EventLoop.GetRunningLoop().CreateTask(body, eagerStart: false);

    /// <summary>As <see cref="Spawn(Func{LoopTask})"/>, with a result.</summary>
    public static LoopTask<T> Spawn<T>(Func<LoopTask<T>> body) => EventLoop.GetRunningLoop().CreateTask(body, eagerStart: false);

    /// <summary>asyncio's <c>await asyncio.sleep(0)</c>: one loop iteration.</summary>
    public static Future<VoidResult> Tick() => Tasks.Sleep(0);

    /// <summary><paramref name="n"/> loop iterations: enough for the hops of nested tasks to settle.</summary>
    public static async LoopTask Ticks(int n)
    {
        for (int i = 0; i < n; i++)
        {
            await Tasks.Sleep(0);
        }
    }

    /// <summary>Awaits <paramref name="future"/> and returns the exception it threw (fails if none).</summary>
    public static LoopTask<TException> Throws<TException>(Future future)
        where TException : Exception => Combinators.LoopRunner.Throws<TException>(future);

    /// <summary>Runs the whole of <paramref name="tasks"/> to the end (asyncio's <c>gather(..., return_exceptions=True)</c>).</summary>
    public static async LoopTask Settle(IEnumerable<Future> tasks)
    {
        foreach (var task in tasks)
        {
            try
            {
                await task;
            }
            catch (Exception)
            {
                // The outcome is asserted by the test itself.
            }
        }
    }
}
