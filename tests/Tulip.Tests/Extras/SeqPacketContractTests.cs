using System.Net.Sockets;
using Tulip;
using Tulip.Extras;
using Tulip.Testing;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Extras;

/// <summary>Records what a message transport does to its protocol, checking the call order.</summary>
internal sealed class MessageRecorder : IMessageProtocol
{
    private (int Count, Future<bool> Future)? _waiter;

    public MessageRecorder(IEventLoop loop)
    {
        Made = loop.CreateFuture<IMessageTransport>();
        Lost = loop.CreateFuture<Exception?>();
        Paused = loop.CreateFuture<bool>();
    }

    public Future<IMessageTransport> Made { get; }

    public Future<Exception?> Lost { get; }

    public Future<bool> Paused { get; }

    public List<byte[]> Messages { get; } = new();

    public List<string> Calls { get; } = new();

    public List<string> Errors { get; } = new();

    public int PauseCount { get; private set; }

    public int ResumeCount { get; private set; }

    public Future<bool> WaitMessages(IEventLoop loop, int count)
    {
        var f = loop.CreateFuture<bool>();
        if (Messages.Count >= count)
        {
            f.SetResult(true);
        }
        else
        {
            _waiter = (count, f);
        }

        return f;
    }

    public void ConnectionMade(IBaseTransport transport)
    {
        Calls.Add("made");
        Made.SetResult((IMessageTransport)transport);
    }

    public void MessageReceived(ReadOnlySpan<byte> message)
    {
        if (!Made.Done) Errors.Add("message before ConnectionMade");
        if (Lost.Done) Errors.Add("message after ConnectionLost");
        if (Calls[^1] != "message") Calls.Add("message");
        Messages.Add(message.ToArray());
        if (_waiter is { } w && Messages.Count >= w.Count)
        {
            _waiter = null;
            w.Future.TrySetResult(true);
        }
    }

    public void EofReceived() => Calls.Add("eof");

    public void ConnectionLost(Exception? exception)
    {
        Calls.Add("lost");
        if (Lost.Done) Errors.Add("ConnectionLost twice");
        Lost.TrySetResult(exception);
        _waiter?.Future.TrySetResult(false);
    }

    public void PauseWriting()
    {
        PauseCount++;
        Paused.TrySetResult(true);
    }

    public void ResumeWriting() => ResumeCount++;
}

/// <summary>
/// The third-party SOCK_SEQPACKET transport of Tulip.Extras (public API only), end to end: its
/// readiness implementation on epoll and poll, its completion implementation registered on the
/// same loops, and the completion implementation picked by the fallback on a loop with no fd
/// readiness at all (the virtual-clock loop, standing in for the proactor to come).
/// </summary>
public abstract class SeqPacketContractTests : LoopSuite
{
    /// <summary>Binds the suite to <paramref name="kind"/>.</summary>
    protected SeqPacketContractTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>Runs <paramref name="body"/> on a new loop of <see cref="LoopSuite.Kind"/>.</summary>
    protected virtual void Run(Func<IEventLoop, LoopTask> body) => Transports.TestUtil.Run(Kind, loop => body(loop));

    /// <summary>The implementation the loop under test must use.</summary>
    protected abstract ISeqPacketTransportFactory Expected { get; }

    private static async LoopTask<(IMessageTransport, MessageRecorder, IMessageTransport, MessageRecorder)> Pair(IEventLoop loop)
    {
        var (a, b) = SeqPacket.CreatePair();
        var (ta, pa) = await SeqPacket.WrapAsync(loop, () => new MessageRecorder(loop), a);
        var (tb, pb) = await SeqPacket.WrapAsync(loop, () => new MessageRecorder(loop), b);
        return (ta, pa, tb, pb);
    }

    [Fact]
    public void TheExpectedImplementationIsUsed()
    {
        Run(async loop =>
        {
            Assert.Same(Expected, SeqPacket.ImplementationFor(loop));
            await Tasks.Sleep(0);
        });
    }

    [Fact]
    public void MessageBoundariesAreKept_BothWays()
    {
        Run(async loop =>
        {
            var (ta, pa, tb, pb) = await Pair(loop);
            var rng = new Random(3156);
            var sent = new List<byte[]>();
            for (int i = 0; i < 60; i++)
            {
                int size = i switch { 0 => 1, 1 => IMessageTransport.MaxMessageSize, _ => rng.Next(1, 20_000) };
                var message = new byte[size];
                rng.NextBytes(message);
                sent.Add(message);
                ta.Send(message);
            }

            Assert.True(await pb.WaitMessages(loop, sent.Count));
            Assert.Equal(sent, pb.Messages);
            tb.Send("back"u8);
            tb.Send("again"u8);
            Assert.True(await pa.WaitMessages(loop, 2));
            Assert.Equal(["back", "again"], pa.Messages.Select(m => System.Text.Encoding.ASCII.GetString(m)));
            ta.Close();
            tb.Close();
            await pa.Lost;
            await pb.Lost;
            Assert.Empty(pa.Errors);
            Assert.Empty(pb.Errors);
        });
    }

