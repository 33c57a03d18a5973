using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Tulip.IoUring;
using Tulip.Selectors;

namespace Tulip;

/// <summary>
/// The read end of a pipe or FIFO on the <see cref="IoUringEventLoop"/>, driven by completions (issue 14):
/// one <c>IORING_OP_READ</c> armed while the transport reads, into its own pinned 64 KiB buffer (what one
/// read(2) of the readiness transport takes: a Linux pipe holds 64 KiB by default). Each completion is
/// handed to the protocol on the ready queue, then the read is re-armed; at the end of the data,
/// <c>EofReceived</c> then <c>ConnectionLost(null)</c>, as asyncio's <c>_UnixReadPipeTransport</c>.
/// </summary>
/// <remarks>
/// <see cref="PauseReading"/> cancels the read (<c>ASYNC_CANCEL</c>); bytes it returned before the cancel
/// took effect stay in the buffer and go to the protocol after <see cref="ResumeReading"/>, and a paused
/// transport with nothing held gives its buffer back. A buffered protocol is filled from the buffer through
/// <see cref="ReceiveDelivery"/> (its <c>GetBuffer</c> memory is never handed to the kernel, which could
/// still write into it after a cancel). Before the fd is closed the read is cancelled and the cancel
/// submitted, so the kernel lets go of the file at once and a writer sees the pipe close. Loop thread only.
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed unsafe class IoUringReadPipeTransport : PipeTransport, IReadTransport, IReceiveOwner
{
    /// <summary>Bytes per read: a Linux pipe holds 64 KiB by default, so one read empties it.</summary>
    internal const int ReadSize = 64 * 1024;

    private readonly IoUringEventLoop _uring;
    private readonly ReadOperation _read;
    private readonly StateHandle<IoUringReadPipeTransport> _readHandle;
    private IProtocol? _streamProtocol;
    private IBufferedProtocol? _bufferedProtocol;
    private bool _paused;

    private byte[]? _buffer;        // pinned (PinnedBufferPool); the kernel writes it while _armed
    private bool _armed;            // a read is in the kernel (its completion not seen yet)
    private bool _cancelled;        // an ASYNC_CANCEL of it was queued
    private bool _scheduled;        // _readHandle is queued
    private int _heldStart;         // bytes [_heldStart, _heldEnd) of _buffer: read, not delivered yet
    private int _heldEnd;
    private int _end = 1;           // 1: reading; 0: EOF seen; negative: -errno that ended reading; 2: reported
    private bool _lost;             // the fd is being closed: completions only release what they held

    internal IoUringReadPipeTransport(IoUringEventLoop loop, PipeFd pipe, IBaseProtocol protocol, Future<VoidResult> waiter)
        : base(loop, pipe, protocol, waiter, "pipe read transport: the transport is closed.")
    {
        _uring = loop;
        _read = new ReadOperation(this);
        _readHandle = new StateHandle<IoUringReadPipeTransport>(loop, static t => t.OnRead(), this);
        OnProtocolSet(protocol);
        _read.Index = loop.Uring.RegisterOperation(_read);
        loop.ClaimFd(Fd, this);
    }

    /// <inheritdoc/>
    public bool IsReading => !_paused && !Lifecycle.IsClosing;

    bool IReceiveOwner.ReadingPaused => _paused;

    bool IReceiveOwner.DeliveryStopped => Lifecycle.IsClosing;

    void IReceiveOwner.DeliveryFailed(Exception error, string message) => Lifecycle.FatalError(error, message);

    /// <inheritdoc/>
    protected override void CheckProtocol(IBaseProtocol protocol) => PipeHandleProbe.CheckReadProtocol(protocol);

    /// <inheritdoc/>
    protected override void OnProtocolSet(IBaseProtocol protocol)
    {
        _bufferedProtocol = protocol as IBufferedProtocol;
        _streamProtocol = _bufferedProtocol is null ? protocol as IProtocol : null;
    }

    /// <inheritdoc/>
    protected override void OnStarted() => Arm();

    /// <inheritdoc/>
    protected override void OnClosing() => Cancel();

    /// <inheritdoc/>
    /// <remarks>The read is withdrawn and the cancel submitted now; once the fd is to be closed, the slot and buffer go when the kernel let go of them.</remarks>
    protected override void Unwatch()
    {
        Cancel();
        _uring.Uring.SubmitAll();
        if (Lifecycle.IsClosed && !_lost)
        {
            _lost = true;
            _uring.SetReader(Fd, null, cancelReplaced: false); // ends the claim
            Release();
        }
    }

    /// <inheritdoc/>
    public override void Close() => Lifecycle.Close(hasPendingWrites: false);

    /// <inheritdoc/>
    public void PauseReading()
    {
        if (Lifecycle.IsClosing || _paused)
        {
            return;
        }

        _paused = true;
        Cancel();
    }

    /// <inheritdoc/>
    public void ResumeReading()
    {
        if (Lifecycle.IsClosing || !_paused)
        {
            return;
        }

        _paused = false;
        if (!Lifecycle.IsStarted)
        {
            return;
        }

        if (_heldStart != _heldEnd || _end != 1)
        {
            // What is held goes on on the next iteration, not inside this call (asyncio's call_soon).
            Schedule();
        }
        else
        {
            Arm();
        }
    }

    private void Arm()
    {
        if (_armed || _paused || _lost || Lifecycle.IsClosing || _end != 1 || _heldStart != _heldEnd)
        {
            return;
        }

        _buffer ??= _uring.SendBuffers.Rent(ReadSize);
        ref IoUringSqe sqe = ref _uring.Uring.GetSqe();
        sqe.Opcode = Interop.IoUring.OP_READ;
        sqe.Fd = Fd;
        sqe.Addr = (ulong)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_buffer));
        sqe.Len = (uint)_buffer.Length;
        sqe.Off = ulong.MaxValue; // the file position: a pipe has none
        sqe.UserData = IoUringSelector.OperationUserData(_read.Index);
        _armed = true;
        _cancelled = false;
        _uring.OperationsInKernel++;
        _uring.PipeOperationsSubmitted++;
    }

    private void Cancel()
    {
        if (_armed && !_cancelled)
        {
            _cancelled = true;
            ref IoUringSqe sqe = ref _uring.Uring.GetSqe();
            sqe.Opcode = Interop.IoUring.OP_ASYNC_CANCEL;
            sqe.Fd = -1;
            sqe.Addr = IoUringSelector.OperationUserData(_read.Index);
            sqe.UserData = IoUringSelector.CancelTag;
        }
    }

    /// <summary>The read's completion, inside the wait: recorded, delivered on the ready queue.</summary>
    private void OnCompletion(int result)
    {
        _armed = false;
        _uring.OperationsInKernel--;
        if (_lost)
        {
            Release();
            return;
        }

        if (result > 0)
        {
            (_heldStart, _heldEnd) = (0, result);
        }
        else if (result == 0)
        {
            _end = 0;
        }
        else if (result != -Interop.ECANCELED)
        {
            _end = result;
        }

        if (Lifecycle.IsClosing)
        {
            return;
        }

        if (_heldStart != _heldEnd || _end != 1)
        {
            if (!_paused)
            {
                Schedule();
            }
        }
        else if (_paused)
        {
            // Paused with nothing held: the buffer goes back until reading resumes.
            ReturnBuffer();
        }
        else
        {
            Schedule(); // a cancel that raced a resume: re-arm on the next iteration
        }
    }

    private void Schedule()
    {
        if (!_scheduled)
        {
            _scheduled = true;
            _uring.Schedule(_readHandle);
        }
    }

    /// <summary>The ready-queue handler: what was read to the protocol, then the end or the next read.</summary>
    private void OnRead()
    {
        _scheduled = false;
        if (_lost || Lifecycle.IsClosing || _paused)
        {
            return;
        }

        if (_heldStart != _heldEnd)
        {
            int offset = 0;
            var data = new ReadOnlySpan<byte>(_buffer, _heldStart, _heldEnd - _heldStart);
            bool all = ReceiveDelivery.Deliver(this, _bufferedProtocol, _streamProtocol, data, ref offset);
            _heldStart += offset;
            if (!all && _heldStart != _heldEnd)
            {
                return; // paused (the rest waits for ResumeReading) or closing
            }

            _heldStart = _heldEnd = 0;
            if (_paused || Lifecycle.IsClosing)
            {
                return;
            }
        }

        if (_end == 0)
        {
            _end = 2;
            // As the readiness transport: EofReceived, then ConnectionLost(null), on the next iterations in that order.
            Loop.CallSoon(static t => t.CallEofReceived(), this);
            Lifecycle.ScheduleConnectionLost(null);
            return;
        }

        if (_end < 0)
        {
            int errno = -_end;
            _end = 2;
            Lifecycle.FatalError(Interop.GetExceptionForErrno(errno, $"read(fd {Fd})", source: Interop.ErrnoSource.File), "Fatal read error on pipe transport");
            return;
        }

        Arm();
    }

    private void CallEofReceived() => StreamProtocolKind.CallEofReceived(Loop, this, _bufferedProtocol, _streamProtocol);

    /// <summary>The fd is closing: the slot and the buffer go once the kernel holds no read.</summary>
    private void Release()
    {
        if (_armed)
        {
            return;
        }

        if (_read.Index >= 0)
        {
            _uring.Uring.UnregisterOperation(_read.Index);
            _read.Index = -1;
        }

        _heldStart = _heldEnd = 0;
        ReturnBuffer();
    }

    private void ReturnBuffer()
    {
        if (_buffer is { } buffer && !_armed)
        {
            _buffer = null;
            _uring.SendBuffers.Return(buffer);
        }
    }

    /// <summary>The read, as the selector sees it.</summary>
    private sealed class ReadOperation(IoUringReadPipeTransport transport) : IIoUringOperation
    {
        public int Index = -1;

        public void OnCompletion(int result, uint flags) => transport.OnCompletion(result);
    }
}
