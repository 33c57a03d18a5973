using System;
using System.Buffers;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Tulip;

/// <summary>
/// A stream transport over a connected socket on a <see cref="ProactorEventLoop"/>: asyncio's
/// <c>_ProactorSocketTransport</c>. Used for TCP and UNIX stream sockets alike.
/// </summary>
/// <remarks>
/// <para>
/// Reads: one receive outstanding at a time, into a pooled buffer of the transport's (an
/// <see cref="IProtocol"/>) or into <see cref="IBufferedProtocol.GetBuffer"/>. A receive that
/// completes while reading is paused is held, and delivered when reading resumes.
/// Writes: <see cref="Write"/> sends at once (a non-blocking send) when nothing is pending and
/// buffers only what the socket refuses; the buffer then goes out by one asynchronous send at a
/// time. Data written while a send is in flight goes to a second buffer, so the array the
/// runtime is sending from is never moved or returned to the pool under it.
/// </para>
/// <para>
/// The connection's lifecycle (start, close after flush, abort, fatal errors, ConnectionLost) is
/// the shared <see cref="TransportLifecycle"/>, as on the selector loop. Everything here is owned
/// by the loop thread; only <see cref="ProactorOperation.OnCompleted"/> runs elsewhere.
/// </para>
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification =
    "The operations are disposed when the connection is lost, or by their own completion if one is in flight then; a transport is not disposed, it is closed.")]
internal sealed partial class ProactorSocketTransport : ITransport, ITransportLifecycleOwner, IServerClient, IReceiveOwner
{
    /// <summary>Bytes received per operation for an <see cref="IProtocol"/>: 64 KiB, as the selector loop reads.</summary>
    internal const int ReadSize = 64 * 1024;

    private const string DroppedWriteWarning = "socket.send() raised exception: the transport is closed, the write was dropped.";

    private readonly ProactorEventLoop _loop;
    private readonly Socket _socket;
    private readonly WriteFlowControl _flow;
    private readonly TransportLifecycle _life;
    private readonly Action<ITransport>? _connectionLost;
    private readonly ProactorOperation _recv;
    private readonly ProactorOperation _send;
    private readonly EndPoint? _sockname;
    private readonly EndPoint? _peername;
    private readonly nint _handle;     // the socket's handle value, for messages and the loop's ownership table
    private Socket? _socketView;        // what GetExtraInfo("socket") hands out: a view that does not own the handle
    private IBaseProtocol _protocol = null!;
    private IProtocol? _streamProtocol;
    private IBufferedProtocol? _bufferedProtocol;

    private byte[]? _readBuffer;    // rented while the transport reads; every receive lands here
    private bool _readingPaused;    // PauseReading was called, or EOF was received
    // A completed receive not yet handed on in full: set when it completes, cleared once its data
    // (or its EOF or error) reached the protocol. While set, no other receive starts, so the buffer
    // it filled is never written under the protocol. Reading paused meanwhile: it waits for
    // ResumeReading, which hands on the rest (from _heldOffset) on a later iteration.
    private bool _recvHeld;
    private int _heldOffset;        // bytes of the held receive already given to the protocol
    private bool _deliverScheduled; // _deliverHeld is queued on the loop
    private readonly Handle _deliverHeld;
    // The connect reported ECONNRESET: the connection was made and the peer reset it before .NET read
    // SO_ERROR (which that read cleared). The first receive reports it, as the selector loop's would.
    private bool _resetAtConnect;

    // In flight: bytes [_sendStart, _sendEnd) of _sending; a send of them is pending.
    private byte[]? _sending;
    private int _sendStart;
    private int _sendEnd;
    // Written meanwhile: bytes [_bufStart, _bufEnd) of _buffer; null when empty.
    private byte[]? _buffer;
    private int _bufStart;
    private int _bufEnd;
    private List<ArraySegment<byte>>? _segments; // WriteLines' vector, reused

    private bool _eof;              // WriteEof was called
    private bool _eofSent;          // Shutdown(Send) done
    private bool _socketClosed;
    private bool _aborted;          // Abort was called: the close resets the connection

