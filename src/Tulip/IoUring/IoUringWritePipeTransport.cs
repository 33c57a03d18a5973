using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Extensions.Logging;
using Tulip.Diagnostics;
using Tulip.IoUring;
using Tulip.Selectors;

namespace Tulip;

/// <summary>
/// The write end of a pipe or FIFO on the <see cref="IoUringEventLoop"/>, driven by completions (issue 14):
/// <see cref="Write"/> writes at once (write(2)) when nothing is pending, as every loop does, and what the
/// pipe refuses goes out by one <c>IORING_OP_WRITE</c> at a time from a pinned array
/// (<see cref="PinnedBufferPool"/>), submitted with the loop's next wait; data written meanwhile waits in
/// a second array and goes as one write when the first completes.
/// </summary>
/// <remarks>
/// The reader going away: a one-shot <c>POLL_ADD</c> on the transport's own fd, which a pipe's write end
/// reports as an error once no reader is left; the transport then ends with ConnectionLost(null), or with
/// an EPIPE <see cref="IOException"/> if data was still buffered, as the readiness transport and asyncio.
/// A write that fails with EPIPE first ends the same way. Before the fd is closed the write and the poll
/// are cancelled and the cancels submitted, so the kernel holds the file no longer than the transport
/// does (a reader sees EOF when the transport closes); arrays the kernel may still read stay until the
/// write's completion. Loop thread only.
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed class IoUringWritePipeTransport : PipeTransport, IWriteTransport
{
    private const uint POLLIN = 0x001;

    private readonly IoUringEventLoop _uring;
    private readonly WriteOperation _write;
    private readonly PeerOperation _peer;
    private readonly StateHandle<IoUringWritePipeTransport> _writeHandle;
    private readonly StateHandle<IoUringWritePipeTransport> _peerHandle;
    private readonly WriteFlowControl _flow;

    private readonly RingWriteBuffers _out; // what is being written (one ring write) and what is written behind it
    private bool _writeArmed;       // a write is under way: in the kernel, or its completion not handled yet
    private int _writeResult;

    private bool _peerArmed;        // the reader-gone poll is in the kernel
    private bool _peerCancelled;
    private bool _eof;              // WriteEof was called: a later Write is an error
    private bool _lost;             // the fd is being closed: completions only release what they held

    internal IoUringWritePipeTransport(IoUringEventLoop loop, PipeFd pipe, IBaseProtocol protocol, Future<VoidResult> waiter)
        : base(loop, pipe, protocol, waiter, "pipe write dropped: the transport is closed.")
    {
        _uring = loop;
        _write = new WriteOperation(this);
        _peer = new PeerOperation(this);
        _out = new RingWriteBuffers(loop.SendBuffers);
        _writeHandle = new StateHandle<IoUringWritePipeTransport>(loop, static t => t.OnWritten(), this);
        _peerHandle = new StateHandle<IoUringWritePipeTransport>(loop, static t => t.OnPeerClosed(), this);
        _flow = new WriteFlowControl(loop, this);
        _write.Index = loop.Uring.RegisterOperation(_write);
        _peer.Index = loop.Uring.RegisterOperation(_peer);
        loop.ClaimFd(Fd, this);
    }

    /// <inheritdoc/>
    public bool CanWriteEof => true;

    private bool HasPendingWrites => _writeArmed || _out.HasGathered;

    /// <inheritdoc/>
    protected override void OnStarted()
    {
        ref IoUringSqe sqe = ref _uring.Uring.GetSqe();
        sqe.Opcode = Interop.IoUring.OP_POLL_ADD;
        sqe.Fd = Fd;
        // A write end is never readable: the poll fires with POLLERR when the last reader closes.
        sqe.OpFlags = POLLIN;
        sqe.UserData = IoUringSelector.OperationUserData(_peer.Index);
        _peerArmed = true;
        _uring.OperationsInKernel++;
        _uring.PipeOperationsSubmitted++;
    }

    /// <inheritdoc/>
    /// <remarks>Nothing: the peer stays watched while the buffer drains, so a reader that leaves meanwhile is seen.</remarks>
    protected override void OnClosing()
    {
    }

    /// <inheritdoc/>
    /// <remarks>The write (an abort's) and the poll are withdrawn and the cancels submitted now; once the fd is to be closed, the slots and arrays go when the kernel let go of them.</remarks>
    protected override void Unwatch()
    {
        if (_out.InKernel)
        {
            QueueCancel(_write.Index);
        }

        if (_peerArmed && !_peerCancelled)
        {
            _peerCancelled = true;
            QueueCancel(_peer.Index);
        }

        _uring.Uring.SubmitAll();
        if (Lifecycle.IsClosed && !_lost)
        {
            _lost = true;
            _uring.SetReader(Fd, null, cancelReplaced: false); // ends the claim
            Release();
        }
    }

    /// <inheritdoc/>
    protected override void DropBuffer() => _out.Drop();

    /// <inheritdoc/>
    /// <remarks>Buffered data is still written first; then the pipe closes (asyncio's close is its write_eof).</remarks>
    public override void Close() => Lifecycle.Close(HasPendingWrites);

    /// <inheritdoc/>
    /// <remarks>A pipe cannot half-close: this closes it once the buffer is written, as <see cref="Close"/>, and a later <see cref="Write"/> throws.</remarks>
    public void WriteEof()
    {
        _eof = true;
        Close();
    }

    /// <inheritdoc/>
    public void Abort() => Lifecycle.Abort();

    /// <inheritdoc/>
    public void Write(ReadOnlySpan<byte> data)
    {
        if (_eof)
        {
            throw new InvalidOperationException("Cannot call Write() after WriteEof(): the pipe is closing.");
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
            // Nothing pending: write at once, and queue only what the pipe refuses.
            int n = WriteNow(data);
            if (n < 0 || n == data.Length)
            {
                return;
            }

            data = data.Slice(n);
        }

        _out.Append(data);
        StartWrite();
        _flow.MaybePause(GetWriteBufferSize());
    }

    /// <inheritdoc/>
    /// <remarks>The buffers are gathered into one pinned array; with nothing pending it goes out in one write(2), and only what the pipe refuses is queued.</remarks>
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

        int n = WriteNow(_out.Gathered);
        if (n >= 0 && _out.Promote(n)) // n < 0: a fatal error dropped the buffer
        {
            SubmitWrite();
            _flow.MaybePause(GetWriteBufferSize());
        }
    }

    /// <summary>write(2) now: bytes taken (0 when the pipe is full), or -1 after a fatal error.</summary>
    private unsafe int WriteNow(ReadOnlySpan<byte> data)
    {
        nint n;
        fixed (byte* p = data)
        {
            n = Interop.Write(Fd, p, (nuint)data.Length);
        }

        if (n >= 0)
        {
            return (int)n;
        }

        int errno = Interop.GetLastErrno();
        if (errno is Interop.Errno.EAGAIN or Interop.Errno.EINTR)
        {
            return 0;
        }

        Lifecycle.FatalError(Interop.GetExceptionForErrno(errno, $"write(fd {Fd})", source: Interop.ErrnoSource.File), "Fatal write error on pipe transport");
        return -1;
    }

    /// <summary>The buffer becomes the one in flight, when no write is.</summary>
    private void StartWrite()
    {
        if (_writeArmed || !_out.HasGathered || _lost)
        {
            return;
        }

        _out.Promote();
        SubmitWrite();
    }

    private void SubmitWrite()
    {
        ref IoUringSqe sqe = ref _uring.Uring.GetSqe();
        sqe.Opcode = Interop.IoUring.OP_WRITE;
        sqe.Fd = Fd;
        // A pinned array (PinnedBufferPool): its address holds until the write's completion.
        sqe.Addr = _out.InFlightAddress;
        sqe.Len = (uint)_out.InFlight;
        sqe.Off = ulong.MaxValue; // the file position: a pipe has none
        sqe.UserData = IoUringSelector.OperationUserData(_write.Index);
        _writeArmed = true;
        _out.InKernel = true;
        _uring.OperationsInKernel++;
        _uring.PipeOperationsSubmitted++;
    }

    /// <summary>The write's completion, inside the wait: recorded, handled on the ready queue.</summary>
    private void OnWriteCompletion(int result)
    {
        _out.InKernel = false;
        _uring.OperationsInKernel--;
        if (_lost)
        {
            _writeArmed = false;
            Release();
            return;
        }

        _writeResult = result;
        _uring.Schedule(_writeHandle);
    }

    private void OnWritten()
    {
        _writeArmed = false;
        if (_lost || Lifecycle.IsConnectionLost)
        {
            _out.ReturnSending();
            return;
        }

        int result = _writeResult;
        if (result < 0)
        {
            if (result == -Interop.Errno.EAGAIN)
            {
                // Not expected from a pipe (the kernel waits for room itself), but harmless: again.
                SubmitWrite();
                return;
            }

            Lifecycle.FatalError(Interop.GetExceptionForErrno(-result, $"write(fd {Fd})", source: Interop.ErrnoSource.File), "Fatal write error on pipe transport");
            return;
        }

        // As the socket transport: the next write starts before the protocol hears of the room, so a
        // protocol that writes from ResumeWriting finds a write pending and buffers behind it.
        if (_out.Advance(result))
        {
            SubmitWrite();
            _flow.MaybeResume(GetWriteBufferSize());
            return;
        }

        _out.ReturnSending();
        if (_out.HasGathered)
        {
            StartWrite();
            _flow.MaybeResume(GetWriteBufferSize());
            return;
        }

        // ResumeWriting may write again and then Close: the close then waits for what it buffered.
        _flow.MaybeResume(0);
        if (Lifecycle.IsClosing && !HasPendingWrites && !Lifecycle.IsConnectionLost)
        {
            Lifecycle.ScheduleConnectionLost(null);
        }
    }

    private void QueueCancel(int index)
    {
        ref IoUringSqe sqe = ref _uring.Uring.GetSqe();
        sqe.Opcode = Interop.IoUring.OP_ASYNC_CANCEL;
        sqe.Fd = -1;
        sqe.Addr = IoUringSelector.OperationUserData(index);
        sqe.UserData = IoUringSelector.CancelTag;
    }

    /// <summary>The reader-gone poll's completion, inside the wait.</summary>
    private void OnPeerCompletion(int result)
    {
        _peerArmed = false;
        _uring.OperationsInKernel--;
        if (_lost)
        {
            Release();
            return;
        }

        if (result != -Interop.ECANCELED && !Lifecycle.IsConnectionLost)
        {
            _uring.Schedule(_peerHandle);
        }
    }

    /// <summary>The fd reported an error or hang-up: the reader has gone away.</summary>
    private void OnPeerClosed()
    {
        if (_lost || Lifecycle.IsConnectionLost)
        {
            return;
        }

        if (Loop.Debug && Loop is BaseEventLoop { Logger: var logger } && logger.IsEnabled(LogLevel.Debug))
        {
            Log.WritePipeClosedByPeer(logger, this);
        }

        if (HasPendingWrites && GetWriteBufferSize() > 0)
        {
            int unsent = GetWriteBufferSize();
            Lifecycle.ForceClose(new IOException(
                $"write(fd {Fd}) failed: broken pipe: the reading end is closed, {unsent} bytes were not written (EPIPE, errno {Interop.Errno.EPIPE})",
                Interop.Errno.EPIPE));
        }
        else
        {
            Lifecycle.ForceClose(null);
        }
    }

    /// <summary>The fd is closing: each slot (and the array in flight) goes once the kernel holds its operation no more.</summary>
    private void Release()
    {
        if (!_out.InKernel && _write.Index >= 0)
        {
            _uring.Uring.UnregisterOperation(_write.Index);
            _write.Index = -1;
            _out.ReturnSending();
        }

        if (!_peerArmed && _peer.Index >= 0)
        {
            _uring.Uring.UnregisterOperation(_peer.Index);
            _peer.Index = -1;
        }
    }

    /// <inheritdoc/>
    public int GetWriteBufferSize() => _out.Count;

    /// <inheritdoc/>
    public (int Low, int High) GetWriteBufferLimits() => _flow.Limits;

    /// <inheritdoc/>
    public void SetWriteBufferLimits(int? high = null, int? low = null) => _flow.SetLimits(high, low, GetWriteBufferSize());

    /// <summary>The write in flight, as the selector sees it.</summary>
    private sealed class WriteOperation(IoUringWritePipeTransport transport) : IIoUringOperation
    {
        public int Index = -1;

        public void OnCompletion(int result, uint flags) => transport.OnWriteCompletion(result);
    }

    /// <summary>The reader-gone poll, as the selector sees it.</summary>
    private sealed class PeerOperation(IoUringWritePipeTransport transport) : IIoUringOperation
    {
        public int Index = -1;

        public void OnCompletion(int result, uint flags) => transport.OnPeerCompletion(result);
    }
}
