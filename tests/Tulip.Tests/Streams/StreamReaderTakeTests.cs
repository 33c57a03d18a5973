using Tulip;
using Tulip.Streams;
using static Tulip.Tests.Combinators.LoopRunner;

namespace Tulip.Tests.Streams;

/// <summary>
/// A woken memory read copies its bytes when its task takes the result (asyncio's read(n) reads
/// the buffer when the task runs): all that came before then is read, and a read that starts in
/// between, or a caller that keeps the read as a future, never changes which bytes go where.
/// </summary>
public class StreamReaderTakeTests
{
    [Fact]
    public void AWokenMemoryReadTakesEveryChunkFedBeforeItsTaskRan() => Run(async () =>
    {
        var reader = new LoopStreamReader();
        var buffer = new byte[8];
        async LoopTask<int> Read() => await reader.ReadAsync(buffer);
        var read = Read();
        await Tasks.Yield();
        reader.FeedData("ab"u8);
        reader.FeedData("cd"u8);
        Assert.Equal(4, await read);
        Assert.Equal("abcd"u8.ToArray(), buffer[..4]);
    });

    [Fact]
    public void AReadThatStartsBeforeTheWokenReadRanGetsTheBytesAfterIt() => Run(async () =>
    {
        var reader = new LoopStreamReader();
        var first = new byte[2];
        var second = new byte[2];
        async LoopTask<int> Read() => await reader.ReadAsync(first);
        var read = Read();
        await Tasks.Yield();
        reader.FeedData("abcd"u8);          // wakes the first read; its task has not run yet
        int n = await reader.ReadAsync(second);
        Assert.Equal(2, n);
        Assert.Equal(2, await read);
        Assert.Equal("ab"u8.ToArray(), first);
        Assert.Equal("cd"u8.ToArray(), second);
    });

    [Fact]
    public void AMemoryReadKeptAsAFutureHasItsFinalResultAtOnce() => Run(async () =>
    {
        var reader = new LoopStreamReader();
        var buffer = new byte[8];
        var future = reader.ReadAsync(buffer).AsFuture();
        reader.FeedData("ab"u8);
        await Tasks.Yield();
        reader.FeedData("cd"u8);           // after the read finished: stays in the reader
        Assert.Equal(2, future.Result());
        Assert.Equal(2, await reader.ReadAsync(buffer.AsMemory(2)));
        Assert.Equal("abcd"u8.ToArray(), buffer[..4]);
    });
}
