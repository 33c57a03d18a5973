using System;

namespace Tulip;

/// <summary>How a stream transport calls its protocol: the one check every stream transport's <c>SetProtocol</c> makes.</summary>
internal static class StreamProtocolKind
{
    /// <summary>
    /// Splits <paramref name="protocol"/> into the interface the transport delivers through: an
    /// <see cref="IBufferedProtocol"/> (preferred when it is both) or an <see cref="IProtocol"/>.
    /// </summary>
    /// <exception cref="ArgumentException">It is neither.</exception>
    public static void Split(IBaseProtocol protocol, out IBufferedProtocol? buffered, out IProtocol? stream)
    {
        ArgumentNullException.ThrowIfNull(protocol);
        buffered = protocol as IBufferedProtocol;
        stream = buffered is null ? protocol as IProtocol : null;
        if (buffered is null && stream is null)
        {
            throw new ArgumentException($"A stream transport needs an {nameof(IProtocol)} or an {nameof(IBufferedProtocol)}; got {protocol.GetType().Name}.", nameof(protocol));
        }
    }

    /// <summary>
    /// Tells the protocol that the peer's end is done (<c>EofReceived</c>) where the transport closes on
    /// EOF whatever the answer (a pipe); a handler that throws reaches the loop's exception handler.
    /// The read-pipe transports of every loop call it.
    /// </summary>
    public static void CallEofReceived(IEventLoop loop, IBaseTransport transport, IBufferedProtocol? buffered, IProtocol? stream)
    {
        try
        {
            if (buffered is not null)
            {
                _ = buffered.EofReceived();
            }
            else
            {
                _ = stream!.EofReceived();
            }
        }
        catch (Exception ex)
        {
            loop.CallExceptionHandler(new ExceptionContext("Exception in protocol.EofReceived()")
            {
                Exception = ex,
                Transport = transport,
                Protocol = (IBaseProtocol?)buffered ?? stream,
            });
        }
    }
}
