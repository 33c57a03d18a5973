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

    [Fact]
    public void MemoryRead_OfBufferedBytes_AllocatesNothing()
    {
        using var loop = new TestEventLoop();
        long allocated = loop.RunUntilComplete(static async () =>
        {
            var reader = new StreamReader();
            var data = ReaderTestSupport.B("0123456789abcdef");
            var buffer = new byte[data.Length];
            long before = 0;
            for (int pass = 0; pass < 2; pass++)
            {
                before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0, n = pass == 0 ? WarmUpRounds : Rounds; i < n; i++)
                {
                    reader.FeedData(data);
                    Check(await reader.ReadAsync(buffer), data.Length);
                    reader.FeedData(data);
                    Check(await reader.ReadExactlyAsync(buffer), data.Length);
                }
            }

            return GC.GetAllocatedBytesForCurrentThread() - before;
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
            var reader = new StreamReader();
            var data = ReaderTestSupport.B("0123456789abcdef");
            var buffer = new byte[data.Length];
            long before = 0;
            for (int pass = 0; pass < 2; pass++)
            {
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

            return GC.GetAllocatedBytesForCurrentThread() - before;
        });
        Assert.Equal(0, allocated);
    }

    /// <summary>
    /// A reader waiting in a task of its own, fed by another task between loop iterations: the shape
    /// of a protocol feeding a reader. The feeder's <c>Tasks.Yield()</c> makes a future per call;
    /// what is allocated beyond that (measured alone, the same way) is the reader's and its task's.
    /// </summary>
    [Fact]
    public void MemoryRead_WokenFromTheLoop_AllocatesNothing()
    {
        using var loop = new TestEventLoop();
        long allocated = loop.RunUntilComplete(static async () =>
        {
            var reader = new StreamReader();
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
        Assert.Equal(YieldCost(), allocated);
    }

    private static async LoopTask<int> Consume(StreamReader reader, byte[] buffer, int reads)
    {
        int total = 0;
        for (int i = 0; i < reads; i++)
        {
            total += await reader.ReadAsync(buffer);
        }

        return total;
    }

    /// <summary>What <see cref="Rounds"/> <c>await Tasks.Yield()</c> alone allocate, after the same warm-up.</summary>
    private static long YieldCost()
    {
        using var loop = new TestEventLoop();
        return loop.RunUntilComplete(static async () =>
        {
            long before = 0;
            for (int pass = 0; pass < 2; pass++)
            {
                before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0, n = pass == 0 ? WarmUpRounds : Rounds; i < n; i++)
                {
                    await Tasks.Yield();
                }
            }

            return GC.GetAllocatedBytesForCurrentThread() - before;
        });
    }

    private static void Check(int actual, int expected)
    {
        if (actual != expected)
        {
            throw new InvalidOperationException($"read {actual} bytes, expected {expected}");
        }
    }
}
