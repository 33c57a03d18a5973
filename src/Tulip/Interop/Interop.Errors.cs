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
    /// The one errno -> exception rule, used by every native call. Every message names the operation
    /// attempted and the errno (symbolic name and number), e.g. "epoll_ctl(EPOLL_CTL_ADD, fd 7) failed:
    /// bad file descriptor (EBADF, errno 9)".
    /// </summary>
    /// <remarks>
    /// What the errno becomes depends on what the call was made on (<paramref name="source"/>):
    /// <list type="bullet">
    /// <item><see cref="ErrnoSource.Socket"/> (I/O on a transport's socket: recv, send, sendmsg,
    /// recvfrom, sendto): always a <see cref="SocketException"/>, whatever the errno (EACCES and EPERM
    /// are <see cref="SocketError.AccessDenied"/>), so every socket call of every transport ends a
    /// connection the same way (<see cref="TransportLifecycle.IsOSError"/>).</item>
    /// <item><see cref="ErrnoSource.File"/> (I/O on a fd that is not a socket: pipes, FIFOs, terminals):
    /// always an <see cref="IOException"/> whose HResult is the errno, as .NET's file APIs raise, even for
    /// errnos that name a socket error elsewhere (EPIPE above all: a pipe whose reader went away is not a
    /// socket shut down).</item>
    /// <item><see cref="ErrnoSource.Call"/> (everything else: set-up calls, selectors, connect): connection
    /// errnos are <see cref="SocketException"/>s, ENOENT a <see cref="FileNotFoundException"/>, EACCES and
    /// EPERM <see cref="UnauthorizedAccessException"/>s, EINVAL an <see cref="ArgumentException"/>, the
    /// rest (EBADF, EMFILE...) <see cref="IOException"/>s with the errno as HResult.</item>
    /// </list>
    /// </remarks>
    /// <param name="errno">The Linux errno.</param>
    /// <param name="operation">What was attempted, as the syscall and its salient arguments.</param>
    /// <param name="path">The file system path involved, if any.</param>
    /// <param name="source">What the call was made on; see the remarks.</param>
    internal static Exception GetExceptionForErrno(int errno, string operation, string? path = null, ErrnoSource source = ErrnoSource.Call)
    {
        SocketError socketError = GetSocketError(errno);
        switch (source)
        {
            case ErrnoSource.Socket:
                if (errno is Errno.EACCES or Errno.EPERM)
                {
                    socketError = SocketError.AccessDenied;
                }

                return new SocketException((int)socketError, FormatMessage(errno, operation, path, Describe(errno)));
            case ErrnoSource.File:
                return new IOException(FormatMessage(errno, operation, path, errno == Errno.EPIPE ? "broken pipe: the reading end is closed" : Describe(errno)), errno);
        }

        if (socketError != SocketError.SocketError)
        {
            return new SocketException((int)socketError, FormatMessage(errno, operation, path, Describe(errno)));
        }

        return errno switch
        {
            Errno.ENOENT => new FileNotFoundException(FormatMessage(errno, operation, path, Describe(errno)), path) { HResult = errno },
            Errno.EACCES or Errno.EPERM => new UnauthorizedAccessException(FormatMessage(errno, operation, path, Describe(errno))) { HResult = errno },
            Errno.EINVAL => new ArgumentException(FormatMessage(errno, operation, path, Describe(errno))) { HResult = errno },
            _ => new IOException(FormatMessage(errno, operation, path, Describe(errno)), errno),
        };
    }

    /// <summary>What a failed call was made on, for <see cref="GetExceptionForErrno"/>.</summary>
    internal enum ErrnoSource
    {
        /// <summary>A set-up or control call (selectors, fcntl, connect...): the exception type follows the errno.</summary>
        Call,

        /// <summary>I/O on a socket: always a <see cref="SocketException"/>.</summary>
        Socket,

        /// <summary>I/O on a fd that is not a socket (a pipe, FIFO, terminal): always an <see cref="IOException"/>.</summary>
        File,
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

    private static string Describe(int errno) => errno switch
    {
        Errno.EBADF => "bad file descriptor",
        Errno.EMFILE or Errno.ENFILE => "too many open files (raise RLIMIT_NOFILE or close descriptors)",
        _ => Marshal.GetPInvokeErrorMessage(errno),
    };

    private static string FormatMessage(int errno, string operation, string? path, string description)
    {
        string errnoText = Errno.GetName(errno) is { } name ? $"{name}, errno {errno}" : $"errno {errno}";
        return path is null
            ? $"{operation} failed: {description} ({errnoText})"
            : $"{operation} '{path}' failed: {description} ({errnoText})";
    }
}
