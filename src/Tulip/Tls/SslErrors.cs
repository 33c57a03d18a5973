using System;
using System.IO;

namespace Tulip;

/// <summary>
/// The peer's TLS stream ended without its close_notify alert: the transport beneath reached its end
/// (a TCP FIN or a lost connection) while the TLS session was open, so the data may have been cut
/// short by an attacker or a crash. A TLS transport's protocol gets it in
/// <see cref="IBaseProtocol.ConnectionLost"/>, never a clean <c>EofReceived</c>.
/// </summary>
/// <remarks>
/// A peer that means to end the stream sends close_notify first (<see cref="IBaseTransport.Close"/> on a
/// Tulip TLS transport does); a length-delimited protocol that knows it has read everything may treat
/// this as a normal end, as HTTP/1.1 clients with a Content-Length do.
/// </remarks>
public sealed class SslTruncationException : IOException
{
    /// <summary>Creates the error with the default message.</summary>
    public SslTruncationException()
        : base("The peer ended the TLS connection without a close_notify alert: the data received may be truncated.")
    {
    }

    /// <summary>Creates the error with <paramref name="message"/>.</summary>
    public SslTruncationException(string message) : base(message)
    {
    }

    /// <summary>Creates the error with <paramref name="message"/> and the error that caused it.</summary>
    public SslTruncationException(string message, Exception? innerException) : base(message, innerException)
    {
    }
}
