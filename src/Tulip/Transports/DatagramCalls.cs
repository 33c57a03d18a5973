using System;
using System.Net;

namespace Tulip;

/// <summary>
/// The datagram protocol's two receiving calls as every loop's datagram transport makes them: a
/// handler that throws reaches the loop's exception handler and the endpoint reads on (asyncio does
/// the same), and a datagram larger than the receive buffer is reported, never delivered cut short.
/// </summary>
internal static class DatagramCalls
{
    /// <summary>
    /// Delivers one datagram of <paramref name="length"/> bytes; one larger than <paramref name="buffer"/>
    /// (or <paramref name="truncated"/>, when the kernel said so without the real length) is reported instead.
    /// </summary>
    public static void Deliver(BaseEventLoop loop, IBaseTransport transport, IDatagramProtocol protocol, byte[] buffer, long length, EndPoint sender,
        bool truncated = false) =>
        Deliver(loop, transport, protocol, new ReadOnlySpan<byte>(buffer), length, sender, truncated);

    /// <summary>
    /// Delivers one datagram of <paramref name="length"/> bytes received into <paramref name="buffer"/> (the
    /// whole receive buffer, valid during the call only, as the protocol's span is); one larger than it (or
    /// <paramref name="truncated"/>) is reported instead.
    /// </summary>
    public static void Deliver(BaseEventLoop loop, IBaseTransport transport, IDatagramProtocol protocol, ReadOnlySpan<byte> buffer, long length, EndPoint sender,
        bool truncated = false)
    {
        if (truncated || length > buffer.Length)
        {
            string size = length > buffer.Length ? $"{length} bytes" : $"more than {buffer.Length} bytes";
            ErrorReceived(loop, transport, protocol, new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.MessageSize,
                $"A datagram of {size} from {DatagramAddressing.Describe(sender)} is larger than the {buffer.Length}-byte receive buffer; it was dropped, not delivered cut short."));
            return;
        }

        try
        {
            protocol.DatagramReceived(buffer[..(int)length], sender);
        }
        catch (Exception ex)
        {
            // One datagram's handler failing does not end the endpoint (asyncio lets the
            // exception reach the loop's handler and keeps reading).
            loop.CallExceptionHandler(new ExceptionContext("Exception in protocol.DatagramReceived()")
            {
                Exception = ex,
                Transport = transport,
                Protocol = protocol,
            });
        }
    }

    /// <summary>Tells the protocol of an error the socket reported (an ICMP error, a send refused); a handler that throws reaches the loop's exception handler.</summary>
    public static void ErrorReceived(BaseEventLoop loop, IBaseTransport transport, IDatagramProtocol protocol, Exception error)
    {
        try
        {
            protocol.ErrorReceived(error);
        }
        catch (Exception ex)
        {
            loop.CallExceptionHandler(new ExceptionContext("Exception in protocol.ErrorReceived()")
            {
                Exception = ex,
                Transport = transport,
                Protocol = protocol,
            });
        }
    }
}
