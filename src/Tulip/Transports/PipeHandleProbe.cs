using System;
using System.Runtime.InteropServices;

namespace Tulip;

/// <summary>
/// What every loop's pipe transports check about the handle they are given before taking it, written
/// once so both multiplexers refuse the same mistakes with the same exceptions: a closed or invalid
/// handle, an fd that is not open, a kind of file that is not a stream (asyncio's rule: a pipe, FIFO,
/// socket or character device), the wrong end (a read end given for writing).
/// </summary>
/// <remarks>
/// The platform sits behind this one seam: on Linux the checks are fstat(2) and fcntl(F_GETFL) with
/// Linux's constants; elsewhere nothing here calls native code and only the handle's state is
/// checked (<see cref="PipeHandleInfo.FileType"/> is then <see cref="PipeHandleInfo.UnknownType"/>),
/// so a wrong kind of handle fails on the first read or write instead. The proactor's pipes use it
/// for that reason: it is the only platform-specific step they take.
/// </remarks>
internal static class PipeHandleProbe
{
    /// <summary>
    /// Checks <paramref name="pipe"/> for a transport of the given direction, without changing it.
    /// </summary>
    /// <param name="pipe">The handle given to the pipe method.</param>
    /// <param name="forWriting">True for a write pipe.</param>
    /// <exception cref="ObjectDisposedException">The handle is closed.</exception>
    /// <exception cref="ArgumentException">The handle is invalid, the fd is not open, of the wrong kind, or not open for the direction.</exception>
    internal static PipeHandleInfo Check(SafeHandle pipe, bool forWriting)
    {
        ObjectDisposedException.ThrowIf(pipe.IsClosed, pipe);
        if (pipe.IsInvalid)
        {
            throw new ArgumentException("The handle is invalid: it has no file descriptor.", nameof(pipe));
        }

        int fd = checked((int)pipe.DangerousGetHandle());
        if (!LinuxInterop.IsAvailable)
        {
            return new PipeHandleInfo(fd, PipeHandleInfo.UnknownType, -1);
        }

        string method = forWriting ? "ConnectWritePipeAsync" : "ConnectReadPipeAsync";
        if (!Interop.TryGetFdFileType(fd, out int fileType, out int errno))
        {
            var cause = Interop.GetExceptionForErrno(errno, $"fstat(fd {fd})", source: Interop.ErrnoSource.File);
            throw errno == Interop.Errno.EBADF
                ? new ArgumentException($"fd {fd} is not an open file descriptor: {method} needs the fd of an open pipe.", nameof(pipe), cause)
                : cause;
        }

        if (fileType is not (Interop.S_IFIFO or Interop.S_IFSOCK or Interop.S_IFCHR))
        {
            throw new ArgumentException(
                $"fd {fd} is {Describe(fileType)}, which cannot be polled: {method} takes a pipe, a FIFO, a socket or a character device " +
                "(asyncio refuses the same). Read or write a file with FileStream, off the loop thread (RunInExecutor).", nameof(pipe));
        }

        int flags = Interop.Fcntl(fd, Interop.F_GETFL);
        if (flags < 0)
        {
            throw Interop.GetExceptionForErrno(Interop.GetLastErrno(), $"fcntl(fd {fd}, F_GETFL)", source: Interop.ErrnoSource.File);
        }

        int access = flags & Interop.O_ACCMODE;
        if (forWriting ? access == Interop.O_RDONLY : access == Interop.O_WRONLY)
        {
            throw new ArgumentException(
                $"fd {fd} is open {(forWriting ? "read-only" : "write-only")}: {method} needs {(forWriting ? "the write end" : "the read end")} of the pipe.",
                nameof(pipe));
        }

        return new PipeHandleInfo(fd, fileType, flags);
    }

    /// <summary>Throws unless <paramref name="protocol"/> can receive a read pipe's data (every loop's read pipes ask the same).</summary>
    /// <exception cref="ArgumentException">It is neither an <see cref="IProtocol"/> nor an <see cref="IBufferedProtocol"/>.</exception>
    internal static void CheckReadProtocol(IBaseProtocol protocol)
    {
        if (protocol is not (IProtocol or IBufferedProtocol))
        {
            throw new ArgumentException(
                $"A read pipe needs an {nameof(IProtocol)} or an {nameof(IBufferedProtocol)} to deliver data to; got {protocol.GetType().Name}.",
                nameof(protocol));
        }
    }

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static string Describe(int fileType) => fileType switch
    {
        Interop.S_IFREG => "a regular file",
        Interop.S_IFDIR => "a directory",
        Interop.S_IFBLK => "a block device",
        _ => $"a file of type 0x{fileType:x}",
    };
}

/// <summary>What <see cref="PipeHandleProbe.Check"/> found: the fd number, its kind and its status flags.</summary>
/// <param name="Fd">The fd number (the handle's value).</param>
/// <param name="FileType">The file-type bits (<see cref="Interop.S_IFMT"/>), or <see cref="UnknownType"/> where the platform was not asked.</param>
/// <param name="StatusFlags">fcntl(F_GETFL) as found, or -1 where the platform was not asked.</param>
internal readonly record struct PipeHandleInfo(int Fd, int FileType, int StatusFlags)
{
    /// <summary>The kind of file is not known (the platform has no probe).</summary>
    internal const int UnknownType = -1;

    /// <summary>A pipe, FIFO or socket: a kind whose reader leaving the write end can see (a terminal's cannot).</summary>
    internal bool ReportsReaderGone => FileType is FifoType or SocketType or UnknownType;

    // POSIX's S_IFIFO and S_IFSOCK, the same bits on every Unix: this record is read on every platform.
    private const int FifoType = 0x1000;
    private const int SocketType = 0xC000;
}
