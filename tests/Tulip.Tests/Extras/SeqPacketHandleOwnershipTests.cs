using System.Net.Sockets;
using Tulip;
using Tulip.Extras;

namespace Tulip.Tests.Extras;

/// <summary>
/// The message transport holds its fd as the library's transports do: disposing what
/// <c>GetExtraInfo("socket")</c> hands out leaves the connection alone, so a later connection cannot
/// get its number, receive its messages or lose its registration to the first one's Close. Depends on
/// the kernel handing out the lowest free fd number, so it runs alone (<see cref="NativeFdCollection"/>).
/// </summary>
public abstract class SeqPacketHandleOwnershipTests : LoopSuite
{
    protected SeqPacketHandleOwnershipTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>Runs <paramref name="body"/> on a loop of the kind under test.</summary>
    protected virtual void Run(Func<IEventLoop, LoopTask> body) => Transports.TestUtil.Run(Kind, loop => body(loop));

    private static async LoopTask<(IMessageTransport, MessageRecorder, IMessageTransport, MessageRecorder)> Pair(IEventLoop loop)
    {
        var (a, b) = SeqPacket.CreatePair();
        var (ta, pa) = await SeqPacket.WrapAsync(loop, () => new MessageRecorder(loop), a);
        var (tb, pb) = await SeqPacket.WrapAsync(loop, () => new MessageRecorder(loop), b);
        return (ta, pa, tb, pb);
    }

    [Fact]
    public void DisposingTheExtraInfoSocket_LeavesTheConnectionAlone()
    {
        Run(async loop =>
        {
            var (ta, pa, tb, pb) = await Pair(loop);
            var view = Assert.IsType<Socket>(ta.GetExtraInfo("socket"));
            int fd = (int)view.Handle;
            view.Dispose();

            var (tc, pc, td, pd) = await Pair(loop);
            Assert.NotEqual(fd, (int)((Socket)tc.GetExtraInfo("socket")!).Handle);
            Assert.NotEqual(fd, (int)((Socket)td.GetExtraInfo("socket")!).Handle);
            ta.Send("to b"u8);
            tc.Send("to d"u8);
            Assert.True(await pb.WaitMessages(loop, 1));
            Assert.True(await pd.WaitMessages(loop, 1));
            Assert.Equal(["to b"u8.ToArray()], pb.Messages);
            Assert.Equal(["to d"u8.ToArray()], pd.Messages);

            ta.Close();
            Assert.Null(await pa.Lost);
            Assert.Null(await pb.Lost);
            Assert.Null(ta.GetExtraInfo("socket"));

            td.Send("to c"u8); // c still reads: its registration survived a's Close
            Assert.True(await pc.WaitMessages(loop, 1));
            Assert.Equal(["to c"u8.ToArray()], pc.Messages);
            tc.Close();
            await pc.Lost;
            await pd.Lost;
            Assert.Empty(pa.Errors);
            Assert.Empty(pc.Errors);
            tb.Close();
            td.Close();
        });
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollReadinessSeqPacketHandleTests() : SeqPacketHandleOwnershipTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollReadinessSeqPacketHandleTests() : SeqPacketHandleOwnershipTests(LoopKinds.Poll);

/// <summary>The completion implementation, registered on a readiness loop in place of the default.</summary>
[Collection(NativeFdCollection.Name)]
public sealed class EpollCompletionSeqPacketHandleTests() : SeqPacketHandleOwnershipTests(LoopKinds.Epoll)
{
    protected override void Run(Func<IEventLoop, LoopTask> body) => base.Run(loop =>
    {
        loop.Transports.Register(SeqPacket.Completion);
        return body(loop);
    });
}

/// <summary>The proactor: the fallback's completion implementation, by itself (no registration).</summary>
[Collection(NativeFdCollection.Name)]
public sealed class ProactorSeqPacketHandleTests() : SeqPacketHandleOwnershipTests(LoopKinds.Proactor);

/// <summary>The completion implementation on the poll(2) loop.</summary>
[Collection(NativeFdCollection.Name)]
public sealed class PollCompletionSeqPacketHandleTests() : SeqPacketHandleOwnershipTests(LoopKinds.Poll)
{
    protected override void Run(Func<IEventLoop, LoopTask> body) => base.Run(loop =>
    {
        loop.Transports.Register(SeqPacket.Completion);
        return body(loop);
    });
}
