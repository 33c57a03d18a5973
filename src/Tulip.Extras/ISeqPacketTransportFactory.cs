using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Tulip.Extras;

/// <summary>
/// The SOCK_SEQPACKET feature, as registered in a loop's <see cref="TransportRegistry"/>: what
/// <see cref="SeqPacket"/> calls. <see cref="SeqPacket.Readiness"/> runs on any
/// <see cref="IReadinessEventLoop"/>, <see cref="SeqPacket.Completion"/> on any
/// <see cref="ICompletionEventLoop"/>; another party may register its own for a loop of a new kind.
/// </summary>
public interface ISeqPacketTransportFactory
{
    /// <summary>
    /// Makes a SOCK_SEQPACKET socket and connects it to <paramref name="endPoint"/> without blocking
    /// the loop. While the listener's backlog is full the connect is retried until it gets in (or is cancelled).
    /// </summary>
    /// <exception cref="SocketException">The connect failed (nothing listens there, or a listener of another type).</exception>
    LoopTask<Socket> ConnectAsync(IEventLoop loop, EndPoint endPoint, CancellationToken cancellationToken);

    /// <summary>
    /// Makes a transport over the connected <paramref name="socket"/>, which it then owns, joined to
    /// <paramref name="protocol"/>. <c>ConnectionMade</c> is called on a later iteration, then
    /// <paramref name="connected"/> is completed (with the exception if <c>ConnectionMade</c> threw).
    /// </summary>
    IMessageTransport Attach(IEventLoop loop, Socket socket, IMessageProtocol protocol, Future<bool> connected);
}
