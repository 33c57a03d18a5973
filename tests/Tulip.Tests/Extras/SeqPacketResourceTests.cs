using System.Net.Sockets;
using Tulip;
using Tulip.Extras;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Extras;

/// <summary>
/// The SOCK_SEQPACKET transports leave no fd behind (counted in /proc/self/fd, so alone in
/// <see cref="NativeFdCollection"/>): after Close, Abort, the peer closing, a refused socket and a
/// failed connect, with either implementation.
/// </summary>
public abstract class SeqPacketResourceTests : LoopSuite
{
    protected SeqPacketResourceTests(LoopKind kind, bool completion) : base(kind)
    {
        Completion = completion;
    }

    protected bool Completion { get; }

    private async LoopTask Session(IEventLoop loop)
    {
        var (a, b) = SeqPacket.CreatePair();
        var (ta, pa) = await SeqPacket.WrapAsync(loop, () => new MessageRecorder(loop), a);
        var (tb, pb) = await SeqPacket.WrapAsync(loop, () => new MessageRecorder(loop), b);
        tb.PauseReading();
        for (int i = 0; i < 10; i++)
        {
            ta.Send(Pattern(50_000));
        }

        ta.Abort();                   // with messages queued (and, on completions, a send in flight)
        await pa.Lost;
        tb.ResumeReading();
        await pb.Lost;                // the peer's end: EOF after what had arrived
    }

    private async LoopTask EveryWay(IEventLoop loop)
    {
        await Session(loop);
        var (a, b) = SeqPacket.CreatePair();
        var (_, pa) = await SeqPacket.WrapAsync(loop, () => new MessageRecorder(loop), a);
        b.Dispose();                  // the peer goes away
        await pa.Lost;

        var stream = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await Assert.ThrowsAsync<ArgumentException>(async () => await SeqPacket.WrapAsync(loop, () => new MessageRecorder(loop), stream));
        await Assert.ThrowsAsync<SocketException>(async () =>
            await SeqPacket.ConnectAsync(loop, () => new MessageRecorder(loop), Path.Combine(Path.GetTempPath(), $"tulip-none-{Guid.NewGuid():N}")));

        (a, b) = SeqPacket.CreatePair();
        await Assert.ThrowsAsync<FormatException>(async () => await SeqPacket.WrapAsync<MessageRecorder>(loop, () => throw new FormatException("factory"), a));
        b.Dispose();
    }

    private static HashSet<string> Fds() => Directory.GetFiles("/proc/self/fd").Select(f => { try { return f + "->" + new FileInfo(f).LinkTarget; } catch { return f; } }).ToHashSet();

    [Fact]
    public void EveryWayOfEnding_LeavesNoFd()
    {
        Run(Kind, async loop =>
        {
            if (Completion)
            {
                loop.Transports.Register(SeqPacket.Completion);
            }

            // The first round warms up what .NET opens once: the socket engine's epoll, and the
            // symbol files read for the first exceptions' stack traces.
            await EveryWay(loop);
            await Eventually(() => false, 5);
            int before = OpenFdCount();
            var beforeSet = Fds();
            await EveryWay(loop);
            Assert.True(await Eventually(() => OpenFdCount() == before), $"fds before {before}, after {OpenFdCount()}: new {string.Join(", ", Fds().Except(beforeSet))}");
        });
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollReadinessSeqPacketResourceTests() : SeqPacketResourceTests(LoopKinds.Epoll, completion: false);

[Collection(NativeFdCollection.Name)]
public sealed class PollCompletionSeqPacketResourceTests() : SeqPacketResourceTests(LoopKinds.Poll, completion: true);

/// <summary>The proactor: the completion implementation is the fallback's own choice there (nothing registered).</summary>
[Collection(NativeFdCollection.Name)]
public sealed class ProactorSeqPacketResourceTests() : SeqPacketResourceTests(LoopKinds.Proactor, completion: false);
