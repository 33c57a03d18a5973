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
    /// <summary>Connects <paramref name="socket"/> (an unconnected SOCK_SEQPACKET socket) to <paramref name="endPoint"/> without blocking the loop.</summary>
    LoopTask ConnectAsync(IEventLoop loop, Socket socket, EndPoint endPoint, CancellationToken cancellationToken);

    /// <summary>
    /// Makes a transport over the connected <paramref name="socket"/>, which it then owns, joined to
    /// <paramref name="protocol"/>. <c>ConnectionMade</c> is called on a later iteration, then
    /// <paramref name="connected"/> is completed (with the exception if <c>ConnectionMade</c> threw).
    /// </summary>
    IMessageTransport Attach(IEventLoop loop, Socket socket, IMessageProtocol protocol, Future<bool> connected);
}
