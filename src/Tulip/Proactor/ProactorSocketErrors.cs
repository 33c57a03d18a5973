using System.Net.Sockets;

namespace Tulip;

/// <summary>
/// The proactor's errors in the shape of the selector loop's: a <see cref="SocketException"/> whose
/// message names the call, says what went wrong, and gives the POSIX name of the error
/// ("sendto(127.0.0.1:9) failed: Permission denied (EACCES)"). The selector loop writes its
/// messages from the errno; the proactor gets a <see cref="SocketError"/> from the runtime, on
/// every platform, and names it here without native calls.
/// </summary>
internal static class ProactorSocketErrors
{
    /// <summary>A <see cref="SocketException"/> for <paramref name="error"/> in <paramref name="operation"/>.</summary>
    public static SocketException Describe(SocketError error, string operation)
    {
        string description = new SocketException((int)error).Message;
        return new SocketException((int)error, $"{operation} failed: {description} ({PosixName(error)})");
    }

    /// <summary>The POSIX errno name for <paramref name="error"/>, or the <see cref="SocketError"/> name when there is none.</summary>
    public static string PosixName(SocketError error) => error switch
    {
        SocketError.AccessDenied => "EACCES",
        SocketError.AddressAlreadyInUse => "EADDRINUSE",
        SocketError.AddressFamilyNotSupported => "EAFNOSUPPORT",
        SocketError.AddressNotAvailable => "EADDRNOTAVAIL",
        SocketError.AlreadyInProgress => "EALREADY",
        SocketError.ConnectionAborted => "ECONNABORTED",
        SocketError.ConnectionRefused => "ECONNREFUSED",
        SocketError.ConnectionReset => "ECONNRESET",
        SocketError.DestinationAddressRequired => "EDESTADDRREQ",
        SocketError.HostDown => "EHOSTDOWN",
        SocketError.HostUnreachable => "EHOSTUNREACH",
        SocketError.InProgress => "EINPROGRESS",
        SocketError.Interrupted => "EINTR",
        SocketError.InvalidArgument => "EINVAL",
        SocketError.IsConnected => "EISCONN",
        SocketError.MessageSize => "EMSGSIZE",
        SocketError.NetworkDown => "ENETDOWN",
        SocketError.NetworkReset => "ENETRESET",
        SocketError.NetworkUnreachable => "ENETUNREACH",
        SocketError.NoBufferSpaceAvailable => "ENOBUFS",
        SocketError.NotConnected => "ENOTCONN",
        SocketError.NotSocket => "ENOTSOCK",
        SocketError.OperationNotSupported => "EOPNOTSUPP",
        SocketError.ProtocolNotSupported => "EPROTONOSUPPORT",
        SocketError.Shutdown => "EPIPE",
        SocketError.TimedOut => "ETIMEDOUT",
        SocketError.TooManyOpenSockets => "EMFILE",
        SocketError.WouldBlock => "EAGAIN",
        _ => error.ToString(),
    };
}