    internal ProactorSocketTransport(ProactorEventLoop loop, Socket socket, IBaseProtocol protocol, Future<VoidResult>? waiter, Action<ITransport>? connectionLost)
    {
        _loop = loop;
        _socket = socket;
        _handle = socket.Handle;
        _connectionLost = connectionLost;
        _flow = new WriteFlowControl(loop, this);
        _life = new TransportLifecycle(loop, this, DroppedWriteWarning);
        _recv = new ProactorOperation(loop, loop.MakeCompletionHandle(static t => t.OnReceiveCompleted(), this));
        _send = new ProactorOperation(loop, loop.MakeCompletionHandle(static t => t.OnSendCompleted(), this));
        _deliverHeld = loop.MakeCompletionHandle(static t => t.OnDeliverHeld(), this);
        _resetAtConnect = loop.TakeResetAtConnect(socket, out var connectedTo);
        _sockname = SocketViews.TryEndPoint(socket, local: true);
        _peername = SocketViews.TryEndPoint(socket, local: false) ?? connectedTo;
        SetProtocol(protocol);
        _life.ScheduleStart(waiter);
        loop.ClaimSocket(socket, this);
    }

    /// <inheritdoc/>
    public ITransport? PreviousClient { get; set; }

    /// <inheritdoc/>
    public ITransport? NextClient { get; set; }

    /// <inheritdoc/>
    public bool IsServerClient { get; set; }

    /// <inheritdoc/>
    public bool IsClosing => _life.IsClosing;

    /// <inheritdoc/>
    public bool IsReading => !_readingPaused && !_life.IsClosing;

    /// <inheritdoc/>
    public bool CanWriteEof => true;

    private bool HasPendingWrites => _sending is not null || _buffer is not null;

    /// <inheritdoc/>
    /// <remarks>"socket" is a <see cref="System.Net.Sockets.Socket"/> over the transport's handle that does not own it:
    /// options can be read and set on it, and disposing it does not close the connection. It is disposed
    /// when the transport closes.</remarks>
    public object? GetExtraInfo(string name, object? defaultValue = null) => name switch
    {
        "socket" => _socketClosed ? defaultValue : SocketView(),
        "sockname" => _sockname ?? defaultValue,
        "peername" => _peername ?? defaultValue,
        _ => defaultValue,
    };

    private Socket SocketView() => _socketView ??= SocketViews.NonOwning(_handle);

    /// <inheritdoc/>
    public void SetProtocol(IBaseProtocol protocol)
    {
        // Split into locals: a protocol refused here leaves the transport's current one in place.
        StreamProtocolKind.Split(protocol, out var buffered, out var stream);
        (_bufferedProtocol, _streamProtocol, _protocol) = (buffered, stream, protocol);
    }

    /// <inheritdoc/>
    public IBaseProtocol GetProtocol() => _protocol;

    /// <inheritdoc/>
    public override string ToString() => $"<ProactorSocketTransport {_life.StateName} buffered={GetWriteBufferSize()}>";

    // ---- Lifecycle -------------------------------------------------------------------------

    /// <summary>Closes (buffered data is still sent) and completes once ConnectionLost has run and the fd is closed (<see cref="TransportLifecycle.CloseAndWaitAsync"/>).</summary>
    public System.Threading.Tasks.ValueTask DisposeAsync() => _life.CloseAndWaitAsync();

    /// <inheritdoc/>
    public void Close() => _life.Close(HasPendingWrites);

    /// <inheritdoc/>
    public void Abort()
    {
        if (!_life.IsConnectionLost && !_socketClosed)
        {
            try
            {
                // Linger {on, 0}: closing sends RST and drops unsent data.
                _socket.LingerState = new LingerOption(true, 0);
            }
            catch (SocketException)
            {
                // Already broken: nothing to reset.
            }
        }

        _aborted = true;
        _life.ForceClose(null);
    }

    void ITransportLifecycleOwner.OnStarted(object? state, Exception? error)
    {
        var waiter = (Future<VoidResult>?)state;
        if (error is not null)
        {
            waiter?.TrySetException(error);
            return;
        }

        if (!_life.IsStarted)
        {
            waiter?.TrySetException(new SocketException((int)SocketError.ConnectionAborted));
            return;
        }

        if (!_life.IsClosing && !_readingPaused)
        {
            StartReceive();
        }

        waiter?.TrySetResult(default);
    }

    void ITransportLifecycleOwner.OnClosing()
    {
        // Stop reading: a receive in flight completes into nothing (OnReceiveCompleted sees IsClosing).
    }

    void ITransportLifecycleOwner.OnForceClose(Exception? error)
    {
        DropBuffers();
        InterruptSendFile(error);
    }

