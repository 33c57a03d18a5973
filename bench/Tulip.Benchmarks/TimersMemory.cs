using System;
using System.Diagnostics;

namespace Tulip.Benchmarks;

/// <summary>
/// "1M timers scheduled and cancelled in under 1 s with memory back": times one round of 1M
/// timers scheduled and cancelled (and the loop run once), and reports the managed heap before,
/// at the peak (all scheduled) and after, with full collections in between.
/// </summary>
internal static class TimersMemory
{
    public static void Run()
    {
        const int n = TimerBenchmarks.TargetCount;
        using var loop = new SelectorEventLoop();
        TimerBenchmarks.ScheduleAndCancel(loop, n); // warm up the JIT and the heap's arrays

        long before = HeapAfterFullCollection();
        var handles = new TimerHandle[n];
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++)
        {
            handles[i] = loop.CallLater(10 + i * 1e-6, static () => { });
        }

        double scheduledMs = sw.Elapsed.TotalMilliseconds;
        long peak = HeapAfterFullCollection();
        sw.Restart();
        foreach (var h in handles)
        {
            h.Cancel();
        }

        loop.CallSoon(static l => l.Stop(), loop);
        loop.RunForever();
        double cancelledMs = sw.Elapsed.TotalMilliseconds;
        int left = loop.TimerCount;
        handles = null;
        long after = HeapAfterFullCollection();

        Console.WriteLine($"timers: {n:N0} scheduled in {scheduledMs:F1} ms, cancelled + loop run in {cancelledMs:F1} ms, total {scheduledMs + cancelledMs:F1} ms");
        Console.WriteLine($"heap: before {before / 1024.0:N0} KiB, all scheduled {peak / 1024.0:N0} KiB, after cancel + run {after / 1024.0:N0} KiB; timers left in heap: {left}");
        GC.KeepAlive(handles);
    }

    private static long HeapAfterFullCollection()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(forceFullCollection: false);
    }
}