    [Fact]
    public void CloseFlushesTheQueue_ThenThePeerGetsEofAndConnectionLost()
    {
        Run(async loop =>
        {
            var (ta, pa, tb, pb) = await Pair(loop);
            var message = Pattern(60_000);
            for (int i = 0; i < 20; i++)
            {
                ta.Send(message); // 1.2 MB: more than the socket buffer holds
            }

            ta.Close();
            Assert.True(ta.IsClosing);
            ta.Send("dropped"u8);
            Assert.Null(await pa.Lost);
            Assert.Null(await pb.Lost);
            Assert.Equal(20, pb.Messages.Count);
            Assert.All(pb.Messages, m => Assert.Equal(message, m));
            Assert.Equal(["made", "message", "eof", "lost"], pb.Calls);
            Assert.Equal(["made", "lost"], pa.Calls);
        });
    }

    [Fact]
    public void FlowControl_PausedReader_PausesTheWriter_ThenAllArrive()
    {
        Run(async loop =>
        {
            var (ta, pa, tb, pb) = await Pair(loop);
            tb.PauseReading();
            Assert.False(tb.IsReading);
            var message = Pattern(30_000);
            int sent = 0;
            while (pa.PauseCount == 0)
            {
                ta.Send(message);
                sent++;
                Assert.True(sent < 1000, "PauseWriting never came");
            }

            Assert.True(ta.GetWriteBufferSize() > ta.GetWriteBufferLimits().High);
            tb.ResumeReading();
            Assert.True(await pb.WaitMessages(loop, sent));
            Assert.Equal(sent, pb.Messages.Count);
            Assert.Equal(1, pa.ResumeCount);
            Assert.Equal(0, ta.GetWriteBufferSize());
            ta.Close();
            tb.Close();
            await pa.Lost;
            await pb.Lost;
        });
    }

    [Fact]
    public void BadMessagesAreRefused_AndTheTransportGoesOn()
    {
        Run(async loop =>
        {
            var (ta, pa, tb, pb) = await Pair(loop);
            var empty = Assert.Throws<ArgumentException>(() => ta.Send(ReadOnlySpan<byte>.Empty));
            Assert.Contains("empty", empty.Message);
            var big = Assert.Throws<ArgumentException>(() => ta.Send(new byte[IMessageTransport.MaxMessageSize + 1]));
            Assert.Contains("largest", big.Message);
            Assert.Throws<ArgumentOutOfRangeException>(() => ta.SetWriteBufferLimits(high: 1, low: 2));
            ta.Send("fine"u8);
            Assert.True(await pb.WaitMessages(loop, 1));
            ta.Abort();
            Assert.Null(await pa.Lost);
            Assert.Null(await pb.Lost);
            Assert.Equal(["made", "message", "eof", "lost"], pb.Calls);
        });
    }

    [Fact]
    public void WrapAsync_RefusesAStreamSocket_AndClosesIt()
    {
        Run(async loop =>
        {
            var stream = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            var ex = await Assert.ThrowsAsync<ArgumentException>(async () =>
                await SeqPacket.WrapAsync(loop, () => new MessageRecorder(loop), stream));
            Assert.Contains("SOCK_SEQPACKET", ex.Message);
            Assert.Throws<ObjectDisposedException>(() => stream.Blocking = true);
        });
    }

