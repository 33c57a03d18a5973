using System;
using System.Buffers;
using System.IO;
using System.Net.Sockets;
using System.Threading;

namespace Tulip;

// Sending files, the completion way: asyncio's sock_sendfile and loop.sendfile on .NET's sockets.
// The native path hands the runtime one file range at a time (SocketAsyncEventArgs.SendPacketsElements:
// TransmitPackets on Windows, sendfile(2) elsewhere); no token reaches it, so a cancellation waits
// for the range in flight (see UseNativeSendFile). The copy path reads the file and sends what the
// socket takes at once; when the socket is full it hands the runtime ONE byte asynchronously, whose
// completion says there is room again. A one-byte send either happened or did not, so a cancelled
// copy knows exactly what reached the socket: the file's position ends at offset + sent, and the
// socket can go on where the file stopped (as on the selector loop).
public sealed partial class ProactorEventLoop
{
    /// <summary>Bytes read from the file per send by the copy path: 64 KiB, as the selector loop's fallback.</summary>
    private const int SendFileChunkSize = 64 * 1024;

    /// <summary>Bytes handed to the runtime per native file send (one completion each, so a big file does not hold the loop's attention).</summary>
    private const int NativeSendFileChunk = 1 << 20;

    /// <summary>
    /// Whether the runtime's file send (zero copy) is tried. Defaults to true, as on the selector loop;
    /// tests turn it off to run the copy path on files the runtime would send natively.
    /// </summary>
    /// <remarks>
    /// The runtime's file send takes no cancellation token, so a cancelled native send ends once the
    /// range in flight (at most <see cref="NativeSendFileChunk"/> bytes) has gone out, and counts it: the
    /// file's position is exact either way, but a peer that never reads holds the cancellation as long
    /// as it holds the send. An abort of the transport closes the socket, which ends the send at once.
    /// </remarks>
    internal bool UseNativeSendFile { get; set; } = true;