    void ITransportLifecycleOwner.OnConnectionLost()
    {
        DropBuffers();
        _socketClosed = true;
        _loop.ReleaseSocket(_handle, this);
        _socketView?.Dispose();
        if (!_aborted)
        {
            // A graceful end: FIN first. Disposing a socket with a receive in flight makes .NET close
            // it abortively (RST) on Unix, which the peer would see as a reset, not as EOF.
            try
            {
                _socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // Not connected any more, or closed already to stop a file send: nothing to shut down.
            }
        }

        // Disposing the socket aborts the operations in flight; each completes (OperationAborted) on
        // the loop, which then releases what it held. Idle ones are released now. An abort closes with
        // a zero timeout: .NET then resets the connection itself; a plain Dispose with a receive in
        // flight unblocks it with shutdown(), a FIN the peer could read as a clean EOF before the RST.
        if (_aborted)
        {
            _socket.Close(0);
        }
        else
        {
            _socket.Dispose();
        }
        ReleaseIdleOperations();
        _connectionLost?.Invoke(this);
    }

    private void ReleaseIdleOperations()
    {
        if (!_recv.Pending)
        {
            ReturnReadBuffer();
            _recv.Dispose();
        }

        if (!_send.Pending)
        {
            ReturnSending();
            _send.Dispose();
        }
    }

    private void DropBuffers()
    {
        WriteBacklog.Release(ref _buffer, ref _bufStart, ref _bufEnd);
        if (!_send.Pending)
        {
            ReturnSending();
        }
        else
        {
            // The runtime still sends from this array: it goes back to the pool when that send
            // completes; the bytes count as dropped from now on.
            _sendStart = _sendEnd;
        }
    }

    private void ReturnSending()
    {
        if (_sending is not null)
        {
            WriteBacklog.Release(ref _sending, ref _sendStart, ref _sendEnd);
        }
    }

    private void ReturnReadBuffer()
    {
        if (_readBuffer is { } b)
        {
            _readBuffer = null;
            ArrayPool<byte>.Shared.Return(b);
        }
    }

    // ---- Reading -----------------------------------------------------------------------------

    /// <summary>
    /// Bytes that reached this transport and were not given to the protocol yet: what a completed
    /// receive holds (while reading is paused) plus what the kernel holds. For tests (the loop kinds'
    /// "undelivered" probe); loop thread.
    /// </summary>
    internal int UndeliveredBytes
    {
        get
        {
            int held = _recvHeld && _recv.SocketError == SocketError.Success ? _recv.BytesTransferred - _heldOffset : 0;
            int kernel = 0;
            if (!_socketClosed)
            {
                try
                {
                    kernel = _socket.Available;
                }
                catch (SocketException)
                {
                    // Reset or shut down: the kernel holds nothing for us.
                }
            }

            return held + kernel;
        }
    }

    /// <inheritdoc/>
    public void PauseReading()
    {
        if (_life.IsClosing || _readingPaused)
        {
            return;
        }

        // A receive in flight stays: what it brings is held until ResumeReading.
        _readingPaused = true;
    }

    /// <inheritdoc/>
    public void ResumeReading()
    {
        if (_life.IsClosing || !_readingPaused)
        {
            return;
        }

        _readingPaused = false;
        if (!_life.IsStarted)
        {
            return;
        }

        if (_recvHeld)
        {
            // What is held goes on on the next iteration, not inside this call (asyncio's call_soon).
            if (!_deliverScheduled)
            {
                _deliverScheduled = true;
                _loop.ScheduleCompletion(_deliverHeld);
            }
        }
        else
        {
            StartReceive();
        }
    }

