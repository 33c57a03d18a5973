using System.Buffers;
using Tulip;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// WriteBacklog on its own: growth without overflow up to a documented limit (a backlog past 1 GiB
/// once threw OverflowException from Write), a clear exception past it, and memory given back. The
/// limit is exercised on a small scale through Append's limit argument: a real 2 GiB backlog needs
/// more memory than a shared test machine has to spare.
/// </summary>
public class WriteBacklogTests
{
    [Fact]
    public void TheLimitIsTheLargestByteArray()
    {
        int limit = WriteBacklog.MaxSize;
        Assert.Equal(Array.MaxLength, limit);
    }

    [Fact]
    public void GrowthDoublesThenStopsAtTheLimitAndRefusesPastIt()
    {
        byte[]? buffer = null;
        int start = 0, end = 0;
        int held = WriteBacklog.HeldArraysOnThisThread;
        const int limit = 10_000;
        WriteBacklog.Append(ref buffer, ref start, ref end, new byte[4096], limit);
        Assert.Equal(4096, buffer!.Length);
        WriteBacklog.Append(ref buffer, ref start, ref end, Pattern(3000), limit);
        Assert.Equal(8192, buffer!.Length);
        WriteBacklog.Append(ref buffer, ref start, ref end, Pattern(2904), limit); // 10,000: the doubling is capped at the limit
        Assert.Equal(limit, end - start);
        Assert.True(buffer!.Length >= limit);
        Assert.Equal(held + 1, WriteBacklog.HeldArraysOnThisThread);

        var before = buffer;
        var ex = Assert.Throws<InvalidOperationException>(() => WriteBacklog.Append(ref buffer, ref start, ref end, new byte[1], limit));
        Assert.Contains("more than its limit of 10000", ex.Message, StringComparison.Ordinal);
        Assert.Contains("PauseWriting", ex.Message, StringComparison.Ordinal);
        Assert.Same(before, buffer); // nothing changed
        Assert.Equal(limit, end - start);
        Assert.Equal(Pattern(2904), buffer.AsSpan(end - 2904, 2904).ToArray());

        WriteBacklog.Release(ref buffer, ref start, ref end);
        WriteBacklog.Release(ref buffer, ref start, ref end); // idempotent
        Assert.Null(buffer);
        Assert.Equal(0, end - start);
        Assert.Equal(held, WriteBacklog.HeldArraysOnThisThread);
    }

    [Fact]
    public void AFirstWritePastTheLimitIsRefused()
    {
        byte[]? buffer = null;
        int start = 0, end = 0;
        Assert.Throws<InvalidOperationException>(() => WriteBacklog.Append(ref buffer, ref start, ref end, new byte[101], 100));
        Assert.Null(buffer);
    }

    [Fact]
    public void TheSentPrefixIsReusedBeforeGrowing()
    {
        byte[]? buffer = null;
        int start = 0, end = 0;
        WriteBacklog.Append(ref buffer, ref start, ref end, Pattern(3000));
        var array = buffer;
        start += 2500; // sent
        WriteBacklog.Append(ref buffer, ref start, ref end, Pattern(3000));
        Assert.Same(array, buffer);
        Assert.Equal(3500, end - start);
        Assert.Equal(Pattern(3000).AsSpan(2500).ToArray(), buffer!.AsSpan(start, 500).ToArray());
        WriteBacklog.Release(ref buffer, ref start, ref end);
    }

    [Fact]
    public void ALargeBacklogsArrayIsNotKeptByTheSharedPool()
    {
        byte[]? buffer = null;
        int start = 0, end = 0;
        int size = 2 * WriteBacklog.MaxPooledSize;
        WriteBacklog.Append(ref buffer, ref start, ref end, new byte[size]);
        var array = buffer!;
        WriteBacklog.Release(ref buffer, ref start, ref end);
        // Had it gone back to the pool, this thread's next rent of that size would be handed it.
        var rented = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            Assert.NotSame(array, rented);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}

/// <summary>A stream transport's backlog with a peer that never reads: the memory goes back when the connection ends, however it ends.</summary>
public abstract class WriteBacklogReleaseTests : LoopSuite
{
    protected WriteBacklogReleaseTests(LoopKind kind) : base(kind)
    {
    }

    private static readonly string[] s_loopback = ["127.0.0.1"];

