using System;
using System.Net;

namespace Tulip;

/// <summary>
/// A protocol for datagrams (UDP, UNIX datagram sockets): the PEP's <c>DatagramProtocol</c>.
/// </summary>
/// <remarks>
/// Call order: <c>ConnectionMade → (DatagramReceived | ErrorReceived)* → ConnectionLost</c>.
/// One call per datagram: never merged, never split.
/// </remarks>
public interface IDatagramProtocol : IBaseProtocol
{
    /// <summary>
    /// A datagram arrived from <paramref name="address"/>. The span is valid only during the call.
    /// The address object may be shared by later calls for the same sender (so receiving allocates
    /// nothing): keep it, compare it, send to it, but do not modify it.
    /// </summary>
    void DatagramReceived(ReadOnlySpan<byte> data, EndPoint address);

    /// <summary>
    /// A send or receive failed (for instance an ICMP port-unreachable, reported as a
    /// <see cref="System.Net.Sockets.SocketException"/> with <c>ConnectionRefused</c>). The endpoint stays usable.
    /// </summary>
    void ErrorReceived(Exception exception);
}

/// <summary>
/// A datagram protocol with no-op defaults, to override what is needed: asyncio's <c>DatagramProtocol</c> class.
/// </summary>
public abstract class DatagramProtocol : IDatagramProtocol
{
    /// <inheritdoc/>
    public virtual void ConnectionMade(IBaseTransport transport)
    {
    }

    /// <inheritdoc/>
    public virtual void DatagramReceived(ReadOnlySpan<byte> data, EndPoint address)
    {
    }

    /// <inheritdoc/>
    public virtual void ErrorReceived(Exception exception)
    {
    }

    /// <inheritdoc/>
    public virtual void ConnectionLost(Exception? exception)
    {
    }

    /// <inheritdoc/>
    public virtual void PauseWriting()
    {
    }

    /// <inheritdoc/>
    public virtual void ResumeWriting()
    {
    }
}