    [Fact]
    public void ConnectAsync_ToAListener_AndToNothing()
    {
        string path = Path.Combine(Path.GetTempPath(), $"tulip-seqpacket-{Guid.NewGuid():N}");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(4);
        try
        {
            Run(async loop =>
            {
                var (client, pc) = await SeqPacket.ConnectAsync(loop, () => new MessageRecorder(loop), path);
                var accepted = listener.Accept(); // already queued: the connect completed
                var (server, ps) = await SeqPacket.WrapAsync(loop, () => new MessageRecorder(loop), accepted);
                client.Send("over a path"u8);
                Assert.True(await ps.WaitMessages(loop, 1));
                server.Close();
                Assert.Null(await pc.Lost);
                Assert.Equal(["made", "eof", "lost"], pc.Calls);
                await Assert.ThrowsAsync<SocketException>(async () =>
                    await SeqPacket.ConnectAsync(loop, () => new MessageRecorder(loop), path + ".nothing"));
            });
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ConnectAsync_WhileTheListenersBacklogIsFull_CompletesOnceAccepted()
    {
        string path = Path.Combine(Path.GetTempPath(), $"tulip-seqpacket-{Guid.NewGuid():N}");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var fillers = new List<Socket>();
        try
        {
            // Fill the backlog: a UNIX connect then fails with EAGAIN instead of blocking.
            while (true)
            {
                var filler = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified) { Blocking = false };
                fillers.Add(filler);
                try
                {
                    filler.Connect(new UnixDomainSocketEndPoint(path));
                }
                catch (SocketException ex) when (ex.SocketErrorCode == SocketError.WouldBlock)
                {
                    filler.Dispose();
                    fillers.Remove(filler);
                    break;
                }

                Assert.True(fillers.Count < 100, "the backlog never filled");
            }

            Run(async loop =>
            {
                var connect = SeqPacket.ConnectAsync(loop, () => new MessageRecorder(loop), path);
                for (int i = 0; i < 5; i++)
                {
                    await Tasks.Sleep(0.01);
                }

                Assert.False(connect.Done, "the connect should wait while the backlog is full: " + (connect.Done ? connect.Exception()?.ToString() ?? "succeeded" : ""));
                var accepted = new List<Socket>();
                while (accepted.Count < fillers.Count + 1)
                {
                    accepted.Add(listener.Accept()); // frees the backlog; the waiting connect gets in
                    if (accepted.Count == fillers.Count)
                    {
                        await Eventually(() => connect.Done, 10_000);
                        Assert.True(connect.Done);
                    }
                }

                var (client, pc) = await connect;
                var (server, ps) = await SeqPacket.WrapAsync(loop, () => new MessageRecorder(loop), accepted[^1]);
                client.Send("in at last"u8);
                Assert.True(await ps.WaitMessages(loop, 1));
                client.Close();
                server.Close();
                await pc.Lost;
                await ps.Lost;
                foreach (var a in accepted.Take(accepted.Count - 1))
                {
                    a.Dispose();
                }
            });
        }
        finally
        {
            foreach (var f in fillers)
            {
                f.Dispose();
            }

            File.Delete(path);
        }
    }
}

public sealed class EpollReadinessSeqPacketTests() : SeqPacketContractTests(LoopKinds.Epoll)
{
    protected override ISeqPacketTransportFactory Expected => SeqPacket.Readiness;
}

public sealed class PollReadinessSeqPacketTests() : SeqPacketContractTests(LoopKinds.Poll)
{
    protected override ISeqPacketTransportFactory Expected => SeqPacket.Readiness;
}

/// <summary>The completion implementation, registered on a readiness loop in place of the default.</summary>
public sealed class EpollCompletionSeqPacketTests() : SeqPacketContractTests(LoopKinds.Epoll)
{
    protected override ISeqPacketTransportFactory Expected => SeqPacket.Completion;

    protected override void Run(Func<IEventLoop, LoopTask> body) => base.Run(loop =>
    {
        loop.Transports.Register(SeqPacket.Completion);
        return body(loop);
    });
}

public sealed class PollCompletionSeqPacketTests() : SeqPacketContractTests(LoopKinds.Poll)
{
    protected override ISeqPacketTransportFactory Expected => SeqPacket.Completion;

    protected override void Run(Func<IEventLoop, LoopTask> body) => base.Run(loop =>
    {
        loop.Transports.Register(SeqPacket.Completion);
        return body(loop);
    });
}

/// <summary>
/// The proactor loop: no fd readiness, so the fallback picks the completion implementation by itself
/// (it is built on <see cref="ICompletionEventLoop"/>, which the proactor is); no proactor-only
/// implementation is needed, and none is registered.
/// </summary>
public sealed class ProactorSeqPacketTests() : SeqPacketContractTests(LoopKinds.Proactor)
{
    protected override ISeqPacketTransportFactory Expected => SeqPacket.Completion;

    protected override void Run(Func<IEventLoop, LoopTask> body) => base.Run(loop =>
    {
        Assert.False(loop is IReadinessEventLoop);
        return body(loop);
    });
}

/// <summary>
/// A loop with no fd readiness at all (the memory loop, a virtual-clock loop: AddReader is not
/// supported): the fallback picks the completion implementation by itself, as it will on the
/// proactor loop.
/// </summary>
public sealed class NoReadinessLoopSeqPacketTests() : SeqPacketContractTests(LoopKinds.Memory)
{
    protected override ISeqPacketTransportFactory Expected => SeqPacket.Completion;

    protected override void Run(Func<IEventLoop, LoopTask> body) => base.Run(loop =>
    {
        Assert.False(loop is IReadinessEventLoop);
        return body(loop);
    });
}
