using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Tulip.Diagnostics;

namespace Tulip;

/// <summary>
/// The write end of a pipe (or FIFO, character device, socket) on a <see cref="ProactorEventLoop"/>:
/// asyncio's <c>_ProactorWritePipeTransport</c>. <see cref="Write"/> tries the fd at once (a
/// non-blocking write) and buffers only what it refuses; the buffer then goes out by one asynchronous
/// write at a time, on a reusable operation. Data written meanwhile goes to a second buffer, so the
/// array the runtime writes from is never moved or returned to the pool under it.
/// </summary>
/// <remarks>
/// <para>
/// The reader going away: a write then fails with EPIPE (.NET ignores SIGPIPE), and the transport ends
/// with ConnectionLost and an EPIPE <see cref="IOException"/>, as the selector's. With nothing being
/// written there is no operation to complete: a read of a pipe's write end fails at once, so asyncio's
/// proactor trick (a read outstanding on the write end, which Windows completes when the reader
/// closes) has no Unix equivalent in .NET. So a pipe, FIFO or socket is asked every
/// <see cref="PeerPollInterval"/> seconds, on the loop thread, whether its reader is gone
/// (<see cref="Socket.Poll(int, SelectMode)"/> with a zero timeout: the POLLERR a pipe's write end reports, or a socket's EOF),
/// and then ends as the selector's does: ConnectionLost(null), or an EPIPE error if data was still buffered.
/// The selector notices at once; this notices within one interval. A character device (a terminal)
/// is not asked, as the selector does not watch it.
/// </para>
/// <para>
/// <see cref="WriteLines"/> gathers the buffers into the write buffer and writes them with one call:
/// .NET's vectored <see cref="Socket.Send(IList{ArraySegment{byte}}, SocketFlags, out SocketError)"/>
/// writes nothing to an fd that is not a socket (it returned 0 and Success on a pipe, measured on .NET 10.0.12).
/// </para>
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification =
    "The operation is disposed when the fd is closed, or by its own completion if it is in flight then; a transport is not disposed, it is closed.")]
internal sealed class ProactorWritePipeTransport : ProactorPipeTransport, IWriteTransport
{
    /// <summary>
    /// Seconds between two looks at whether the reader is gone while nothing is in flight: 0.1 s, a
    /// poll(2) with no timeout per idle write pipe ten times a second, against a reader noticed that
    /// much later than on the selector loop.
    /// </summary>
    internal const double PeerPollInterval = 0.1;

    private readonly ProactorOperation _send;
    private readonly WriteFlowControl _flow;
    private readonly bool _watchPeer;
    private readonly bool _isSocket;
    private TimerHandle? _peerPoll;

    // In flight: bytes [_sendStart, _sendEnd) of _sending; a write of them is pending.
    private byte[]? _sending;
    private int _sendStart;
    private int _sendEnd;
    // Written meanwhile: bytes [_bufStart, _bufEnd) of _buffer; null when empty.
    private byte[]? _buffer;
    private int _bufStart;
    private int _bufEnd;
    private bool _eof;              // WriteEof was called: a later Write is an error

    internal ProactorWritePipeTransport(ProactorEventLoop loop, ProactorPipeTransportFactory factory, SafeHandle handle, IDisposable? owner,
        PipeHandleInfo info, IBaseProtocol protocol, Future<VoidResult> waiter)
        : base(loop, factory, handle, owner, info, protocol, waiter, "pipe write dropped: the transport is closed.")
    {
        _send = new ProactorOperation(loop, loop.MakeCompletionHandle(static t => t.OnWriteCompleted(), this));
        _flow = new WriteFlowControl(loop, this);
        _watchPeer = info.ReportsReaderGone;
        _isSocket = Channel.AddressFamily != AddressFamily.Unknown;
        // Write tries the fd at once, which must not block: a write from ConnectionMade on is non-blocking.
        Channel.Blocking = false;
    }

    /// <inheritdoc/>
    public bool CanWriteEof => true;

    private bool HasPendingWrites => _sending is not null || _buffer is not null;

    /// <inheritdoc/>
    protected override void OnStarted()
    {
        if (_watchPeer)
        {
            Loop.CountOperation(started: true);
            SchedulePeerPoll();
        }
    }

