using System.Diagnostics;
using Tulip.Selectors;

namespace Tulip.Tests.Selectors;

internal static class SelectorTestUtil
{
    /// <summary>Generous bound for anything expected to be ready: a test fails after this rather than hangs.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public static TheoryData<string> Backends()
    {
        TheoryData<string> data = new();
        foreach (string name in SelectorFactory.AvailableNames)
        {
            data.Add(name);
        }

        return data;
    }

    /// <summary>
    /// Selects until something is reported or <see cref="Patience"/> runs out. Select may return 0 before
    /// the timeout when a signal interrupts it (EINTR; the runtime signals threads to suspend them for GC),
    /// so a single call is not enough.
    /// </summary>
    public static SelectorEvent[] WaitForEvents(ISelector selector, int capacity = 16)
    {
        SelectorEvent[] buffer = new SelectorEvent[capacity];
        Stopwatch watch = Stopwatch.StartNew();
        while (watch.Elapsed < Patience)
        {
            int remaining = Math.Max(1, (int)(Patience - watch.Elapsed).TotalMilliseconds);
            int n = selector.Select(buffer, remaining);
            if (n > 0)
            {
                return buffer[..n];
            }
        }

        return [];
    }

    /// <summary>Selects without blocking.</summary>
    public static SelectorEvent[] Poll(ISelector selector, int capacity = 16)
    {
        SelectorEvent[] buffer = new SelectorEvent[capacity];
        int n = selector.Select(buffer, 0);
        return buffer[..n];
    }

    public static int CountOpenFds() => Directory.GetFileSystemEntries("/proc/self/fd").Length;
}
