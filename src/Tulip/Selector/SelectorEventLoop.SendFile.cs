using System;
using System.Buffers;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using Microsoft.Win32.SafeHandles;

namespace Tulip;

// Sending files: asyncio's sock_sendfile and loop.sendfile. The zero-copy path is sendfile(2),
// driven like the other wrapped socket methods (try it; on EAGAIN wait for writability with a
// one-shot writer). When sendfile(2) cannot take the file (not a regular file, refused by the
// kernel), the fallback reads the file and sends the bytes, unless the caller said fallback: false.
// Either way the file's position ends at offset + sent, counted in bytes that reached the socket,
// also when the call is cancelled part way.
public partial class SelectorEventLoop
{
    /// <summary>
    /// Bytes read from the file per send by the fallback. asyncio reads 256 KiB for sockets and
    /// 16 KiB for transports; 64 KiB is one loopback TCP window and keeps the rented buffer off the
    /// large object heap.
    /// </summary>
    private const int SendFileChunkSize = 64 * 1024;

    /// <summary>
    /// Whether sendfile(2) is tried at all. Defaults to true; tests turn it off to run the fallback
    /// on files the kernel would send natively.
    /// </summary>
    internal bool UseNativeSendFile { get; set; } = true;

    /// <inheritdoc/>
    public override async LoopTask<long> SockSendFileAsync(Socket socket, FileStream file, long offset = 0, long? count = null,
        bool fallback = true, CancellationToken cancellationToken = default)
    {
        int fd = CheckNonBlocking(socket);
        SendFileArguments.Check(socket, file, offset, count);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        return await SendFileCoreAsync(socket, fd, file, offset, count, fallback, null);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Supported for the stream transports this loop makes (TCP and UNIX). The fallback sends
    /// straight from the file to the socket too, with the transport in the same state as for
    /// sendfile(2): its buffer drained, reading paused, writes refused. So the protocol sees no
    /// PauseWriting/ResumeWriting for the file's bytes, and whatever was written before the call
    /// reaches the peer first and whatever is written after it follows the file.
    /// </remarks>
    /// <exception cref="NotSupportedException"><paramref name="transport"/> is not a stream transport of this loop.</exception>
    public override async LoopTask<long> SendFileAsync(ITransport transport, FileStream file, long offset = 0, long? count = null,
        bool fallback = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transport);
        if (transport is not ISelectorSendFileTransport socketTransport || !ReferenceEquals(socketTransport.Loop, this))
        {
            throw new NotSupportedException($"SendFileAsync is not supported for {transport.GetType().Name}: it needs a stream transport made by this loop.");
        }

        if (socketTransport.IsClosing)
        {
            // Before looking at the socket, which is disposed once the transport has closed.
            throw new InvalidOperationException("The transport is closing: SendFileAsync cannot send on it.");
        }

        CheckIoCall(FdOf(socketTransport.Socket));
        SendFileArguments.Check(socketTransport.Socket, file, offset, count);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var session = socketTransport.BeginSendFile();
        try
        {
            if (session.Drained is { } drained)
            {
                // What was written before goes first.
                session.Arm(drained);
                try
                {
                    await drained;
                }
                finally
                {
                    session.Disarm();
                }
            }

            return await SendFileCoreAsync(socketTransport.Socket, FdOf(socketTransport.Socket), file, offset, count, fallback, session);
        }
        finally
        {
            socketTransport.EndSendFile(session);
        }
    }

