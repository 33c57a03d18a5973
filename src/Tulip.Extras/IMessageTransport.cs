using System;

namespace Tulip.Extras;

/// <summary>
/// A transport that keeps message boundaries: each <see cref="Send"/> arrives as exactly one
/// <see cref="IMessageProtocol.MessageReceived"/> at the peer, never merged or split. Made by
/// <see cref="SeqPacket"/> over a connected AF_UNIX SOCK_SEQPACKET socket. All members are for the loop thread.
/// </summary>
/// <remarks>
/// Call order for the protocol, as the PEP's stream transports: <c>ConnectionMade</c>, then
/// <c>MessageReceived</c>*, then <c>EofReceived</c> if the peer closed, then <c>ConnectionLost</c>.
/// Flow control: above the high-water mark of bytes waiting to be sent, the protocol's
/// <c>PauseWriting</c> is called; at or below the low mark, <c>ResumeWriting</c>.
/// </remarks>
public interface IMessageTransport : IBaseTransport
{
    /// <summary>The largest message <see cref="Send"/> takes: 64 KiB, the size of the receive buffer.</summary>
    const int MaxMessageSize = 64 * 1024;

    /// <summary>
    /// Sends one message. Never blocks: a message the kernel does not take at once is copied and
    /// queued. After <see cref="IBaseTransport.Close"/> or <see cref="Abort"/>, messages are dropped.
    /// </summary>
    /// <exception cref="ArgumentException">The message is empty (a zero-length SOCK_SEQPACKET message
    /// cannot be told from the end of the connection) or longer than <see cref="MaxMessageSize"/>.</exception>
    void Send(ReadOnlySpan<byte> message);

    /// <summary>Closes at once, dropping queued messages; <c>ConnectionLost(null)</c> follows.</summary>
    void Abort();

    /// <summary>True unless reading is paused or the transport is closing.</summary>
    bool IsReading { get; }

    /// <summary>Stops delivering messages until <see cref="ResumeReading"/>. Idempotent.</summary>
    void PauseReading();

    /// <summary>Delivers messages again. Idempotent.</summary>
    void ResumeReading();

    /// <summary>Bytes queued and not yet sent.</summary>
    int GetWriteBufferSize();

    /// <summary>The low- and high-water marks of the send queue.</summary>
    (int Low, int High) GetWriteBufferLimits();

    /// <summary>Sets the marks (high defaults to 64 KiB, low to a quarter of high), as <see cref="IWriteTransport.SetWriteBufferLimits"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The marks are negative or low exceeds high.</exception>
    void SetWriteBufferLimits(int? high = null, int? low = null);
}

/// <summary>The protocol of an <see cref="IMessageTransport"/>.</summary>
public interface IMessageProtocol : IBaseProtocol
{
    /// <summary>One whole message from the peer; the span is valid only during the call.</summary>
    void MessageReceived(ReadOnlySpan<byte> message);

    /// <summary>The peer closed the connection; <see cref="IBaseProtocol.ConnectionLost"/> with null follows.</summary>
    void EofReceived();
}