    private void StartReceive()
    {
        if (_recv.Pending || _recvHeld || _life.IsClosing || _readingPaused || _socketClosed)
        {
            return;
        }

        if (_resetAtConnect)
        {
            // The reset the connect saw: this receive fails with it, on the next iteration.
            _resetAtConnect = false;
            _recv.SocketError = SocketError.ConnectionReset;
            _recv.Pending = true;
            _recv.CompletedSynchronously();
            return;
        }

        try
        {
            // Always into the transport's own buffer, also for a buffered protocol: a receive may
            // complete while reading is paused and be delivered later, and a GetBuffer() region is
            // valid only until the protocol's next call, so it is filled at delivery (ReceiveDelivery).
            if (_readBuffer is null)
            {
                _readBuffer = ArrayPool<byte>.Shared.Rent(ReadSize);
                _recv.SetBuffer(_readBuffer, 0, ReadSize);
            }

            _recv.Pending = true;
            if (!_socket.ReceiveAsync(_recv))
            {
                _recv.CompletedSynchronously();
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            _recv.Pending = false;
            _life.FatalError(ex, "Fatal read error on socket transport");
        }
    }

    private void OnReceiveCompleted()
    {
        _recv.Pending = false;
        if (_life.IsConnectionLost)
        {
            if (_socketClosed)
            {
                ReturnReadBuffer();
                _recv.Dispose();
            }

            return;
        }

        if (_life.IsClosing)
        {
            return;
        }

        _recvHeld = true;
        _heldOffset = 0;
        DeliverHeld();
    }

    private void OnDeliverHeld()
    {
        _deliverScheduled = false;
        DeliverHeld();
    }

    /// <summary>Hands the held receive on to the protocol, unless reading is paused; then reads on.</summary>
    private void DeliverHeld()
    {
        if (!_recvHeld || _readingPaused || _life.IsClosing)
        {
            return;
        }

        if (_recv.SocketError != SocketError.Success)
        {
            _recvHeld = false;
            _life.FatalError(ProactorSocketErrors.WithErrno(_recv.SocketError, "recv", _handle), "Fatal read error on socket transport");
            return;
        }

        int n = _recv.BytesTransferred;
        if (n == 0)
        {
            _recvHeld = false;
            ReadEof();
            return;
        }

        if (_heldOffset == 0)
        {
            _loop.MetricBytesReceived += n; // once per receive, not again when a held one resumes
        }

        if (!ReceiveDelivery.Deliver(this, _bufferedProtocol, _streamProtocol, _readBuffer!, ref _heldOffset, n))
        {
            // Paused mid-chunk (the rest stays held), closing, or failed (the transport is ending).
            if (_life.IsClosing)
            {
                _recvHeld = false;
            }

            return;
        }

        _recvHeld = false;
        StartReceive();
    }

    bool IReceiveOwner.ReadingPaused => _readingPaused;

    bool IReceiveOwner.DeliveryStopped => _life.IsClosing;

    void IReceiveOwner.DeliveryFailed(Exception error, string message)
    {
        _recvHeld = false;
        _life.FatalError(error, message);
    }

    private void ReadEof()
    {
        if (!StreamTransportCalls.EofReceived(_life, _bufferedProtocol, _streamProtocol))
        {
            Close(); // after a protocol that threw, already closing: nothing more
        }
        else
        {
            _readingPaused = true; // reading is over for good
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

        if (!HasPendingWrites)
        {
            // Nothing pending: try the socket at once, and buffer only what it refuses.
            int n = _socket.Send(data, SocketFlags.None, out SocketError error);
            if (error == SocketError.Success)
            {
                _loop.MetricBytesSent += n;
                if (n == data.Length)
                {
                    return;
                }

                data = data.Slice(n);
            }
            else if (error is not (SocketError.WouldBlock or SocketError.Interrupted))
            {
                _life.FatalError(ProactorSocketErrors.WithErrno(error, "send", _handle), "Fatal write error on socket transport");
                return;
            }
        }

        WriteBacklog.Append(ref _buffer, ref _bufStart, ref _bufEnd, data);
        StartSend();
        _flow.MaybePause(GetWriteBufferSize());
    }

    /// <inheritdoc/>
    public void WriteLines(IEnumerable<ReadOnlyMemory<byte>> data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!StreamTransportCalls.BeginWrite(_life, _eof, _sendFile is not null, empty: false))
        {
            return;
        }

        using var chunks = data.GetEnumerator();
        if (!HasPendingWrites)
        {
            // One vectored send of the array-backed chunks up to the first that is not.
            var segments = _segments ??= [];
            segments.Clear();
            long total = 0;
            bool more;
            ReadOnlyMemory<byte> rest = default;
            while ((more = chunks.MoveNext()))
            {
                var chunk = chunks.Current;
                if (chunk.IsEmpty)
                {
                    continue;
                }

                if (!MemoryMarshal.TryGetArray(chunk, out var segment))
                {
                    rest = chunk;
                    break;
                }

                segments.Add(segment);
                total += segment.Count;
            }

            if (segments.Count > 0)
            {
                int sent = _socket.Send(segments, SocketFlags.None, out SocketError error);
                if (error is not (SocketError.Success or SocketError.WouldBlock or SocketError.Interrupted))
                {
                    segments.Clear();
                    _life.FatalError(ProactorSocketErrors.WithErrno(error, "sendmsg", _handle), "Fatal write error on socket transport");
                    return;
                }

                if (error != SocketError.Success)
                {
                    sent = 0;
                }

                _loop.MetricBytesSent += sent;

                foreach (var segment in segments)
                {
                    if (sent >= segment.Count)
                    {
                        sent -= segment.Count;
                        continue;
                    }

                    WriteBacklog.Append(ref _buffer, ref _bufStart, ref _bufEnd, segment.AsSpan(sent));
                    sent = 0;
                }

                segments.Clear();
            }

            if (!rest.IsEmpty)
            {
                WriteBacklog.Append(ref _buffer, ref _bufStart, ref _bufEnd, rest.Span);
            }

            if (!more && _buffer is null)
            {
                return;
            }
        }

        while (chunks.MoveNext())
        {
            if (!chunks.Current.IsEmpty)
            {
                WriteBacklog.Append(ref _buffer, ref _bufStart, ref _bufEnd, chunks.Current.Span);
            }
        }

        if (_buffer is not null)
        {
            StartSend();
            _flow.MaybePause(GetWriteBufferSize());
        }
    }

    /// <summary>Sends the buffer when no send is in flight: it becomes the in-flight array.</summary>
    private void StartSend()
    {
        if (_send.Pending || _buffer is null || _socketClosed)
        {
            return;
        }

        if (_sending is null)
        {
            (_sending, _sendStart, _sendEnd) = (_buffer, _bufStart, _bufEnd);
            _buffer = null;
            _bufStart = _bufEnd = 0;
        }

        SendInFlight();
    }

    private void SendInFlight()
    {
        try
        {
            _send.SetBuffer(_sending, _sendStart, _sendEnd - _sendStart);
            _send.Pending = true;
            if (!_socket.SendAsync(_send))
            {
                _send.CompletedSynchronously();
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            _send.Pending = false;
            _life.FatalError(ex, "Fatal write error on socket transport");
        }
    }

    private void OnSendCompleted()
    {
        _send.Pending = false;
        if (_life.IsConnectionLost)
        {
            ReturnSending();
            if (_socketClosed)
            {
                _send.Dispose();
            }

            return;
        }

        if (_send.SocketError != SocketError.Success)
        {
            _life.FatalError(ProactorSocketErrors.WithErrno(_send.SocketError, "send", _handle), "Fatal write error on socket transport");
            return;
        }

        // The next send starts before the protocol hears of the room (MaybeResume): a protocol that
        // writes from ResumeWriting then finds a send pending and buffers, rather than starting a
        // second send on the same operation (or sending the same bytes twice).
        _sendStart += _send.BytesTransferred;
        _loop.MetricBytesSent += _send.BytesTransferred;
        if (_sendStart < _sendEnd)
        {
            SendInFlight();
            MaybeResumeWriting();
            return;
        }

        ReturnSending();
        if (_buffer is not null)
        {
            StartSend();
            MaybeResumeWriting();
            return;
        }

        // ResumeWriting may write again (and then Close or WriteEof, as a pipe adapter's last flush
        // does): what it wrote is pending now, and the close or EOF waits for that send instead.
        _flow.MaybeResume(0);
        if (HasPendingWrites || _life.IsConnectionLost)
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

    private void MaybeResumeWriting()
    {
        if (!_life.IsConnectionLost)
        {
            _flow.MaybeResume(GetWriteBufferSize());
        }
    }

    /// <inheritdoc/>
    public void WriteEof()
    {
        if (_life.IsClosing || _eof)
        {
            return;
        }

        _eof = true;
        if (!HasPendingWrites && _sendFile is null)
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
        try
        {
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.NotConnected)
        {
            // The connection already ended: nothing to shut down.
        }
        catch (SocketException ex)
        {
            _life.FatalError(ex, "Fatal error on shutdown(SHUT_WR)");
        }
    }

    /// <inheritdoc/>
    public int GetWriteBufferSize() => (_sendEnd - _sendStart) + (_bufEnd - _bufStart);

    /// <inheritdoc/>
    public (int Low, int High) GetWriteBufferLimits() => _flow.Limits;

    /// <inheritdoc/>
    public void SetWriteBufferLimits(int? high = null, int? low = null) => _flow.SetLimits(high, low, GetWriteBufferSize());
}
