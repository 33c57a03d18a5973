namespace Tulip.Tests.Streams;

using Tulip.Streams;
using Tulip.Testing;

/// <summary>
/// The memory reads' promise: once warm, a fed reader read into a caller's buffer allocates
/// nothing, neither when the bytes are already buffered nor when the read waits for them (the
/// reader's reusable future). Measured exactly, in bytes allocated by the loop's thread (the test's:
/// RunUntilComplete runs the loop here), not by timing.
/// </summary>
/// <remarks>
/// Each test is one coroutine that runs its rounds twice, a warm-up pass and a measured one, with
/// the round written inline: a helper coroutine per round would allocate its own task and be
/// counted against the reader.
/// </remarks>
public sealed class StreamReaderAllocationTests
{
    private const int WarmUpRounds = 200;
    private const int Rounds = 10_000;

    // The two tests whose reads complete at once: up to three measured passes of Rounds each, and the least they
    // allocated must be 0: an allocation per read
    // (even one byte) shows in every pass, while a one-off of the runtime's on this thread (the tiering of
    // CoreLib's code, which under load can fall in any pass: 4,888 B once in a CI run) shows in one at most.
    private const int MeasuredPasses = 3;

    [Fact]
    public void MemoryRead_OfBufferedBytes_AllocatesNothing()
    {
        using var loop = new TestEventLoop();
        long allocated = loop.RunUntilComplete(static async () =>
        {
            var reader = new LoopStreamReader();
            var data = ReaderTestSupport.B("0123456789abcdef");
            var buffer = new byte[data.Length];
            long before = 0;
            long best = long.MaxValue; // the least a measured pass allocated (see the class remarks)
            for (int pass = 0; pass < 1 + MeasuredPasses; pass++)
            {
                if (pass >= 2)
                {
                    best = Math.Min(best, GC.GetAllocatedBytesForCurrentThread() - before);
                    if (best == 0)
                    {
                        break;
                    }
                }

                before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0, n = pass == 0 ? WarmUpRounds : Rounds; i < n; i++)
                {
                    reader.FeedData(data);
                    Check(await reader.ReadAsync(buffer), data.Length);
                    reader.FeedData(data);
                    Check(await reader.ReadExactlyAsync(buffer), data.Length);
                }
            }

            return Math.Min(best, GC.GetAllocatedBytesForCurrentThread() - before);
        });
        Assert.Equal(0, allocated);
    }

    /// <summary>The read is made first and waits; the feed then completes it before it is awaited.</summary>
    [Fact]
    public void MemoryRead_ThatWaits_AllocatesNothing()
    {
        using var loop = new TestEventLoop();
        long allocated = loop.RunUntilComplete(static async () =>
        {
            var reader = new LoopStreamReader();
            var data = ReaderTestSupport.B("0123456789abcdef");
            var buffer = new byte[data.Length];
            long before = 0;
            long best = long.MaxValue; // the least a measured pass allocated (see the class remarks)
            for (int pass = 0; pass < 1 + MeasuredPasses; pass++)
            {
                if (pass >= 2)
                {
                    best = Math.Min(best, GC.GetAllocatedBytesForCurrentThread() - before);
                    if (best == 0)
                    {
                        break;
                    }
                }

                before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0, n = pass == 0 ? WarmUpRounds : Rounds; i < n; i++)
                {
                    var read = reader.ReadAsync(buffer);
                    reader.FeedData(data);
                    Check(await read, data.Length);
                    var exactly = reader.ReadExactlyAsync(buffer);
                    reader.FeedData(data.AsSpan(0, 10));
                    reader.FeedData(data.AsSpan(10));
                    Check(await exactly, data.Length);
                }
            }

            return Math.Min(best, GC.GetAllocatedBytesForCurrentThread() - before);
        });
        Assert.Equal(0, allocated);
    }

    /// <summary>
    /// A reader waiting in a task of its own, fed by another task between loop iterations: the shape
    /// of a protocol feeding a reader. The loop's own part (the feeder's <c>Tasks.Yield()</c>, the
    /// reading task suspending on a pending future and being woken) is measured alone, the same way,
    /// with a bare reusable future in place of the reader: the reader must add nothing to it.
    /// </summary>
    [Fact]
    public void MemoryRead_WokenFromTheLoop_AddsNothingToTheLoopsCost()
    {
        using var loop = new TestEventLoop();
        long allocated = loop.RunUntilComplete(static async () =>
        {
            var reader = new LoopStreamReader();
            var data = ReaderTestSupport.B("0123456789abcdef");
            var buffer = new byte[data.Length];
            var consumer = Consume(reader, buffer, WarmUpRounds + Rounds);
            long before = 0;
            for (int pass = 0; pass < 2; pass++)
            {

                before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0, n = pass == 0 ? WarmUpRounds : Rounds; i < n; i++)
                {
                    reader.FeedData(data);
                    await Tasks.Yield();
                }
            }

            long measured = GC.GetAllocatedBytesForCurrentThread() - before;
            Check(await consumer, (WarmUpRounds + Rounds) * data.Length);
            return measured;
        });
        // Nothing per read: the smallest object is 24 B, so a cost per read would add at least
        // 24 x Rounds. A one-off of a few bytes (a loaded full run once showed 24 B: a structure of
        // the loop's growing once) is not the reader's and is allowed.
        long loopCost = LoopCost();
        Assert.True(allocated - loopCost < Rounds,
            $"{Rounds} woken memory reads allocated {allocated} B, the loop alone {loopCost} B: the reader adds {allocated - loopCost} B (expected under 1 B per read)");
    }

    private static async LoopTask<int> Consume(LoopStreamReader reader, byte[] buffer, int reads)
    {
        int total = 0;
        for (int i = 0; i < reads; i++)
        {
            total += await reader.ReadAsync(buffer);
        }

        return total;
    }

    /// <summary>
    /// What the same rounds cost with no reader: one task awaits a reusable future (as the reader
    /// hands out) that the other completes before its <c>Tasks.Yield()</c>.
    /// </summary>
    private static long LoopCost()
    {
        using var loop = new TestEventLoop();
        return loop.RunUntilComplete(static async () =>
        {
            var slot = new BareSlot();
            var consumer = ConsumeBare(slot, WarmUpRounds + Rounds);
            long before = 0;
            for (int pass = 0; pass < 2; pass++)
            {

                before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0, n = pass == 0 ? WarmUpRounds : Rounds; i < n; i++)
                {
                    slot.Current!.SetResult(1);
                    await Tasks.Yield();
                }
            }

            long measured = GC.GetAllocatedBytesForCurrentThread() - before;
            Check(await consumer, WarmUpRounds + Rounds);
            return measured;
        });
    }

    private static async LoopTask<int> ConsumeBare(BareSlot slot, int reads)
    {
        int total = 0;
        for (int i = 0; i < reads; i++)
        {
            slot.Current = ReusableFuture<int>.Next(ref slot.Reusable, (BaseEventLoop)EventLoop.GetRunningLoop());
            total += await new ValueFuture<int>(slot.Current);
        }

        return total;
    }

    private sealed class BareSlot
    {
        public ReusableFuture<int>? Reusable;
        public ReusableFuture<int>? Current;
    }

    private static void Check(int actual, int expected)
    {
        if (actual != expected)
        {
            throw new InvalidOperationException($"read {actual} bytes, expected {expected}");
        }
    }
}