    /// <inheritdoc/>
    protected override void OnForceClose()
    {
        StopPeerPoll();
        WriteBacklog.Release(ref _buffer, ref _bufStart, ref _bufEnd);
        if (!_send.Pending)
        {
            ReturnSending();
        }
        else
        {
            // The runtime still writes from this array: it goes back to the pool when that write
            // completes (aborted by the close); the bytes count as dropped from now on.
            _sendStart = _sendEnd;
        }
    }

    /// <inheritdoc/>
    protected override void OnChannelClosed()
    {
        if (!_send.Pending)
        {
            ReturnSending();
            _send.Dispose();
        }
    }

    /// <inheritdoc/>
    /// <remarks>Buffered data is still written first; then the pipe closes (asyncio's close is its write_eof).</remarks>
    public override void Close() => Lifecycle.Close(HasPendingWrites);

    /// <inheritdoc/>
    /// <remarks>A pipe cannot half-close: this closes it once the buffer is written, as <see cref="Close"/>,
    /// and a later <see cref="Write"/> throws.</remarks>
    public void WriteEof()
    {
        _eof = true;
        Close();
    }

    /// <inheritdoc/>
    public void Abort() => Lifecycle.Abort();

    // ---- Writing -------------------------------------------------------------------------

    /// <inheritdoc/>
    public void Write(ReadOnlySpan<byte> data)
    {
        if (_eof)
        {
            ThrowWriteAfterEof();
        }

        if (data.IsEmpty)
        {
            return;
        }

        if (Lifecycle.IsClosing)
        {
            Lifecycle.DropWrite();
            return;
        }

        if (!HasPendingWrites)
        {
            // Nothing pending: try the fd at once, and buffer only what it refuses.
            int n = TryWriteNow(data);
            if (n < 0 || n == data.Length)
            {
                return;
            }

            data = data.Slice(n);
        }

        WriteBacklog.Append(ref _buffer, ref _bufStart, ref _bufEnd, data);
        StartWrite();
        _flow.MaybePause(GetWriteBufferSize());
    }

    /// <inheritdoc/>
    /// <remarks>With nothing pending the buffers are gathered and written with one call, and only what the
    /// pipe refuses stays buffered; behind a backlog they are buffered in order.</remarks>
    public void WriteLines(IEnumerable<ReadOnlyMemory<byte>> data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (_eof || HasPendingWrites || Lifecycle.IsClosing)
        {
            // Behind a backlog (or after the end) the buffers queue, or are refused, exactly as separate writes.
            foreach (var chunk in data)
            {
                Write(chunk.Span);
            }

            return;
        }

        foreach (var chunk in data)
        {
            if (!chunk.IsEmpty)
            {
                WriteBacklog.Append(ref _buffer, ref _bufStart, ref _bufEnd, chunk.Span);
            }
        }

        if (_buffer is null)
        {
            return;
        }

        int n = TryWriteNow(_buffer.AsSpan(_bufStart, _bufEnd - _bufStart));
        if (n < 0)
        {
            return; // failed: the buffer went with the fatal error
        }

        _bufStart += n;
        if (_bufStart == _bufEnd)
        {
            WriteBacklog.Release(ref _buffer, ref _bufStart, ref _bufEnd);
            return;
        }

        StartWrite();
        _flow.MaybePause(GetWriteBufferSize());
    }

    /// <summary>One non-blocking write: the bytes the pipe took (0 if full), or -1 after a fatal error.</summary>
    private int TryWriteNow(ReadOnlySpan<byte> data)
    {
        int n = Channel.Send(data, SocketFlags.None, out SocketError error);
        if (error == SocketError.Success)
        {
            return n;
        }

        if (error is SocketError.WouldBlock or SocketError.Interrupted)
        {
            return 0;
        }

        Lifecycle.FatalError(PipeError(error, $"write(fd {Fd})"), "Fatal write error on pipe transport");
        return -1;
    }