    /// <summary>
    /// Sends with sendfile(2) if it can take the file, otherwise (when allowed) by reading and
    /// sending; sets the file's position to offset + sent however it ends.
    /// </summary>
    private async LoopTask<long> SendFileCoreAsync(Socket socket, int fd, FileStream file, long offset, long? count, bool fallback,
        SendFileSession? session)
    {
        long sent = 0;
        try
        {
            string? refusal = NativeSendFileRefusal(file);
            if (refusal is null)
            {
                // Unflushed writes of this FileStream are invisible to sendfile(2), which reads the fd.
                file.Flush();
                while (count is null || sent < count)
                {
                    session?.ThrowIfInterrupted();
                    long want = Math.Min(count is { } c ? c - sent : long.MaxValue, Interop.SendFileMaxChunk);
                    long n = SendFileOnce(fd, file.SafeFileHandle, offset + sent, want, out int errno);
                    if (n > 0)
                    {
                        sent += n;
                        if (sent != count)
                        {
                            // As asyncio: one sendfile(2) per writability event, so a big file does not hold the loop.
                            await WaitWritableAsync(fd, session);
                        }

                        continue;
                    }

                    if (n == 0)
                    {
                        break; // end of file
                    }

                    if (errno == Interop.Errno.EAGAIN)
                    {
                        await WaitWritableAsync(fd, session);
                    }
                    else if (errno != Interop.Errno.EINTR)
                    {
                        var error = Interop.GetExceptionForErrno(errno, $"sendfile(socket fd {fd}, file '{file.Name}')");
                        if (sent > 0 || !IsSendFileUnsupported(errno))
                        {
                            // A failure of the connection (EPIPE, ECONNRESET...), or one after bytes went out: no fallback.
                            throw error;
                        }

                        refusal = error.Message;
                        break;
                    }
                }

                if (refusal is null)
                {
                    return sent;
                }
            }

            if (!fallback)
            {
                throw new SendfileNotAvailableError($"sendfile(2) cannot send this file ({refusal}); pass fallback: true to read and send it instead.");
            }

            byte[] chunk = ArrayPool<byte>.Shared.Rent(SendFileChunkSize);
            try
            {
                while (count is null || sent < count)
                {
                    int want = (int)Math.Min(chunk.Length, count is { } c ? c - sent : chunk.Length);
                    // A regular file read is served from the page cache or the disk, never from the
                    // network: the loop thread reads it directly (asyncio's fallback uses an executor).
                    int read = file.CanSeek
                        ? RandomAccess.Read(file.SafeFileHandle, chunk.AsSpan(0, want), offset + sent)
                        : file.Read(chunk, 0, want);
                    if (read == 0)
                    {
                        break;
                    }

                    int done = 0;
                    while (done < read)
                    {
                        session?.ThrowIfInterrupted();
                        int n = socket.Send(chunk.AsSpan(done, read - done), SocketFlags.None, out SocketError error);
                        if (error == SocketError.Success)
                        {
                            done += n;
                            sent += n;
                        }
                        else if (error is SocketError.WouldBlock or SocketError.Interrupted)
                        {
                            await WaitWritableAsync(fd, session);
                        }
                        else
                        {
                            throw new SocketException((int)error);
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(chunk);
            }

            return sent;
        }
        finally
        {
            // Closed meanwhile (CanSeek is false then) or not seekable: there is no position to set.
            if (file.CanSeek)
            {
                file.Seek(offset + sent, SeekOrigin.Begin);
            }
        }
    }

    /// <summary>Why sendfile(2) cannot be tried for <paramref name="file"/>, or null if it can.</summary>
    private string? NativeSendFileRefusal(FileStream file)
    {
        if (!UseNativeSendFile)
        {
            return "sendfile(2) is turned off on this loop";
        }

        if (!OperatingSystem.IsLinux())
        {
            return "sendfile(2) is used on Linux only";
        }

        if (!file.CanSeek)
        {
            return "not a regular file";
        }

        return null;
    }

    /// <summary>One sendfile(2) from <paramref name="position"/>: bytes sent, 0 at end of file, or -1 with <paramref name="errno"/>.</summary>
    private static unsafe long SendFileOnce(int fd, SafeFileHandle file, long position, long count, out int errno)
    {
        nint n = OperatingSystem.IsLinux() ? Interop.SendFile(fd, file, &position, (nuint)count) : -1;
        errno = n < 0 ? Interop.GetLastErrno() : 0;
        return n;
    }

    /// <summary>The errnos with which sendfile(2) refuses the file rather than the connection (sendfile(2), ERRORS).</summary>
    private static bool IsSendFileUnsupported(int errno) =>
        errno is Interop.Errno.EINVAL or Interop.Errno.ENOSYS or Interop.Errno.EOPNOTSUPP or Interop.Errno.ESPIPE or Interop.Errno.EOVERFLOW;
}
