using System;
using System.Buffers;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Tulip.IoUring;

namespace Tulip;

/// <summary>
/// A stream transport (TCP or UNIX) on the <see cref="IoUringEventLoop"/>, driven by completions read
/// on the loop thread: a receive into the loop's provided buffers always armed while reading, and the
/// write backlog sent by ring sends submitted with the loop's next wait (issue 14). No readiness poll,
/// and no recv system call of its own.
/// </summary>
/// <remarks>
/// <para>
/// Reading: an <c>IORING_OP_RECV</c> with buffer select stays armed while the transport reads (re-armed
/// after each completion; multishot is a switch, <see cref="UseMultishotReceive"/>, off for the reason it
/// gives); each completion names the buffer the kernel filled, and the transport hands it to the
/// protocol on the loop's ready queue (in order, never from inside the wait) and gives it back.
/// <see cref="PauseReading"/> withdraws the receive (<c>ASYNC_CANCEL</c>), so the kernel stops taking
/// data and TCP's window closes; what arrived before the cancel took effect is copied aside and given
/// on after <see cref="ResumeReading"/>, so a paused connection holds no ring buffer. The receive
/// ends by itself on EOF, an error, or an empty buffer ring (ENOBUFS: re-armed once a buffer is back).
/// </para>
/// <para>
/// Writing: <see cref="Write"/> sends at once (send(2)) when nothing is pending, as every loop does, so a
/// write the socket takes is never buffered; what it refuses is copied into a pinned send buffer and
/// goes out by one <c>IORING_OP_SEND</c> at a time, submitted with the loop's next <c>io_uring_enter</c>
/// (the same call that waits), no readiness poll in between. Data written while a send is in flight
/// waits in a second buffer and goes as one send when it completes. A send that completes in full
/// with nothing behind it is settled inside the wait, with no ready-queue entry.
/// </para>
/// <para>
/// Closing: before the fd is closed every operation on it is cancelled and every queued entry is
/// submitted (<see cref="BeforeCloseFd"/>), so nothing queued for this fd can reach a file that reuses
/// its number; buffers the kernel may still write into or send from are kept until their operation's
/// last completion. Everything here is owned by the loop thread.
/// </para>
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed class IoUringSocketTransport : SelectorTransport, ITransport, IServerClient, ISelectorSendFileTransport, IReceiveOwner, IIoUringOperation, IIoUringFlush, IIoUringBufferWaiter
{
    private const string DroppedWriteWarning = "socket.send() raised exception: the transport is closed, the write was dropped.";

    private readonly IoUringEventLoop _uring;
    private readonly Action<ITransport>? _connectionLost;
    // The receive's operation index: the transport itself is the receive operation (IIoUringOperation),
    // one object fewer per connection; the send has its own.
    private int _recvIndex = -1;
    private readonly SendOperation _send;
    private readonly StateHandle<IoUringSocketTransport> _recvHandle;
    private readonly StateHandle<IoUringSocketTransport> _sendHandle;

    private IProtocol? _streamProtocol;
    private IBufferedProtocol? _bufferedProtocol;

    // ---- receive state ----
    private bool _readingPaused;    // PauseReading was called, or EOF was received
    private bool _recvArmed;        // a receive is in the kernel (its last completion not seen yet)
    private bool _recvCancelled;    // an ASYNC_CANCEL of it was queued
    private bool _recvScheduled;    // _recvHandle is queued on the loop
    private bool _waitingForBuffers; // ended with ENOBUFS: the loop re-arms it when a buffer comes back
    private int _recvEnd = 1;       // 1: no end; 0: EOF; negative: -errno that ended the receive
    private int _recvWants;         // buffers the armed receive told the ring it may take
    private bool _recvDrained;      // the last receive took less than a buffer: the socket is likely empty
    // Completed receives not yet given to the protocol: (buffer id << 32) | length. The first is held
    // inline; a single-shot receive is re-armed only once its chunk is given, so only multishot receives
    // queue more behind it, in a small ring allocated the first time.
    private ulong _chunk;
    private ulong[]? _moreChunks;
    private int _moreHead;
    private int _chunkCount;
    private int _chunkOffset;       // bytes of the first chunk already given (a buffered protocol paused in it)
    // Bytes received while paused, copied out of the ring's buffers: [_heldStart, _heldEnd) of _held.
    private byte[]? _held;
    private int _heldStart;
    private int _heldEnd;

    // ---- send state ----
    private readonly RingWriteBuffers _out; // what is being sent (one ring send) and what is written behind it
    private bool _flushQueued;      // ring writes: queued to send what is gathered before the next submission
    private bool _sendArmed;        // a send is under way: in the kernel, or its completion not handled yet (OnSent)
    private int _sendResult;        // the completed send's result, for _sendHandle

    private bool _eof;              // WriteEof was called
    private bool _eofSent;          // shutdown(SHUT_WR) done
    private bool _lost;             // ConnectionLost ran: completions only release what they held
    private SendFileSession? _sendFile;

    internal IoUringSocketTransport(IoUringEventLoop loop, Socket socket, IBaseProtocol protocol, Future<VoidResult>? waiter, Action<ITransport>? connectionLost)
        : base(loop, socket, DroppedWriteWarning)
    {
        _uring = loop;
        _connectionLost = connectionLost;
        _send = new SendOperation(this);
        _out = new RingWriteBuffers(loop.SendBuffers);
        _recvHandle = new StateHandle<IoUringSocketTransport>(loop, static t => t.OnReceived(), this);
        _sendHandle = new StateHandle<IoUringSocketTransport>(loop, static t => t.OnSent(), this);
        SetProtocol(protocol);
        Register();
        try
        {
            Start(waiter);
        }
        catch
        {
            Unregister();
            throw;
        }
    }

    /// <summary>A transport for a connection accepted with accept4(2): its fd's handle, with no <see cref="Socket"/> (made only if asked for).</summary>
    internal IoUringSocketTransport(IoUringEventLoop loop, SocketFdHandle handle, EndPoint? sockname, EndPoint? peername, ulong packedIPv4Peer,
        IBaseProtocol protocol, Action<ITransport>? connectionLost)
        : base(loop, handle, sockname, peername, packedIPv4Peer, DroppedWriteWarning)
    {
        _uring = loop;
        _connectionLost = connectionLost;
        _send = new SendOperation(this);
        _out = new RingWriteBuffers(loop.SendBuffers);
        _recvHandle = new StateHandle<IoUringSocketTransport>(loop, static t => t.OnReceived(), this);
        _sendHandle = new StateHandle<IoUringSocketTransport>(loop, static t => t.OnSent(), this);
        SetProtocol(protocol);
        Register();
        try
        {
            Start(null);
        }
        catch
        {
            Unregister();
            throw;
        }
    }

    private void Register()
    {
        _loop.ClaimFd(_fd, this);
        _recvIndex = _uring.Uring.RegisterOperation(this);
        _send.Index = _uring.Uring.RegisterOperation(_send);
    }

    private void Unregister()
    {
        if (!_life.IsStarted)
        {
            // The constructor failed: the fd goes back to the caller, unclaimed.
            _loop.ReleaseFd(_fd, this);
        }

        if (!_recvArmed && _recvIndex >= 0)
        {
            _uring.Uring.UnregisterOperation(_recvIndex);
            _recvIndex = -1;
        }

        if (!_out.InKernel && _send.Index >= 0)
        {
            _uring.Uring.UnregisterOperation(_send.Index);
            _send.Index = -1;
            _out.ReturnSending();
        }
    }

    /// <inheritdoc/>
    public ITransport? PreviousClient { get; set; }

    /// <inheritdoc/>
    public ITransport? NextClient { get; set; }

    /// <inheritdoc/>
    public bool IsServerClient { get; set; }

    /// <inheritdoc/>
    public bool IsReading => !_readingPaused && !_life.IsClosing;

    /// <inheritdoc/>
    public bool CanWriteEof => true;

    /// <inheritdoc/>
    private protected override bool HasPendingWrites => _sendArmed || _out.HasGathered;

    /// <inheritdoc/>
    public override void SetProtocol(IBaseProtocol protocol)
    {
        StreamProtocolKind.Split(protocol, out var buffered, out var stream);
        (_bufferedProtocol, _streamProtocol, _protocol) = (buffered, stream, protocol);
    }

    /// <inheritdoc/>
    public override string ToString() => $"<IoUringSocketTransport fd={_fd} {_life.StateName} buffered={GetWriteBufferSize()}>";

    SelectorEventLoop ISelectorSendFileTransport.Loop => _loop;

    Socket ISelectorSendFileTransport.Socket => Socket;

    /// <summary>
    /// Bytes that reached this transport and were not given to the protocol yet: received and held
    /// (paused), plus what the kernel holds. For tests (the loop kinds' "undelivered" probe).
    /// </summary>
    internal int UndeliveredBytes
    {
        get
        {
            int held = _heldEnd - _heldStart - _chunkOffset;
            if (_chunkCount != 0)
            {
                held += (int)(uint)_chunk;
            }

            for (int i = 0; i < _chunkCount - 1; i++)
            {
                held += (int)(uint)_moreChunks![(_moreHead + i) & (_moreChunks.Length - 1)];
            }

            int kernel = 0;
            if (!_life.IsConnectionLost)
            {
                try
                {
                    kernel = Socket.Available;
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    // Reset or closed: the kernel holds nothing for us.
                }
            }

            return held + kernel;
        }
    }

    // ---- Lifecycle -------------------------------------------------------------------------

    /// <inheritdoc/>
    private protected override void OnStarted()
    {
        if (!_readingPaused)
        {
            ArmReceive();
        }
    }

    /// <inheritdoc/>
    /// <remarks>Unsent data is dropped and the peer gets a reset (SO_LINGER {on, 0}), as asyncio's <c>abort</c>.</remarks>
    public override void Abort()
    {
        if (!_life.IsConnectionLost)
        {
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
    private protected override void BeforeCloseFd()
    {
        _lost = true;
        ReleaseReceived();
        CancelReceive();
        if (_out.InKernel)
        {
            // Graceful closes wait for their sends; this is an abort (or a fatal error): the bytes go.
            QueueCancel(_send.Index);
        }

        // Every entry queued for this fd (a receive to arm, a send, the cancels) reaches the kernel
        // now, while the number still names this socket.
        _uring.Uring.SubmitAll();
        Unregister();
    }

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
        CancelReceive();
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

        if (HasReceived || _recvEnd != 1)
        {
            // What is held goes on on the next iteration, not inside this call (asyncio's call_soon).
            ScheduleReceived();
        }
        else
        {
            ArmReceive();
        }
    }

    private bool HasReceived => _chunkCount != 0 || _heldStart != _heldEnd;

    private void ArmReceive()
    {
        if (_recvArmed || _lost || _readingPaused || _life.IsClosing || _recvEnd != 1)
        {
            return;
        }

        var buffers = _uring.ReceiveBuffers;
        ref IoUringSqe sqe = ref _uring.Uring.GetSqe();
        sqe.Opcode = Interop.IoUring.OP_RECV;
        sqe.Fd = _fd;
        // POLL_FIRST (when switched on) when the last receive emptied the socket (took less than a
        // buffer): the kernel arms its poll at once instead of first trying a recv that may find nothing.
        sqe.IoPrio = UseMultishotReceive ? Interop.IoUring.RECV_MULTISHOT
            : _recvDrained && UsePollFirst ? Interop.IoUring.RECVSEND_POLL_FIRST : (ushort)0;
        sqe.Flags = Interop.IoUring.IOSQE_BUFFER_SELECT;
        sqe.BufIndex = buffers.GroupId;
        sqe.UserData = Selectors.IoUringSelector.OperationUserData(_recvIndex);
        _recvArmed = true;
        _recvCancelled = false;
        _uring.OperationsInKernel++;
        // A single-shot receive takes at most one buffer; a multishot one may take several per iteration.
        _recvWants = UseMultishotReceive ? MultishotBuffers : 1;
        buffers.ReceiveArmed(_recvWants);
    }

    // Buffers the ring keeps for an armed multishot receive (it may take several in one iteration).
    private const int MultishotBuffers = 4;

    private void CancelReceive()
    {
        if (_recvArmed && !_recvCancelled)
        {
            _recvCancelled = true;
            QueueCancel(_recvIndex);
        }

        if (_waitingForBuffers)
        {
            _waitingForBuffers = false;
            _uring.StopWaitingForBuffers(this);
        }
    }

    private void QueueCancel(int index)
    {
        ref IoUringSqe sqe = ref _uring.Uring.GetSqe();
        sqe.Opcode = Interop.IoUring.OP_ASYNC_CANCEL;
        sqe.Fd = -1;
        sqe.Addr = Selectors.IoUringSelector.OperationUserData(index);
        sqe.UserData = Selectors.IoUringSelector.CancelTag;
    }

    /// <summary>A receive completion, inside the wait: record it, and have the protocol told on the ready queue.</summary>
    /// <summary>
    /// Whether receives are multishot (one armed receive for many completions) rather than one receive
    /// per completion. Off: on this kernel (6.18) a multishot receive armed after the peer's reset, with
    /// more data queued than its 32 inline retries take, drains the data and never reports the reset, so
    /// the connection hangs (the contract test Abort_SendsRstAndLosesConnectionAtOnce, 1 run in 3; shown
    /// without Tulip by tools/kernel-repro/multishot_recv_reset.c); one receive per completion never did.
    /// Turned on, PauseReading would also have to cancel again: an ASYNC_CANCEL of a multishot receive the
    /// kernel is requeueing can fail with ENOENT while the receive goes on.
    /// A single-shot receive still picks its buffer from the ring (an idle connection holds none) and is
    /// submitted with the loop's wait, so it costs a submission entry, not a system call. Internal, for
    /// the benchmarks and for whoever takes the multishot case up again.
    /// </summary>
    internal static bool UseMultishotReceive { get; set; }

    /// <summary>
    /// Whether a receive armed after one that emptied the socket asks for <c>IORING_RECVSEND_POLL_FIRST</c>.
    /// Off: it saved server CPU at 10 x 64 KiB, but lost req/s at 10 x 1 KiB (0.81x against 0.94x the C
    /// epoll floor in one run) and did not win at 64 KiB either (1.05x against 1.09x): by the time the
    /// loop submits the re-armed receive the peer has often sent again, and the inline attempt POLL_FIRST
    /// skips would have found it. <c>TULIP_URING_POLL_FIRST=1</c> turns it on, for the benchmarks.
    /// </summary>
    internal static bool UsePollFirst { get; set; } = Environment.GetEnvironmentVariable("TULIP_URING_POLL_FIRST") == "1";

    private void OnReceiveCompletion(int result, uint flags)
    {
        var buffers = _uring.ReceiveBuffers;
        if ((flags & Interop.IoUring.CQE_F_BUFFER) != 0)
        {
            ushort id = (ushort)(flags >> Interop.IoUring.CQE_BUFFER_SHIFT);
            buffers.Taken();
            _recvDrained = result < buffers.BufferSize;
            if (result > 0 && !_lost && !_life.IsClosing)
            {
                PushChunk(id, result);
            }
            else
            {
                buffers.Return(id);
            }
        }

        if ((flags & Interop.IoUring.CQE_F_MORE) == 0)
        {
            _recvArmed = false;
            _uring.OperationsInKernel--;
            buffers.ReceiveEnded(_recvWants);
            if (_lost)
            {
                Unregister();
                return;
            }

            if (result == -Interop.ENOBUFS)
            {
                _uring.BufferExhaustions++;
                // The ring ran dry: re-armed when a buffer comes back (IoUringEventLoop.ReturnBuffer), or
                // on the next iteration if some came back since the kernel found none (OnReceived re-arms).
                if (!_readingPaused && !_life.IsClosing && buffers.Outstanding >= buffers.Count)
                {
                    _waitingForBuffers = true;
                    _uring.WaitForBuffers(this);
                }
            }
            else if (result <= 0 && result != -Interop.ECANCELED)
            {
                _recvEnd = result; // EOF, or the error that ended the connection's reading
            }
        }

        if (!_lost && (HasReceived || _recvEnd != 1 || (!_recvArmed && !_waitingForBuffers)))
        {
            ScheduleReceived();
        }
    }

    /// <summary>A buffer came back to the ring after this transport's receive ended with ENOBUFS.</summary>
    public void BuffersAvailable()
    {
        _waitingForBuffers = false;
        ArmReceive();
    }

    private void ScheduleReceived()
    {
        if (!_recvScheduled)
        {
            _recvScheduled = true;
            _uring.Schedule(_recvHandle);
        }
    }

    private void PushChunk(ushort id, int length)
    {
        ulong chunk = ((ulong)id << 32) | (uint)length;
        if (_chunkCount == 0)
        {
            _chunk = chunk;
            _chunkCount = 1;
            return;
        }

        int behind = _chunkCount - 1;
        _moreChunks ??= new ulong[4];
        if (behind == _moreChunks.Length)
        {
            var bigger = new ulong[_moreChunks.Length * 2];
            for (int i = 0; i < behind; i++)
            {
                bigger[i] = _moreChunks[(_moreHead + i) & (_moreChunks.Length - 1)];
            }

            _moreChunks = bigger;
            _moreHead = 0;
        }

        _moreChunks[(_moreHead + behind) & (_moreChunks.Length - 1)] = chunk;
        _chunkCount++;
    }

    private void PopChunk()
    {
        ushort id = (ushort)(_chunk >> 32);
        _chunkCount--;
        if (_chunkCount != 0)
        {
            _chunk = _moreChunks![_moreHead];
            _moreHead = (_moreHead + 1) & (_moreChunks.Length - 1);
        }

        _chunkOffset = 0;
        _uring.ReturnBuffer(id);
    }

    /// <summary>Gives every ring buffer back (the data dropped): the transport is closing.</summary>
    private void ReleaseReceived()
    {
        while (_chunkCount != 0)
        {
            PopChunk();
        }

        if (_held is { } held)
        {
            _held = null;
            _heldStart = _heldEnd = 0;
            ArrayPool<byte>.Shared.Return(held);
        }
    }

    /// <summary>Copies what is received and not delivered out of the ring's buffers, and gives them back: reading is paused.</summary>
    private void HoldReceived()
    {
        while (_chunkCount != 0)
        {
            ulong chunk = _chunk;
            var data = _uring.ReceiveBuffers.Span((ushort)(chunk >> 32), (int)(uint)chunk).Slice(_chunkOffset);
            if (_held is null)
            {
                _held = ArrayPool<byte>.Shared.Rent(Math.Max(data.Length, 4096));
            }
            else if (_held.Length - _heldEnd < data.Length)
            {
                var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_held.Length * 2, _heldEnd - _heldStart + data.Length));
                _held.AsSpan(_heldStart, _heldEnd - _heldStart).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(_held);
                _heldEnd -= _heldStart;
                _heldStart = 0;
                _held = bigger;
            }

            data.CopyTo(_held.AsSpan(_heldEnd));
            _heldEnd += data.Length;
            PopChunk();
        }
    }

    /// <summary>The ready-queue handler: the received bytes to the protocol, in order; then EOF or the error; then re-arm.</summary>
    private void OnReceived()
    {
        _recvScheduled = false;
        if (_lost)
        {
            return;
        }

        if (_life.IsClosing)
        {
            ReleaseReceived();
            return;
        }

        if (_heldStart != _heldEnd && !_readingPaused)
        {
            if (!Deliver(_held!, ref _heldStart, _heldEnd))
            {
                HoldIfPaused();
                return;
            }

            ArrayPool<byte>.Shared.Return(_held!);
            _held = null;
            _heldStart = _heldEnd = 0;
        }

        while (_chunkCount != 0 && !_readingPaused)
        {
            ulong chunk = _chunk;
            int length = (int)(uint)chunk;
            if (_chunkOffset == 0)
            {
                _loop.MetricBytesReceived += length;
            }

            if (!DeliverChunk((ushort)(chunk >> 32), length))
            {
                HoldIfPaused();
                return;
            }

            PopChunk();
        }

        if (_readingPaused)
        {
            HoldReceived();
            return;
        }

        if (_recvEnd != 1)
        {
            int end = _recvEnd;
            _recvEnd = 2; // reported: nothing more is read (ArmReceive refuses)
            if (end == 0)
            {
                ReadEof();
            }
            else if (end < 0)
            {
                _life.FatalError(Interop.GetExceptionForErrno(-end, $"recv(fd {_fd})", source: Interop.ErrnoSource.Socket),
                    "Fatal read error on socket transport");
            }

            return;
        }

        ArmReceive();
    }

    private void HoldIfPaused()
    {
        if (_life.IsClosing)
        {
            ReleaseReceived();
        }
        else if (_readingPaused)
        {
            HoldReceived();
        }
    }

    private bool DeliverChunk(ushort id, int length) =>
        ReceiveDelivery.Deliver(this, _bufferedProtocol, _streamProtocol, _uring.ReceiveBuffers.Span(id, length), ref _chunkOffset);

    private bool Deliver(byte[] buffer, ref int start, int end)
    {
        int offset = 0;
        bool all = ReceiveDelivery.Deliver(this, _bufferedProtocol, _streamProtocol, buffer.AsSpan(start, end - start), ref offset);
        start += offset;
        return all;
    }

    bool IReceiveOwner.ReadingPaused => _readingPaused;

    bool IReceiveOwner.DeliveryStopped => _life.IsClosing;

    void IReceiveOwner.DeliveryFailed(Exception error, string message) => _life.FatalError(error, message);

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

        if (_uring.RingWrites)
        {
            _out.Append(data);
            QueueFlush();
            _flow.MaybePause(GetWriteBufferSize());
            return;
        }

        if (!HasPendingWrites)
        {
            // Nothing pending: send at once, as every loop does (the kernel has the bytes when Write
            // returns, if it takes them), and queue only what it refuses.
            int n = SendNow(data);
            if (n < 0)
            {
                return;
            }

            if (n == data.Length)
            {
                return;
            }

            data = data.Slice(n);
        }

        _out.Append(data);
        StartSend();
        _flow.MaybePause(GetWriteBufferSize());
    }

    /// <summary>send(2) now: bytes taken (0 when the socket is full), or -1 after a fatal error.</summary>
    /// <param name="data">What to send.</param>
    /// <param name="vectored">WriteLines' gathered chunks: sendmsg(2), the call every loop's WriteLines makes (and names in its errors).</param>
    private unsafe int SendNow(ReadOnlySpan<byte> data, bool vectored = false)
    {
        string call = vectored ? "sendmsg" : "send";
        fixed (byte* p = data)
        {
            nint n;
            if (vectored)
            {
                var iov = new Interop.IoVec { Base = p, Length = (nuint)data.Length };
                var message = new Interop.MsgHdr { Iov = &iov, IovLength = 1 };
                n = Interop.SendMsg(_fd, &message, Interop.MSG_NOSIGNAL);
            }
            else
            {
                n = Interop.Send(_fd, p, (nuint)data.Length, Interop.MSG_NOSIGNAL);
            }

            if (n >= 0)
            {
                _loop.MetricBytesSent += n;
                return (int)n;
            }
        }

        int errno = Interop.GetErrnoAfterFailure();
        if (errno is Interop.Errno.EAGAIN or Interop.Errno.EINTR)
        {
            return 0;
        }

        _life.FatalError(Interop.GetExceptionForErrno(errno, $"{call}(fd {_fd})", source: Interop.ErrnoSource.Socket), "Fatal write error on socket transport");
        return -1;
    }

    /// <inheritdoc/>
    /// <remarks>The chunks are copied into one send buffer and go to the kernel as one send.</remarks>
    public void WriteLines(IEnumerable<ReadOnlyMemory<byte>> data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!StreamTransportCalls.BeginWrite(_life, _eof, _sendFile is not null, empty: false))
        {
            return;
        }

        bool pending = HasPendingWrites;
        bool any = false;
        foreach (var chunk in data)
        {
            if (!chunk.IsEmpty)
            {
                _out.Append(chunk.Span);
                any = true;
            }
        }

        if (!any)
        {
            return;
        }

        if (_uring.RingWrites)
        {
            QueueFlush();
            _flow.MaybePause(GetWriteBufferSize());
            return;
        }

        if (!pending)
        {
            // One send(2) of the gathered chunks, as Write's; only what the socket refuses is queued.
            int n = SendNow(_out.Gathered, vectored: true);
            if (n >= 0 && _out.Promote(n))
            {
                SubmitSend();
                _flow.MaybePause(GetWriteBufferSize());
            }

            return;
        }

        StartSend();
        _flow.MaybePause(GetWriteBufferSize());
    }

    /// <summary>Ring writes: what is gathered goes in one send just before the loop's next submission.</summary>
    private void QueueFlush()
    {
        if (!_flushQueued && !_sendArmed)
        {
            _flushQueued = true;
            _uring.Uring.QueueFlush(this);
        }
    }

    /// <inheritdoc/>
    void IIoUringFlush.Flush()
    {
        _flushQueued = false;
        StartSend();
    }

    /// <summary>The buffer becomes the one in flight, when no send is.</summary>
    private void StartSend()
    {
        if (_sendArmed || !_out.HasGathered || _lost)
        {
            return;
        }

        _out.Promote();
        SubmitSend();
    }

    private void SubmitSend()
    {
        ref IoUringSqe sqe = ref _uring.Uring.GetSqe();
        sqe.Opcode = Interop.IoUring.OP_SEND;
        sqe.Fd = _fd;
        // A pinned array (PinnedBufferPool): its address holds until the send's completion.
        sqe.Addr = _out.InFlightAddress;
        sqe.Len = (uint)_out.InFlight;
        sqe.OpFlags = Interop.MSG_NOSIGNAL;
        sqe.UserData = Selectors.IoUringSelector.OperationUserData(_send.Index);
        _sendArmed = true;
        _out.InKernel = true;
        _uring.OperationsInKernel++;
        _uring.RingSends++;
    }

    /// <summary>A send completion, inside the wait. The common case (all sent, nothing behind it, nobody to tell) is settled here.</summary>
    private void OnSendCompletion(int result)
    {
        _out.InKernel = false;
        _uring.OperationsInKernel--;
        if (_lost)
        {
            _sendArmed = false;
            Unregister();
            return;
        }

        if (result > 0 && result == _out.InFlight && !_out.HasGathered && !_flow.IsPaused && !_life.IsClosing && !_eof && _sendFile is null)
        {
            _sendArmed = false;
            _loop.MetricBytesSent += result;
            _out.ReturnSending();
            return;
        }

        // _sendArmed stays set until OnSent: a Write meanwhile queues behind the unsent rest, never
        // sends past it or replaces the array it is in.

        _sendResult = result;
        _uring.Schedule(_sendHandle);
    }

    private void OnSent()
    {
        _sendArmed = false;
        if (_lost || _life.IsConnectionLost)
        {
            return;
        }

        int result = _sendResult;
        if (result < 0)
        {
            if (result == -Interop.ECANCELED && _life.IsClosing)
            {
                return;
            }

            _life.FatalError(Interop.GetExceptionForErrno(-result, $"send(fd {_fd})", source: Interop.ErrnoSource.Socket),
                "Fatal write error on socket transport");
            return;
        }

        // As the proactor: the next send starts before the protocol hears of the room, so a protocol
        // that writes from ResumeWriting finds a send pending and buffers behind it.
        _loop.MetricBytesSent += result;
        if (_out.Advance(result))
        {
            SubmitSend();
            MaybeResumeWriting();
            return;
        }

        _out.ReturnSending();
        if (_out.HasGathered)
        {
            StartSend();
            MaybeResumeWriting();
            return;
        }

        // ResumeWriting may write again (and then Close or WriteEof): that is pending now, and the
        // close or EOF waits for it.
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
    private protected override void DropBuffer() => _out.Drop();

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
        if (Interop.Shutdown(_fd, Interop.SHUT_WR) != 0 && Interop.GetLastErrno() is int errno && errno != Interop.Errno.ENOTCONN)
        {
            _life.FatalError(Interop.GetExceptionForErrno(errno, $"shutdown(fd {_fd}, SHUT_WR)", source: Interop.ErrnoSource.Socket),
                "Fatal error on shutdown(SHUT_WR)");
        }
    }

    /// <inheritdoc/>
    public int GetWriteBufferSize() => _out.Count;

    /// <inheritdoc/>
    public (int Low, int High) GetWriteBufferLimits() => _flow.Limits;

    /// <inheritdoc/>
    public void SetWriteBufferLimits(int? high = null, int? low = null) => _flow.SetLimits(high, low, GetWriteBufferSize());

    // ---- SendFileAsync -----------------------------------------------------------------------

    /// <inheritdoc/>
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
            Drained = HasPendingWrites ? new Future<VoidResult>(_loop) : null,
            ResumeReading = IsReading,
        };
        _life.HoldConnectionLost();
        PauseReading();
        return _sendFile;
    }

    /// <inheritdoc/>
    public void EndSendFile(SendFileSession session)
    {
        if (!ReferenceEquals(session, _sendFile))
        {
            return;
        }

        _sendFile = null;
        _life.ReleaseConnectionLost();
        if (_life.IsClosing)
        {
            return;
        }

        if (session.ResumeReading)
        {
            ResumeReading();
        }

        if (_eof && !HasPendingWrites)
        {
            ShutdownWrite();
        }
    }



    /// <summary>The receive, as the selector sees it: the transport is its own receive operation.</summary>
    void IIoUringOperation.OnCompletion(int result, uint flags) => OnReceiveCompletion(result, flags);

    /// <summary>The send in flight, as the selector sees it.</summary>
    private sealed class SendOperation(IoUringSocketTransport transport) : IIoUringOperation
    {
        public int Index = -1;

        public void OnCompletion(int result, uint flags) => transport.OnSendCompletion(result);
    }
}
