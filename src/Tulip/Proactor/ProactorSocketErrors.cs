using System;
using System.Net.Sockets;

namespace Tulip;

/// <summary>
/// The proactor's errors in the shapes of the selector loop's, one place for both: a
/// <see cref="SocketException"/> whose message names the call, says what went wrong, and gives the
/// error's POSIX name for datagrams ("sendto(127.0.0.1:9) failed: Permission denied (EACCES)") or its
/// number for streams ("send(fd 12) failed: ... (errno 32)"), as the selector's two transports do. The selector loop writes its
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

    /// <summary>
    /// A <see cref="SocketException"/> for <paramref name="error"/> in <paramref name="operation"/> on a stream
    /// socket, in the selector's stream shape: the call, the handle, the error's number
    /// ("send(fd 12) failed: Broken pipe (errno 32)").
    /// </summary>
    public static SocketException WithErrno(SocketError error, string operation, nint handle) =>
        WithErrno(error, $"{operation}(fd {handle})");

    /// <summary>As <see cref="WithErrno(SocketError, string, nint)"/>, with the call and its arguments given whole ("sendfile(socket fd 12, file 'x')").</summary>
    public static SocketException WithErrno(SocketError error, string call)
    {
        var plain = new SocketException((int)error);
        string code = OperatingSystem.IsWindows() ? $"error {plain.NativeErrorCode}" : $"errno {plain.NativeErrorCode}";
        return new SocketException((int)error, $"{call} failed: {plain.Message} ({code})");
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