    /// <inheritdoc/>
    public override async LoopTask<long> SockSendFileAsync(Socket socket, FileStream file, long offset = 0, long? count = null,
        bool fallback = true, CancellationToken cancellationToken = default)
    {
        CheckSockCall(socket);
        SendFileArguments.Check(socket, file, offset, count);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var token = CurrentTask?.CancellationToken ?? default;
        return await SendFileCoreAsync(socket, file, offset, count, fallback, null, token);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Supported for the stream transports this loop makes (TCP and UNIX). While the file is sent the
    /// transport's buffer is drained, reading paused and writes refused, so whatever was written before
    /// the call reaches the peer first and whatever is written after it follows the file.
    /// </remarks>
    /// <exception cref="NotSupportedException"><paramref name="transport"/> is not a stream transport of this loop.</exception>
    public override async LoopTask<long> SendFileAsync(ITransport transport, FileStream file, long offset = 0, long? count = null,
        bool fallback = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(transport);
        if (transport is not ProactorSocketTransport socketTransport || !ReferenceEquals(socketTransport.Loop, this))
        {
            throw new NotSupportedException($"SendFileAsync is not supported for {transport.GetType().Name}: it needs a stream transport made by this loop.");
        }

        if (socketTransport.IsClosing)
        {
            // Before looking at the socket, which is disposed once the transport has closed.
            throw new InvalidOperationException("The transport is closing: SendFileAsync cannot send on it.");
        }

        if (IsClosed)
        {
            throw new InvalidOperationException("The event loop is closed: create a new one with EventLoop.NewEventLoop().");
        }

        if (Debug)
        {
            CheckThread();
        }

        SendFileArguments.Check(socketTransport.Socket, file, offset, count);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var session = socketTransport.BeginSendFile(CurrentTask?.CancellationToken ?? default);
        try
        {
            if (session.Drained is { } drained)
            {
                await drained; // what was written before goes first; an abort fails it
            }

            return await SendFileCoreAsync(socketTransport.Socket, file, offset, count, fallback, session, session.Token);
        }
        finally
        {
            socketTransport.EndSendFile(session);
        }
    }

    /// <summary>
    /// Sends natively if allowed and the file can be sent so, otherwise (when allowed) by reading and
    /// sending; sets the file's position to offset + sent however it ends.
    /// </summary>
    private async LoopTask<long> SendFileCoreAsync(Socket socket, FileStream file, long offset, long? count, bool fallback,
        ProactorSendFileSession? session, CancellationToken token)
    {
        long sent = 0;
        try
        {
            string? refusal = NativeSendFileRefusal(file, offset, out var native);
            if (refusal is null)
            {
                // Unflushed writes of this FileStream are invisible to a send that reads the file itself.
                file.Flush();
                long end = count is { } c ? Math.Min(file.Length, offset + c) : file.Length;
                if (offset < end)
                {
                    using var operation = new NativeFileSend(this);
                    while (offset + sent < end)
                    {
                        session?.ThrowIfInterrupted();
                        int want = (int)Math.Min(end - offset - sent, NativeSendFileChunk);
                        var (n, error, cancelled) = await operation.SendAsync(socket, native!, offset + sent, want, session);
                        sent += n;
                        if (session?.Stopped is { } stopped)
                        {
                            throw stopped;
                        }

                        if (cancelled || token.IsCancellationRequested)
                        {
                            throw new CancelledError();
                        }

                        if (error != SocketError.Success)
                        {
                            if (sent == 0 && error is SocketError.InvalidArgument or SocketError.OperationNotSupported)
                            {
                                // The runtime (the kernel) refuses the file, not the connection.
                                refusal = SendFileFailure(socket, file, error).Message;
                                break;
                            }

                            throw SendFileFailure(socket, file, error);
                        }

                        if (n == 0)
                        {
                            break; // the file shrank
                        }
                    }
                }

                if (refusal is null)
                {
                    return sent;
                }
            }

            if (!fallback)
            {
                if (!socket.Connected)
                {
                    // A connection problem is not "sendfile unavailable": it is reported as itself.
                    throw SendFileFailure(socket, file, SocketError.NotConnected);
                }

                throw new SendfileNotAvailableError($"The native file send cannot send this file ({refusal}); pass fallback: true to read and send it instead.");
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
                    bool yielded = false;
                    while (done < read)
                    {
                        session?.ThrowIfInterrupted();
                        int n = socket.Send(chunk.AsSpan(done, read - done), SocketFlags.None, out SocketError error);
                        if (error is SocketError.WouldBlock or SocketError.Interrupted)
                        {
                            // Full: one byte through the runtime, whose completion says there is room again.
                            n = await SendOneByteAsync(socket, chunk.AsMemory(done, 1), session, token);
                        }
                        else if (error != SocketError.Success)
                        {
                            throw new SocketException((int)error);
                        }

                        done += n;
                        sent += n;
                        yielded |= n == 1 && error != SocketError.Success;
                    }

                    if (!yielded)
                    {
                        // One chunk per loop iteration, as the selector loop sends one per writability event:
                        // a big file does not hold the loop, and the call never finishes inside its own start.
                        await Tasks.Sleep(0, CancellationToken.None); // the task's own cancellation still ends it
                    }

                    yielded = false;
                }
            }
            finally
            {
                // Every operation on the chunk has completed (a cancelled one too) before this runs.
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

    /// <summary>Sends one byte through the runtime: 1 when sent, 0 never; a cancellation (the task's or the session's) throws.</summary>
    private async LoopTask<int> SendOneByteAsync(Socket socket, ReadOnlyMemory<byte> oneByte, ProactorSendFileSession? session, CancellationToken token)
    {
        var operation = socket.SendAsync(oneByte, SocketFlags.None, token);
        bool counted = BeginCounted(operation.IsCompleted);
        try
        {
            return await operation;
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            if (session?.Stopped is { } stopped)
            {
                throw stopped;
            }

            throw new CancelledError();
        }
        finally
        {
            EndCounted(counted);
        }
    }

    /// <summary>
    /// Why the native send is not tried for <paramref name="file"/>, or null if it is; then
    /// <paramref name="native"/> is the stream to hand the runtime: the file itself if it was opened
    /// for asynchronous I/O, which the runtime asks of it, otherwise a second stream over the same
    /// handle that says so (never disposed: the handle is the caller's).
    /// </summary>
    private string? NativeSendFileRefusal(FileStream file, long offset, out FileStream? native)
    {
        native = null;
        if (!UseNativeSendFile)
        {
            return "the native file send is turned off on this loop";
        }

        if (!file.CanSeek)
        {
            return "not a regular file";
        }

        if (file.Length == 0 || file.Length <= offset)
        {
            // A file that reports no length may still hold data (/proc, devices): only a read can tell.
            Span<byte> probe = stackalloc byte[1];
            if (RandomAccess.Read(file.SafeFileHandle, probe, offset) > 0)
            {
                return "the file reports a length its data does not have (a /proc or device file)";
            }
        }

        if (file.IsAsync)
        {
            native = file;
            return null;
        }

        try
        {
            native = new FileStream(file.SafeFileHandle, FileAccess.Read, bufferSize: 0, isAsync: true);
        }
        catch (ArgumentException ex)
        {
            // Windows checks the handle's mode: a file opened without FileOptions.Asynchronous is copied.
            return $"the file was not opened for asynchronous I/O (FileOptions.Asynchronous): {ex.Message}";
        }

        return null;
    }

    private static SocketException SendFileFailure(Socket socket, FileStream file, SocketError error)
    {
        string fd = socket.SafeHandle.IsClosed ? "closed" : socket.Handle.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return ProactorSocketErrors.WithErrno(error, $"sendfile(socket fd {fd}, file '{file.Name}')");
    }

    /// <summary>
    /// One native file send in flight at a time: a reusable <see cref="ProactorOperation"/> whose
    /// completion completes the future the sending task awaits. Owned by the loop thread.
    /// </summary>
    private sealed class NativeFileSend : IDisposable
    {
        private readonly ProactorEventLoop _loop;
        private readonly ProactorOperation _operation;
        private Future<VoidResult>? _done;

        public NativeFileSend(ProactorEventLoop loop)
        {
            _loop = loop;
            _operation = new ProactorOperation(loop, loop.MakeCompletionHandle(static s => s.Completed(), this));
        }

        private void Completed()
        {
            _operation.Pending = false;
            _done?.TrySetResult(default);
        }

        /// <summary>
        /// Sends <paramref name="count"/> bytes of the file from <paramref name="position"/>. A cancellation
        /// of the awaiting task waits for the range in flight (no token reaches the runtime's file send),
        /// then is reported by <c>Cancelled</c>; an abort closes the socket, which ends the send.
        /// </summary>
        public async LoopTask<(long Sent, SocketError Error, bool Cancelled)> SendAsync(Socket socket, FileStream file, long position, int count,
            ProactorSendFileSession? session)
        {
            _operation.SendPacketsElements = [new SendPacketsElement(file, position, count, endOfPacket: true)];
            _done = new Future<VoidResult>(_loop);
            bool cancelled = false;
            _operation.Pending = true;
            if (session is not null)
            {
                session.NativeInFlight = true;
            }

            try
            {
                bool pending;
                try
                {
                    pending = socket.SendPacketsAsync(_operation);
                }
                catch (ObjectDisposedException)
                {
                    _operation.Pending = false;
                    return (0, SocketError.OperationAborted, false);
                }

                while (pending && !_done.Done)
                {
                    try
                    {
                        await Tasks.Shield(_done);
                    }
                    catch (CancelledError)
                    {
                        cancelled = true; // taken once the range in flight is accounted for
                    }
                }

                if (!pending)
                {
                    _operation.Pending = false;
                }
            }
            finally
            {
                if (session is not null)
                {
                    session.NativeInFlight = false;
                }
            }

            return (_operation.BytesTransferred, _operation.SocketError, cancelled);
        }

        public void Dispose()
        {
            if (!_operation.Pending)
            {
                _operation.Dispose();
            }
        }
    }
}
