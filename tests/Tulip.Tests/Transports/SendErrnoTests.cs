using System.Net.Sockets;
using Tulip;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// The same errno ends a stream connection the same way whichever call met it: send(2) from
/// <c>Write</c> and sendmsg(2) from <c>WriteLines</c> once disagreed (the first closed quietly, the
/// second reached the exception handler as if the protocol had thrown).
/// </summary>
public abstract class SendErrnoTests : LoopSuite
{
    protected SendErrnoTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>
    /// A stream transport over an unconnected UDP socket: every send fails with EDESTADDRREQ, an errno
    /// that names no SocketError (the old sendmsg path turned it into an IOException).
    /// </summary>
    private async LoopTask<(ITransport Transport, RecordingProtocol Protocol)> UnconnectedTransport(BaseEventLoop loop)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { Blocking = false };
        var protocol = new RecordingProtocol(loop);
        var waiter = new Future<VoidResult>(loop);
        // The public calls want a connected stream socket: the kind's probe makes its transport over this one.
        var transport = Kind.RawSocketTransport(loop, socket, protocol, waiter);
        await waiter;
        return (transport, protocol);
    }

    [Fact]
    public void SendAndSendmsgFailuresEndTheConnectionQuietlyAndAlike()
    {
        var errors = new List<ExceptionContext>();
        Run(Kind, async loop =>
        {
            var (single, singleProtocol) = await UnconnectedTransport(loop);
            single.Write("one buffer: send(2)"u8);
            var viaSend = await singleProtocol.Lost;

            var (vector, vectorProtocol) = await UnconnectedTransport(loop);
            vector.WriteLines([new ReadOnlyMemory<byte>("two buffers: "u8.ToArray()), new ReadOnlyMemory<byte>("sendmsg(2)"u8.ToArray())]);
            var viaSendmsg = await vectorProtocol.Lost;

            var fromSend = Assert.IsType<SocketException>(viaSend);
            var fromSendmsg = Assert.IsType<SocketException>(viaSendmsg);
            Assert.Equal(fromSend.SocketErrorCode, fromSendmsg.SocketErrorCode);
            Assert.StartsWith("send(fd ", fromSend.Message, StringComparison.Ordinal);
            // Ring writes send WriteLines' gathered chunks as one ring send, and name that call.
            Assert.StartsWith(Kind.DefersWrites ? "send(fd " : "sendmsg(fd ", fromSendmsg.Message, StringComparison.Ordinal);
            Assert.EndsWith("(errno 89)", fromSend.Message, StringComparison.Ordinal); // EDESTADDRREQ
            Assert.EndsWith("(errno 89)", fromSendmsg.Message, StringComparison.Ordinal);
            Assert.True(single.IsClosing);
            Assert.True(vector.IsClosing);
            Assert.Empty(singleProtocol.Errors);
            Assert.Empty(vectorProtocol.Errors);
        }, errors: errors);
        Assert.True(errors.Count == 0, "an OS error reached the exception handler: " + string.Join("\n", errors));
    }
}

public sealed class EpollSendErrnoTests() : SendErrnoTests(LoopKinds.Epoll);

public sealed class PollSendErrnoTests() : SendErrnoTests(LoopKinds.Poll);

public sealed class ProactorSendErrnoTests() : SendErrnoTests(LoopKinds.Proactor);