    /// <summary>Writes the buffer when no write is in flight: it becomes the in-flight array.</summary>
    private void StartWrite()
    {
        if (_send.Pending || _buffer is null || ChannelClosed)
        {
            return;
        }

        if (_sending is null)
        {
            (_sending, _sendStart, _sendEnd) = (_buffer, _bufStart, _bufEnd);
            _buffer = null;
            _bufStart = _bufEnd = 0;
        }

        WriteInFlight();
    }

    private void WriteInFlight()
    {
        try
        {
            _send.SetBuffer(_sending, _sendStart, _sendEnd - _sendStart);
            _send.Pending = true;
            if (!Channel.SendAsync(_send))
            {
                _send.CompletedSynchronously();
            }
        }
        catch (Exception ex)
        {
            _send.Pending = false;
            Lifecycle.FatalError(PipeError(ex, $"write(fd {Fd})"), "Fatal write error on pipe transport");
        }
    }

    private void OnWriteCompleted()
    {
        _send.Pending = false;
        if (Lifecycle.IsConnectionLost)
        {
            ReturnSending();
            if (ChannelClosed)
            {
                _send.Dispose();
            }

            return;
        }

        if (_send.SocketError != SocketError.Success)
        {
            Lifecycle.FatalError(PipeError(_send.SocketError, $"write(fd {Fd})"), "Fatal write error on pipe transport");
            return;
        }

        // The next write is started before the protocol hears of the room: ResumeWriting may call
        // Write (and Close) from inside this callback, which must then find the write in flight.
        _sendStart += _send.BytesTransferred;
        if (_sendStart < _sendEnd)
        {
            WriteInFlight();
        }
        else
        {
            ReturnSending();
            StartWrite();
        }

        _flow.MaybeResume(GetWriteBufferSize());
        if (Lifecycle.IsClosing && !HasPendingWrites && !Lifecycle.IsConnectionLost)
        {
            Lifecycle.ScheduleConnectionLost(null);
        }
    }

    private void ReturnSending()
    {
        if (_sending is not null)
        {
            WriteBacklog.Release(ref _sending, ref _sendStart, ref _sendEnd);
        }
    }

    /// <inheritdoc/>
    public int GetWriteBufferSize() => (_sendEnd - _sendStart) + (_bufEnd - _bufStart);

    /// <inheritdoc/>
    public (int Low, int High) GetWriteBufferLimits() => _flow.Limits;

    /// <inheritdoc/>
    public void SetWriteBufferLimits(int? high = null, int? low = null) => _flow.SetLimits(high, low, GetWriteBufferSize());

    // ---- The reader going away -----------------------------------------------------------

    private void SchedulePeerPoll() => _peerPoll = Loop.CallLater(PeerPollInterval, static t => t.PollPeer(), this);

    private void StopPeerPoll()
    {
        if (_peerPoll is { } timer)
        {
            _peerPoll = null;
            timer.Cancel();
            Loop.CountOperation(started: false);
        }
    }

    private void PollPeer()
    {
        if (_peerPoll is null || Lifecycle.IsConnectionLost)
        {
            return;
        }

        bool gone;
        try
        {
            // A pipe's write end reports an error (POLLERR) once no reader is left; a socket reads as EOF.
            gone = Channel.Poll(0, SelectMode.SelectError) || (_isSocket && Channel.Poll(0, SelectMode.SelectRead));
        }
        catch (SocketException)
        {
            gone = true;
        }

        if (!gone)
        {
            SchedulePeerPoll();
            return;
        }

        if (Loop.Debug && Loop.Logger.IsEnabled(LogLevel.Debug))
        {
            Log.WritePipeClosedByPeer(Loop.Logger, this);
        }

        if (HasPendingWrites && GetWriteBufferSize() > 0)
        {
            int unsent = GetWriteBufferSize();
            var sample = new SocketException((int)SocketError.Shutdown);
            Lifecycle.ForceClose(new IOException(
                $"write(fd {Fd}) failed: broken pipe: the reading end is closed, {unsent} bytes were not written (EPIPE, errno {sample.NativeErrorCode})",
                sample.NativeErrorCode));
        }
        else
        {
            Lifecycle.ForceClose(null);
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowWriteAfterEof() =>
        throw new InvalidOperationException("Cannot call Write() after WriteEof(): the pipe is closing.");
}