    private static async LoopTask<(ITransport Transport, RecordingProtocol Protocol, PeerProtocol Peer, int Held)> Backlogged(BaseEventLoop loop, Server server, Func<PeerProtocol?> peer)
    {
        int held = WriteBacklog.HeldArraysOnThisThread;
        var (transport, protocol) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
        Assert.True(await Eventually(() => peer() is { Made.Done: true }));
        var chunk = new byte[1024 * 1024];
        const int Backlog = 4 * 1024 * 1024;
        for (int i = 0; i < 256 && transport.GetWriteBufferSize() < Backlog; i++)
        {
            transport.Write(chunk); // the writer ignores PauseWriting on purpose
        }

        Assert.True(transport.GetWriteBufferSize() >= Backlog, $"only {transport.GetWriteBufferSize()} bytes buffered");
        Assert.True(protocol.Paused.Done);
        // A readiness loop holds one array (the backlog); a completion loop may hold two: the one a send
        // is in flight from, which the runtime reads until that send completes, and the one written meanwhile.
        Assert.InRange(WriteBacklog.HeldArraysOnThisThread - held, 1, 2);
        return (transport, protocol, peer()!, held);
    }

    /// <summary>
    /// Whether the transport gave its arrays back: at once on a readiness loop; on a completion loop the
    /// array a send is in flight from goes back when the runtime hands that send back (aborted by the
    /// socket's close), a few iterations later. Never before: the runtime may still be reading it.
    /// </summary>
    private async LoopTask<bool> Released(int held) =>
        !Kind.CompletionWrites ? WriteBacklog.HeldArraysOnThisThread == held : await Eventually(() => WriteBacklog.HeldArraysOnThisThread == held);

    [Fact]
    public void Abort_ReleasesTheBacklogAtOnce()
    {
        Run(Kind, async loop =>
        {
            PeerProtocol? peer = null;
            await using var server = await loop.CreateServerAsync(() => peer = new PeerProtocol(loop, pauseReading: true), s_loopback, 0);
            var (transport, protocol, serverSide, held) = await Backlogged(loop, server, () => peer);
            transport.Abort();
            Assert.True(await Released(held));
            Assert.Equal(0, transport.GetWriteBufferSize());
            Assert.Null(await protocol.Lost);
            serverSide.Transport.ResumeReading();
            await serverSide.Lost;
            Assert.Empty(protocol.Errors);
        });
    }

    [Fact]
    public void ConnectionLost_ReleasesTheBacklog()
    {
        Run(Kind, async loop =>
        {
            PeerProtocol? peer = null;
            await using var server = await loop.CreateServerAsync(() => peer = new PeerProtocol(loop, pauseReading: true), s_loopback, 0);
            var (transport, protocol, serverSide, held) = await Backlogged(loop, server, () => peer);
            serverSide.Transport.Abort(); // a reset: the backlog can never be sent
            Assert.IsType<System.Net.Sockets.SocketException>(await protocol.Lost);
            Assert.True(await Released(held));
            Assert.Equal(0, transport.GetWriteBufferSize());
            Assert.Empty(protocol.Errors);
        });
    }

    [Fact]
    public void CloseThenAbort_ReleasesTheBacklog_BeforeTheLoopCloses()
    {
        int held = 0;
        Run(Kind, async loop =>
        {
            PeerProtocol? peer = null;
            await using var server = await loop.CreateServerAsync(() => peer = new PeerProtocol(loop, pauseReading: true), s_loopback, 0);
            var (transport, protocol, serverSide, h) = await Backlogged(loop, server, () => peer);
            held = h;
            transport.Close(); // waits for a drain that never comes...
            Assert.True(WriteBacklog.HeldArraysOnThisThread > held);
            transport.Abort(); // ...until the program gives up on it
            Assert.True(await Released(held));
            Assert.Null(await protocol.Lost);
            serverSide.Transport.ResumeReading();
            await serverSide.Lost;
        });
        Assert.Equal(held, WriteBacklog.HeldArraysOnThisThread);
    }
}

public sealed class EpollWriteBacklogReleaseTests() : WriteBacklogReleaseTests(LoopKinds.Epoll);

public sealed class PollWriteBacklogReleaseTests() : WriteBacklogReleaseTests(LoopKinds.Poll);

public sealed class ProactorWriteBacklogReleaseTests() : WriteBacklogReleaseTests(LoopKinds.Proactor);
