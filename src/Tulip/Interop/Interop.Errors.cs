using System;
using System.Diagnostics.CodeAnalysis;
using System.IO;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>errno of the last <c>SetLastError = true</c> call on this thread.</summary>
    internal static int GetLastErrno() => Marshal.GetLastPInvokeError();

    /// <summary>
    /// errno right after a call declared without <c>SetLastError</c> returned its failure value
    /// (<see cref="Recv"/>, <see cref="Send"/>). Call it before anything else can touch errno. It is the
    /// same read the generated stub of a <c>SetLastError = true</c> import makes after its call: the
    /// runtime keeps errno across the return from native code.
    /// </summary>
    internal static int GetErrnoAfterFailure() => Marshal.GetLastSystemError();

    /// <summary>
    /// The one errno -> exception mapping. Every message names the operation attempted and the
    /// errno (symbolic name and number), e.g. "epoll_ctl(EPOLL_CTL_ADD, fd 7) failed: bad file descriptor (EBADF, errno 9)".
    /// </summary>
    /// <param name="errno">The Linux errno.</param>
    /// <param name="operation">What was attempted, as the syscall and its salient arguments.</param>
    /// <param name="path">The file system path involved, if any.</param>
    internal static Exception GetExceptionForErrno(int errno, string operation, string? path = null)
    {
        SocketError socketError = GetSocketError(errno);
        if (socketError != SocketError.SocketError)
        {
            return new SocketException((int)socketError, FormatMessage(errno, operation, path, Marshal.GetPInvokeErrorMessage(errno)));
        }

        switch (errno)
        {
            case Errno.EBADF:
                return new IOException(FormatMessage(errno, operation, path, "bad file descriptor"), errno);
            case Errno.ENOENT:
                return new FileNotFoundException(FormatMessage(errno, operation, path, Marshal.GetPInvokeErrorMessage(errno)), path) { HResult = errno };
            case Errno.EACCES:
            case Errno.EPERM:
                return new UnauthorizedAccessException(FormatMessage(errno, operation, path, Marshal.GetPInvokeErrorMessage(errno))) { HResult = errno };
            case Errno.EINVAL:
                return new ArgumentException(FormatMessage(errno, operation, path, Marshal.GetPInvokeErrorMessage(errno))) { HResult = errno };
            case Errno.EMFILE:
            case Errno.ENFILE:
                return new IOException(FormatMessage(errno, operation, path, "too many open files (raise RLIMIT_NOFILE or close descriptors)"), errno);
            default:
                return new IOException(FormatMessage(errno, operation, path, Marshal.GetPInvokeErrorMessage(errno)), errno);
        }
    }

    /// <summary>
    /// For fds that are not sockets (pipes, FIFOs, terminals): an <see cref="IOException"/> whose
    /// HResult is the errno, as .NET's own file APIs raise, even for errnos that
    /// <see cref="GetExceptionForErrno"/> turns into a <see cref="SocketException"/> (EPIPE above all:
    /// a pipe whose reader went away is not a socket shut down).
    /// </summary>
    internal static IOException GetIOExceptionForErrno(int errno, string operation)
    {
        string description = errno switch
        {
            Errno.EPIPE => "broken pipe: the reading end is closed",
            Errno.EBADF => "bad file descriptor",
            _ => Marshal.GetPInvokeErrorMessage(errno),
        };
        return new IOException(FormatMessage(errno, operation, null, description), errno);
    }

    /// <summary>Throws <see cref="GetExceptionForErrno"/>. Kept out of line so the callers' hot paths stay small.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void ThrowForErrno(int errno, string operation, string? path = null) =>
        throw GetExceptionForErrno(errno, operation, path);

    /// <summary>Throws for the errno of the last <c>SetLastError = true</c> call on this thread.</summary>
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void ThrowForLastErrno(string operation, string? path = null) =>
        throw GetExceptionForErrno(Marshal.GetLastPInvokeError(), operation, path);

    /// <summary>The <see cref="SocketError"/> for a connection-level errno, or <see cref="SocketError.SocketError"/>
    /// if <paramref name="errno"/> is not one (it then maps to a non-socket exception).</summary>
    internal static SocketError GetSocketError(int errno) => errno switch
    {
        Errno.ECONNREFUSED => SocketError.ConnectionRefused,
        Errno.ECONNRESET => SocketError.ConnectionReset,
        Errno.ECONNABORTED => SocketError.ConnectionAborted,
        // EPIPE: the peer is gone or this side shut down writing; dotnet/runtime maps it to Shutdown too.
        Errno.EPIPE => SocketError.Shutdown,
        Errno.ENOTCONN => SocketError.NotConnected,
        Errno.EISCONN => SocketError.IsConnected,
        Errno.ETIMEDOUT => SocketError.TimedOut,
        Errno.EHOSTUNREACH => SocketError.HostUnreachable,
        Errno.ENETUNREACH => SocketError.NetworkUnreachable,
        Errno.ENETDOWN => SocketError.NetworkDown,
        Errno.EADDRINUSE => SocketError.AddressAlreadyInUse,
        Errno.EADDRNOTAVAIL => SocketError.AddressNotAvailable,
        Errno.EINPROGRESS => SocketError.InProgress,
        Errno.EMSGSIZE => SocketError.MessageSize,
        Errno.ENOBUFS => SocketError.NoBufferSpaceAvailable,
        Errno.EALREADY => SocketError.AlreadyInProgress,
        _ => SocketError.SocketError,
    };

    /// <summary>
    /// As <see cref="GetExceptionForErrno"/>, but always a <see cref="SocketException"/>: for the errors
    /// a socket operation reports to a protocol (a datagram protocol's <c>ErrorReceived</c>), where
    /// EACCES (a broadcast without SO_BROADCAST) and EPERM (a firewall) are socket errors too.
    /// </summary>
    internal static SocketException GetSocketExceptionForErrno(int errno, string operation)
    {
        SocketError socketError = errno is Errno.EACCES or Errno.EPERM ? SocketError.AccessDenied : GetSocketError(errno);
        return new SocketException((int)socketError, FormatMessage(errno, operation, null, Marshal.GetPInvokeErrorMessage(errno)));
    }

    private static string FormatMessage(int errno, string operation, string? path, string description)
    {
        string errnoText = Errno.GetName(errno) is { } name ? $"{name}, errno {errno}" : $"errno {errno}";
        return path is null
            ? $"{operation} failed: {description} ({errnoText})"
            : $"{operation} '{path}' failed: {description} ({errnoText})";
    }
}
