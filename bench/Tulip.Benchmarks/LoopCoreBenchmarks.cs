using System;
using BenchmarkDotNet.Attributes;

namespace Tulip.Benchmarks;

/// <summary>
/// The loop core, measured as ../shared/bench/micro/asyncio_micro.py measures asyncio and uvloop,
/// with the same operation counts per run so the rows compare (docs/PERFORMANCE.md). Every figure
/// is per operation (OperationsPerInvoke). Each benchmark runs the loop it set up, on the
/// benchmark's thread.
/// </summary>
[Config(typeof(BenchConfig))]
public class LoopCoreBenchmarks
{
    /// <summary>asyncio_micro.py bench_call_soon: n=1_000_000.</summary>
    public const int CallSoonCount = 1_000_000;

    /// <summary>asyncio_micro.py bench_future_roundtrip: n=200_000.</summary>
    public const int RoundTripCount = 200_000;

    /// <summary>asyncio_micro.py bench_task_spawn: n=100_000.</summary>
    public const int SpawnCount = 100_000;

    private static readonly Func<LoopTask<int>> s_roundTrips = RoundTrips;
    private static readonly Func<LoopTask<int>> s_spawnAndGather = SpawnAndGather;
    private static readonly Func<LoopTask<int>> s_spawnAndGatherEager = SpawnAndGatherEager;

    private SelectorEventLoop _loop = null!;

    [GlobalSetup]
    public void Setup() => _loop = new SelectorEventLoop();

    [GlobalCleanup]
    public void Cleanup() => _loop.Close();

    /// <summary>
    /// bench_call_soon: schedule N callbacks (CallSoon with explicit state and a static lambda, as
    /// Tulip's hot paths are meant to be used), then a stop callback, then RunForever.
    /// </summary>
    [Benchmark(OperationsPerInvoke = CallSoonCount)]
    public int CallSoonRun()
    {
        var loop = _loop;
        var counter = new Counter();
        for (int i = 0; i < CallSoonCount; i++)
        {
            loop.CallSoon(static c => c.Count++, counter);
        }

        loop.CallSoon(static l => l.Stop(), loop);
        loop.RunForever();
        if (counter.Count != CallSoonCount)
        {
            throw new InvalidOperationException($"ran {counter.Count} callbacks, expected {CallSoonCount}");
        }

        return counter.Count;
    }

    /// <summary>
    /// bench_future_roundtrip: inside one task, N times: create a future, schedule a callback that
    /// sets its result, await it.
    /// </summary>
    [Benchmark(OperationsPerInvoke = RoundTripCount)]
    public int FutureRoundTrip() => _loop.RunUntilComplete(s_roundTrips);

    /// <summary>
    /// bench_task_spawn: N tasks, each passing through the loop once before returning its argument,
    /// gathered. asyncio's create_task schedules the child's first step on the loop; Tulip starts an
    /// <c>async LoopTask</c> eagerly, so the child awaits <c>Tasks.Yield()</c> (Sleep(0)) to make
    /// the same trip through the ready queue.
    /// </summary>
    [Benchmark(OperationsPerInvoke = SpawnCount)]
    public int TaskSpawnGather() => _loop.RunUntilComplete(s_spawnAndGather);

    /// <summary>
    /// Task spawn + gather where the child returns at once (asyncio 3.12's eager task factory, and
    /// Tulip's default start): the task completes on the caller's stack and never queues a step.
    /// </summary>
    [Benchmark(OperationsPerInvoke = SpawnCount)]
    public int TaskSpawnGatherEager() => _loop.RunUntilComplete(s_spawnAndGatherEager);

    private static async LoopTask<int> RoundTrips()
    {
        var loop = EventLoop.GetRunningLoop();
        int sum = 0;
        for (int i = 0; i < RoundTripCount; i++)
        {
            var f = loop.CreateFuture<int>();
            loop.CallSoon(static f => f.SetResult(1), f);
            sum += await f;
        }

        return sum;
    }

    private static async LoopTask<int> Child(int i)
    {
        await Tasks.Yield();
        return i;
    }

#pragma warning disable CS1998 // the eager child deliberately never awaits
    private static async LoopTask<int> EagerChild(int i) => i;
#pragma warning restore CS1998

    private static async LoopTask<int> SpawnAndGather()
    {
        var tasks = new Future<int>[SpawnCount];
        for (int i = 0; i < SpawnCount; i++)
        {
            tasks[i] = Child(i);
        }

        var results = await Tasks.Gather(tasks);
        return results.Length;
    }

    private static async LoopTask<int> SpawnAndGatherEager()
    {
        var tasks = new Future<int>[SpawnCount];
        for (int i = 0; i < SpawnCount; i++)
        {
            tasks[i] = EagerChild(i);
        }

        var results = await Tasks.Gather(tasks);
        return results.Length;
    }

    private sealed class Counter
    {
        public int Count;
    }
}
