using System;
using BenchmarkDotNet.Attributes;

namespace Tulip.Benchmarks;

/// <summary>
/// asyncio_micro.py bench_timers: schedule N timers 10 s out (a microsecond apart), cancel them
/// all, then run the loop once to a stop callback. At asyncio_micro.py's N (200k) for the
/// comparison, and at 1M for the target (1M in under a second). The memory given back afterwards
/// is checked by <c>dotnet run ... -- timers-memory</c> (<see cref="TimersMemory"/>).
/// </summary>
[Config(typeof(BenchConfig))]
public class TimerBenchmarks
{
    public const int AsyncioCount = 200_000;
    public const int TargetCount = 1_000_000;

    private SelectorEventLoop _loop = null!;

    [GlobalSetup]
    public void Setup() => _loop = new SelectorEventLoop();

    [GlobalCleanup]
    public void Cleanup() => _loop.Close();

    [Benchmark(OperationsPerInvoke = AsyncioCount)]
    public int TimersScheduleCancel200k() => ScheduleAndCancel(_loop, AsyncioCount);

    [Benchmark(OperationsPerInvoke = TargetCount)]
    public int TimersScheduleCancel1M() => ScheduleAndCancel(_loop, TargetCount);

    /// <summary>The measured body; as asyncio_micro.py, the handles are kept in a list, then cancelled.</summary>
    internal static int ScheduleAndCancel(SelectorEventLoop loop, int n)
    {
        var handles = new TimerHandle[n];
        for (int i = 0; i < n; i++)
        {
            handles[i] = loop.CallLater(10 + i * 1e-6, static () => { });
        }

        foreach (var h in handles)
        {
            h.Cancel();
        }

        loop.CallSoon(static l => l.Stop(), loop);
        loop.RunForever();
        if (loop.TimerCount != 0)
        {
            throw new InvalidOperationException($"{loop.TimerCount} timers left in the heap after all were cancelled");
        }

        return handles.Length;
    }
}
