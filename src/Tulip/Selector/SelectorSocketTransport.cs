using System;
using System.Buffers;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.Versioning;

namespace Tulip;

/// <summary>
/// A stream transport over a non-blocking socket on a <see cref="SelectorEventLoop"/>: asyncio's
/// <c>_SelectorSocketTransport</c>. Used for TCP and UNIX stream sockets alike.
/// </summary>
/// <remarks>
/// <para>
/// Reads: one <c>recv</c> per readiness event, into the loop's shared read buffer for an
/// <see cref="IProtocol"/>, or into <see cref="IBufferedProtocol.GetBuffer"/> for a buffered one.
/// Writes: <see cref="Write"/> sends at once when nothing is pending and buffers only what the
/// kernel refuses; the writer is registered only while there is a backlog.
/// </para>
/// <para>
/// The reader and writer handles are made once per transport (the writer on the first write the
/// socket refuses), so re-arming allocates nothing.
/// Protocol calls go through the loop's ready queue as in asyncio: <c>ConnectionMade</c> and
/// <c>ConnectionLost</c> are scheduled, never called from inside <c>Write</c> or <c>Close</c>.
/// Everything here is owned by the loop thread.
/// </para>
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed class SelectorSocketTransport : SelectorTransport, ITransport, IServerClient, ISelectorSendFileTransport
{
    private readonly Action<ITransport>? _connectionLost; // the accepting server's bookkeeping, if any
    private readonly StateHandle<SelectorSocketTransport> _readHandle;
    // Made on the first write the socket refuses: an idle connection, or one whose writes all go
    // out at once, never needs it (40 B per connection; docs/PERFORMANCE.md, "Memory per idle connection").
    private StateHandle<SelectorSocketTransport>? _writeHandle;

    private IProtocol? _streamProtocol;
    private IBufferedProtocol? _bufferedProtocol;

    // The write backlog: bytes [_bufStart, _bufEnd) of a pooled array; null when empty.
    private byte[]? _buffer;
    private int _bufStart;
    private int _bufEnd;

    private bool _readingPaused;    // PauseReading was called
    private bool _eof;              // WriteEof was called
    private bool _eofSent;          // shutdown(SHUT_WR) done

    // SendFileAsync: the session while one runs. ConnectionLost (and with it closing the socket)
    // waits until it ends (a lifecycle hold), so the send never finds its fd closed or reused under it.
    private SendFileSession? _sendFile;

    private const string DroppedWriteWarning = "socket.send() raised exception: the transport is closed, the write was dropped.";

    internal SelectorSocketTransport(SelectorEventLoop loop, Socket socket, IBaseProtocol protocol, Future<VoidResult>? waiter, Action<ITransport>? connectionLost)
        : base(loop, socket, DroppedWriteWarning)
    {
        _connectionLost = connectionLost;
        _readHandle = new StateHandle<SelectorSocketTransport>(loop, static t => t.OnReadable(), this);
        SetProtocol(protocol);
        Start(waiter);
    }

    /// <summary>A transport for a connection accepted with accept4(2): its fd's handle, with no <see cref="Socket"/> (made only if asked for).</summary>
    internal SelectorSocketTransport(SelectorEventLoop loop, SocketFdHandle handle, EndPoint? sockname, EndPoint? peername, ulong packedIPv4Peer,
        IBaseProtocol protocol, Action<ITransport>? connectionLost)
        : base(loop, handle, sockname, peername, packedIPv4Peer, DroppedWriteWarning)
    {
        _connectionLost = connectionLost;
        _readHandle = new StateHandle<SelectorSocketTransport>(loop, static t => t.OnReadable(), this);
        SetProtocol(protocol);
        Start(null);
    }

    /// <inheritdoc/>
    public ITransport? PreviousClient { get; set; }

    /// <inheritdoc/>
    public ITransport? NextClient { get; set; }

    /// <inheritdoc/>
    public bool IsServerClient { get; set; }

    SelectorEventLoop ISelectorSendFileTransport.Loop => _loop;

    Socket ISelectorSendFileTransport.Socket => Socket;

    private StateHandle<SelectorSocketTransport> WriteHandle =>
        _writeHandle ??= new StateHandle<SelectorSocketTransport>(_loop, static t => t.OnWritable(), this);

    /// <inheritdoc/>
    public bool IsReading => !_readingPaused && !_life.IsClosing;

    /// <inheritdoc/>
    public bool CanWriteEof => true;

    /// <inheritdoc/>
    private protected override bool HasPendingWrites => _buffer is not null;

    /// <inheritdoc/>
    public override void SetProtocol(IBaseProtocol protocol)
    {
        // Split into locals: a protocol refused here leaves the transport's current one in place.
        StreamProtocolKind.Split(protocol, out var buffered, out var stream);
        (_bufferedProtocol, _streamProtocol, _protocol) = (buffered, stream, protocol);
    }

    /// <inheritdoc/>
    public override string ToString() => $"<SelectorSocketTransport fd={_fd} {_life.StateName} buffered={GetWriteBufferSize()}>";

    // ---- Lifecycle -------------------------------------------------------------------------

    /// <inheritdoc/>
    private protected override void OnStarted()
    {
        if (!_readingPaused)
        {
            _loop.SetReader(_fd, _readHandle, cancelReplaced: false);
        }
    }

    /// <inheritdoc/>
    /// <remarks>Unsent data is dropped and the peer gets a reset (SO_LINGER {on, 0}), as asyncio's <c>abort</c>.</remarks>
    public override void Abort()
    {
        if (!_life.IsConnectionLost)
        {
            // SO_LINGER {on, 0}: close(2) sends RST and drops unsent data. A failure means the
            // connection is already broken: nothing to reset.
            SetLingerReset();
        }

        _life.ForceClose(null);
    }

    private unsafe void SetLingerReset()
    {
        var linger = new Interop.Linger { OnOff = 1, Seconds = 0 };
        Interop.SetSockOpt(_fd, Interop.SOL_SOCKET, Interop.SO_LINGER, &linger, (uint)sizeof(Interop.Linger));
    }

    /// <inheritdoc/>
    private protected override void OnForceClose(Exception? ex) => _sendFile?.Interrupt(ex);

    /// <inheritdoc/>
    private protected override void OnConnectionLost() => _connectionLost?.Invoke(this);

    // ---- Reading -----------------------------------------------------------------------------

    /// <inheritdoc/>
    public void PauseReading()
    {
        if (_life.IsClosing || _readingPaused)
        {
            return;
        }

        _readingPaused = true;
        _loop.SetReader(_fd, null, cancelReplaced: false);
    }

    /// <inheritdoc/>
    public void ResumeReading()
    {
        if (_life.IsClosing || !_readingPaused)
        {
            return;
        }

        _readingPaused = false;
        if (_life.IsStarted)
        {
            _loop.SetReader(_fd, _readHandle, cancelReplaced: false);
        }
    }

    private void OnReadable()
    {
        if (_life.IsClosing || _readingPaused)
        {
            return;
        }

        if (_bufferedProtocol is { } buffered)
        {
            ReadIntoProtocolBuffer(buffered);
            return;
        }

        var buffer = _loop.ReadBuffer;
        int n = Recv(buffer, out int errno);
        if (n < 0)
        {
            HandleReadError(errno);
            return;
        }

        if (n == 0)
        {
            ReadEof();
            return;
        }

        try
        {
            _streamProtocol!.DataReceived(new ReadOnlySpan<byte>(buffer, 0, n));
        }
        catch (Exception ex)
        {
            _life.FatalError(ex, "Fatal error: protocol.DataReceived() call failed.");
        }
    }

    private void ReadIntoProtocolBuffer(IBufferedProtocol protocol)
    {
        Memory<byte> memory;
        try
        {
            memory = protocol.GetBuffer(-1);
            if (memory.IsEmpty)
            {
                throw new InvalidOperationException("IBufferedProtocol.GetBuffer() returned an empty buffer.");
            }
        }
        catch (Exception ex)
        {
            _life.FatalError(ex, "Fatal error: protocol.GetBuffer() call failed.");
            return;
        }

        int n = Recv(memory.Span, out int errno);
        if (n < 0)
        {
            HandleReadError(errno);
            return;
        }

        if (n == 0)
        {
            ReadEof();
            return;
        }

        try
        {
            protocol.BufferUpdated(n);
        }
        catch (Exception ex)
        {
            _life.FatalError(ex, "Fatal error: protocol.BufferUpdated() call failed.");
        }
    }

    private void HandleReadError(int errno)
    {
        if (errno is Interop.Errno.EAGAIN or Interop.Errno.EINTR)
        {
            return;
        }

        _life.FatalError(ErrnoException(errno, "recv"), "Fatal read error on socket transport");
    }

    // recv(2) and send(2) on the fd itself, not Socket.Receive/Send: one P/Invoke per call instead of
    // the SafeHandle reference count, SocketPal's layers and System.Native's shim (Interop.Recv.cs;
    // before -> after in docs/PERFORMANCE.md). The socket cannot be closed under them: both run only
    // while _connLost is 0, and the socket is disposed after ConnectionLost. -1 means errno is set.
    private unsafe int Recv(Span<byte> buffer, out int errno)
    {
        fixed (byte* p = buffer)
        {
            nint n = Interop.Recv(_fd, p, (nuint)buffer.Length, 0);
            if (n < 0)
            {
                errno = Interop.GetErrnoAfterFailure();
                return -1;
            }

            errno = 0;
            _loop.MetricBytesReceived += n;
            return (int)n;
        }
    }

    private unsafe int Send(ReadOnlySpan<byte> data, out int errno)
    {
        fixed (byte* p = data)
        {
            nint n = Interop.Send(_fd, p, (nuint)data.Length, Interop.MSG_NOSIGNAL);
            if (n < 0)
            {
                errno = Interop.GetErrnoAfterFailure();
                return -1;
            }

            errno = 0;
            _loop.MetricBytesSent += n;
            return (int)n;
        }
    }

    // Every errno from recv/send/sendmsg reaches the protocol as a SocketException (the one rule,
    // Interop.GetExceptionForErrno with ErrnoSource.Socket), so each ends the connection the same way.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private Exception ErrnoException(int errno, string call) =>
        Interop.GetExceptionForErrno(errno, $"{call}(fd {_fd})", source: Interop.ErrnoSource.Socket);

    private void ReadEof()
    {
        // No more reads: the peer sent FIN. Stop watching, or level-triggered readiness spins.
        _loop.SetReader(_fd, null, cancelReplaced: false);
        if (!StreamTransportCalls.EofReceived(_life, _bufferedProtocol, _streamProtocol))
        {
            Close(); // after a protocol that threw, already closing: nothing more
        }
        else
        {
            // Reading is over for good; IsReading reports false from now on.
            _readingPaused = true;
        }
    }

    // ---- Writing -----------------------------------------------------------------------------

    /// <inheritdoc/>
    public void Write(ReadOnlySpan<byte> data)
    {
        if (!StreamTransportCalls.BeginWrite(_life, _eof, _sendFile is not null, data.IsEmpty))
        {
            return;
        }

        if (_buffer is null)
        {
            // Nothing pending: try the socket first, and buffer only what it refuses.
            int n = Send(data, out int errno);
            if (n >= 0)
            {
                if (n == data.Length)
                {
                    return;
                }

                data = data.Slice(n);
            }
            else if (errno is not (Interop.Errno.EAGAIN or Interop.Errno.EINTR))
            {
                _life.FatalError(ErrnoException(errno, "send"), "Fatal write error on socket transport");
                return;
            }

            Append(data);
            _loop.SetWriter(_fd, WriteHandle, cancelReplaced: false);
        }
        else
        {
            Append(data);
        }

        MaybePauseProtocol();
    }

    /// <inheritdoc/>
    /// <remarks>
    /// With nothing pending, the buffers go to the kernel in one sendmsg(2) per
    /// <see cref="Interop.SendVectorMax"/> of them, pinned where they are: nothing is copied when the
    /// socket takes it all. What it refuses (the rest of a partly sent buffer, and every buffer after
    /// it) is copied into the write buffer, in order.
    /// </remarks>
    public void WriteLines(IEnumerable<ReadOnlyMemory<byte>> data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!StreamTransportCalls.BeginWrite(_life, _eof, _sendFile is not null, empty: false))
        {
            return;
        }

        using var chunks = data.GetEnumerator();
        if (_buffer is null)
        {
            var batch = new MemoryBatch();
            bool more = true;
            while (more)
            {
                int count = 0;
                while (count < Interop.SendVectorMax && (more = chunks.MoveNext()))
                {
                    if (!chunks.Current.IsEmpty)
                    {
                        batch[count++] = chunks.Current;
                    }
                }

                if (count == 0)
                {
                    return;
                }

                long sent = SendVector(ref batch, count, out long total, out int errno);
                if (sent == total)
                {
                    continue;
                }

                if (sent < 0)
                {
                    if (errno != Interop.Errno.EAGAIN)
                    {
                        _life.FatalError(ErrnoException(errno, "sendmsg"), "Fatal write error on socket transport");
                        return;
                    }

                    sent = 0;
                }

                // The socket is full: buffer the unsent tail of this batch, then everything after it.
                for (int i = 0; i < count; i++)
                {
                    var chunk = batch[i].Span;
                    if (sent >= chunk.Length)
                    {
                        sent -= chunk.Length;
                        continue;
                    }

                    Append(chunk.Slice((int)sent));
                    sent = 0;
                }

                _loop.SetWriter(_fd, WriteHandle, cancelReplaced: false);
                break;
            }
        }

        while (chunks.MoveNext())
        {
            Append(chunks.Current.Span);
        }

        MaybePauseProtocol();
    }

    /// <summary>
    /// One sendmsg(2) of <paramref name="count"/> buffers, pinned for the call: the bytes sent, or -1
    /// with <paramref name="errno"/> (EAGAIN when the socket is full). EINTR is retried.
    /// </summary>
    private unsafe long SendVector(ref MemoryBatch batch, int count, out long total, out int errno)
    {
        var pins = new PinBatch();
        Interop.IoVec* iov = stackalloc Interop.IoVec[count];
        total = 0;
        try
        {
            for (int i = 0; i < count; i++)
            {
                pins[i] = batch[i].Pin();
                iov[i].Base = pins[i].Pointer;
                iov[i].Length = (nuint)batch[i].Length;
                total += batch[i].Length;
            }

            var message = new Interop.MsgHdr { Iov = iov, IovLength = (nuint)count };
            while (true)
            {
                nint n = Interop.SendMsg(_fd, &message, Interop.MSG_NOSIGNAL);
                errno = n < 0 ? Interop.GetLastErrno() : 0;
                if (n >= 0)
                {
                    _loop.MetricBytesSent += n;
                    return n;
                }

                if (errno != Interop.Errno.EINTR)
                {
                    return n;
                }
            }
        }
        finally
        {
            for (int i = 0; i < count; i++)
            {
                pins[i].Dispose();
            }
        }
    }

    /// <summary>Up to <see cref="Interop.SendVectorMax"/> buffers for one vectored send, on the stack.</summary>
    [System.Runtime.CompilerServices.InlineArray(Interop.SendVectorMax)]
    private struct MemoryBatch
    {
        private ReadOnlyMemory<byte> _element;
    }

    /// <summary>The pins of a <see cref="MemoryBatch"/> while the kernel reads it.</summary>
    [System.Runtime.CompilerServices.InlineArray(Interop.SendVectorMax)]
    private struct PinBatch
    {
        private MemoryHandle _element;
    }

    /// <inheritdoc/>
    public void WriteEof()
    {
        if (_life.IsClosing || _eof)
        {
            return;
        }

        _eof = true;
        if (_buffer is null && _sendFile is null)
        {
            ShutdownWrite();
        }
    }

    /// <inheritdoc/>
    public int GetWriteBufferSize() => _bufEnd - _bufStart;

    /// <inheritdoc/>
    public (int Low, int High) GetWriteBufferLimits() => _flow.Limits;

    /// <inheritdoc/>
    public void SetWriteBufferLimits(int? high = null, int? low = null) => _flow.SetLimits(high, low, GetWriteBufferSize());

    private void OnWritable()
    {
        if (_buffer is null || _life.IsConnectionLost)
        {
            _loop.SetWriter(_fd, null, cancelReplaced: false);
            return;
        }

        int n = Send(new ReadOnlySpan<byte>(_buffer, _bufStart, _bufEnd - _bufStart), out int errno);
        if (n < 0)
        {
            if (errno is Interop.Errno.EAGAIN or Interop.Errno.EINTR)
            {
                return;
            }

            _life.FatalError(ErrnoException(errno, "send"), "Fatal write error on socket transport");
            return;
        }

        _bufStart += n;
        if (_bufStart < _bufEnd)
        {
            MaybeResumeProtocol();
            return;
        }

        DropBuffer();
        _loop.SetWriter(_fd, null, cancelReplaced: false);
        // ResumeWriting may write again (and then Close or WriteEof, as a pipe adapter's last flush
        // does): what the socket did not take is buffered now, and the close or EOF waits for it
        // (asyncio's _write_ready looks at the buffer after _maybe_resume_protocol for this reason).
        MaybeResumeProtocol();
        if (_buffer is not null || _life.IsConnectionLost)
        {
            return;
        }

        _sendFile?.Drained?.TrySetResult(default);
        if (_life.IsClosing)
        {
            _life.ScheduleConnectionLost(null);
        }
        else if (_eof && _sendFile is null)
        {
            ShutdownWrite();
        }
    }

    // ---- SendFileAsync -----------------------------------------------------------------------

    /// <summary>
    /// Enters sendfile mode (asyncio's <c>_make_empty_waiter</c> with the pause of
    /// <c>_sendfile_native</c>): reading pauses, <see cref="Write"/> throws, and the returned session's
    /// <see cref="SendFileSession.Drained"/> completes once what is buffered has been sent.
    /// </summary>
    /// <exception cref="InvalidOperationException">The transport is closing, or a send is already running.</exception>
    public SendFileSession BeginSendFile()
    {
        if (_life.IsClosing)
        {
            throw new InvalidOperationException("The transport is closing: SendFileAsync cannot send on it.");
        }

        if (_sendFile is not null)
        {
            throw new InvalidOperationException("SendFileAsync is already running on this transport: await it before starting another.");
        }

        if (_eof)
        {
            throw new InvalidOperationException("Cannot send a file after WriteEof(): the write side is shut down.");
        }

        _sendFile = new SendFileSession
        {
            Drained = _buffer is null ? null : new Future<VoidResult>(_loop),
            ResumeReading = IsReading,
        };
        _life.HoldConnectionLost();
        PauseReading();
        return _sendFile;
    }

    /// <summary>
    /// Leaves sendfile mode however the send ended: a close or abort that came meanwhile takes
    /// effect now; otherwise reading resumes if it was on, and a <see cref="WriteEof"/> made
    /// meanwhile is carried out.
    /// </summary>
    public void EndSendFile(SendFileSession session)
    {
        if (!ReferenceEquals(session, _sendFile))
        {
            return;
        }

        _sendFile = null;
        _life.ReleaseConnectionLost(); // schedules a ConnectionLost that a close or abort meanwhile kept back
        if (_life.IsClosing)
        {
            return;
        }

        if (session.ResumeReading)
        {
            ResumeReading();
        }

        if (_eof && _buffer is null)
        {
            ShutdownWrite();
        }
    }

    private void ShutdownWrite()
    {
        if (_eofSent)
        {
            return;
        }

        _eofSent = true;
        // shutdown(2) on the fd, as Socket.Shutdown did: ENOTCONN (the connection already reached
        // CLOSE) is no error for a socket that was connected, as .NET and Winsock treat it.
        if (Interop.Shutdown(_fd, Interop.SHUT_WR) != 0 && Interop.GetLastErrno() is int errno && errno != Interop.Errno.ENOTCONN)
        {
            _life.FatalError(ErrnoException(errno, "shutdown(SHUT_WR)"), "Fatal error on shutdown(SHUT_WR)");
        }
    }

    private void Append(ReadOnlySpan<byte> data) => WriteBacklog.Append(ref _buffer, ref _bufStart, ref _bufEnd, data);

    /// <inheritdoc/>
    private protected override void DropBuffer() => WriteBacklog.Release(ref _buffer, ref _bufStart, ref _bufEnd);

    private void MaybePauseProtocol() => _flow.MaybePause(_bufEnd - _bufStart);

    private void MaybeResumeProtocol() => _flow.MaybeResume(_bufEnd - _bufStart);
}
