using System;
using System.Collections.Generic;
using System.Diagnostics.Tracing;
using System.Globalization;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;

/// <summary>
/// Loaded by the runtime before Main when DOTNET_STARTUP_HOOKS names this assembly. Once a second it
/// prints to stderr the managed bytes the whole process allocated (precise), the collections and the
/// GC pause time in that window:
/// <c>alloc-probe: T s, allocated B, gen0 G0, gen1 G1, gen2 G2, pause P ms</c>.
/// On SIGUSR1 it prints the managed heap after a full compacting collection (<c>alloc-probe-heap: B</c>).
/// With ALLOC_PROBE_TYPES=1 it also listens to the runtime's AllocationTick events (one per ~100 KB
/// allocated, naming the type that crossed the mark) and prints the tally at each report
/// (<c>alloc-probe-types: Type=count ...</c>): what is allocated, not only how much.
/// </summary>
internal static class StartupHook
{
    private static TypeListener? s_listener;
    private static PosixSignalRegistration? s_usr1;

    public static void Initialize()
    {
        if (Environment.GetEnvironmentVariable("ALLOC_PROBE_TYPES") == "1")
        {
            s_listener = new TypeListener();
        }

        s_usr1 = PosixSignalRegistration.Create((PosixSignal)10, static ctx =>
        {
            ctx.Cancel = true;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"alloc-probe-heap: {GC.GetTotalMemory(false)}"));
        });
        var thread = new Thread(Report) { IsBackground = true, Name = "alloc-probe" };
        thread.Start();
    }

    private static void Report()
    {
        var start = DateTime.UtcNow;
        long bytes = GC.GetTotalAllocatedBytes(precise: true);
        int g0 = GC.CollectionCount(0), g1 = GC.CollectionCount(1), g2 = GC.CollectionCount(2);
        var pause = GC.GetTotalPauseDuration();
        while (true)
        {
            Thread.Sleep(1000);
            long b = GC.GetTotalAllocatedBytes(precise: true);
            int n0 = GC.CollectionCount(0), n1 = GC.CollectionCount(1), n2 = GC.CollectionCount(2);
            var p = GC.GetTotalPauseDuration();
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"alloc-probe: {(DateTime.UtcNow - start).TotalSeconds:F2} s, allocated {b - bytes} B, gen0 {n0 - g0}, gen1 {n1 - g1}, gen2 {n2 - g2}, pause {(p - pause).TotalMilliseconds:F1} ms"));
            if (s_listener is { } listener)
            {
                Console.Error.WriteLine("alloc-probe-types: " + listener.Drain());
            }

            bytes = b;
            (g0, g1, g2, pause) = (n0, n1, n2, p);
        }
    }

    private sealed class TypeListener : EventListener
    {
        private readonly Dictionary<string, int> _counts = new();
        private readonly object _gate = new();

        protected override void OnEventSourceCreated(EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime")
            {
                EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1); // GC keyword: AllocationTick
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            if (e.EventName is not { } name || !name.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.PayloadNames is null)
            {
                return;
            }

            int i = e.PayloadNames.IndexOf("TypeName");
            string type = i >= 0 ? e.Payload![i]?.ToString() ?? "?" : "?";
            lock (_gate)
            {
                _counts[type] = _counts.GetValueOrDefault(type) + 1;
            }
        }

        public string Drain()
        {
            lock (_gate)
            {
                string s = string.Join(' ', _counts.OrderByDescending(kv => kv.Value).Take(12).Select(kv => $"{kv.Key}={kv.Value}"));
                _counts.Clear();
                return s;
            }
        }
    }
}
