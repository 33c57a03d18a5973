using System;
using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Tulip;

/// <summary>
/// The read end of a pipe (or FIFO, character device, socket) on a <see cref="ProactorEventLoop"/>:
/// asyncio's <c>_ProactorReadPipeTransport</c>. One read outstanding at a time, on a reusable
/// operation into a pooled buffer of the transport's, completed on the loop thread; at the end of the
/// data, <c>EofReceived</c> then <c>ConnectionLost(null)</c>, as on the selector loop.
/// </summary>
/// <remarks>
/// <see cref="PauseReading"/> leaves the read in flight: data it completes with is held, and delivered
/// on the iteration after <see cref="ResumeReading"/>. <see cref="Close"/> with a read in flight
/// disposes the socket after ConnectionLost, which aborts the read; its completion then only gives
/// the buffer back. A buffered protocol is filled from the transport's buffer at delivery (a held read
/// would otherwise have written into a <c>GetBuffer()</c> region gone stale), so steady reading
/// allocates nothing either way.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification =
    "The operation is disposed when the fd is closed, or by its own completion if it is in flight then; a transport is not disposed, it is closed.")]
internal sealed class ProactorReadPipeTransport : ProactorPipeTransport, IReadTransport, IReceiveOwner
{
    /// <summary>Bytes per read: a Linux pipe holds 64 KiB by default, so one read empties it (as the selector's).</summary>
    private const int ReadSize = 64 * 1024;

    private readonly ProactorOperation _recv;
    private IProtocol? _streamProtocol;
    private IBufferedProtocol? _bufferedProtocol;
    private byte[]? _readBuffer;   // rented at the first read, returned once no read is in flight after the close
    private bool _paused;          // PauseReading was called
    // A completed read not yet handed on in full (ReceiveDelivery): while set, no other read starts, so the
    // buffer is never written under the protocol; paused meanwhile, the rest (from _heldOffset) goes on resume.
    private bool _held;
    private int _heldOffset;
    private bool _deliverScheduled; // _deliverHeld is queued on the loop
    private readonly Handle _deliverHeld;

    internal ProactorReadPipeTransport(ProactorEventLoop loop, ProactorPipeTransportFactory factory, SafeHandle handle, IDisposable? owner,
        PipeHandleInfo info, IBaseProtocol protocol, Future<VoidResult> waiter)
        : base(loop, factory, handle, owner, info, protocol, waiter, "pipe read transport: the transport is closed.")
    {
        _recv = new ProactorOperation(loop, loop.MakeCompletionHandle(static t => t.OnReadCompleted(), this));
        _deliverHeld = loop.MakeCompletionHandle(static t => t.OnDeliverHeld(), this);
        OnProtocolSet(protocol);
    }

    /// <inheritdoc/>
    public bool IsReading => !_paused && !Lifecycle.IsClosing;

    /// <inheritdoc/>
    protected override void CheckProtocol(IBaseProtocol protocol) => PipeHandleProbe.CheckReadProtocol(protocol);

    /// <inheritdoc/>
    protected override void OnProtocolSet(IBaseProtocol protocol)
    {
        _bufferedProtocol = protocol as IBufferedProtocol;
        _streamProtocol = _bufferedProtocol is null ? protocol as IProtocol : null;
    }

    /// <inheritdoc/>
    protected override void OnStarted() => StartRead();

    /// <inheritdoc/>
    protected override void OnForceClose() => _held = false;

    /// <inheritdoc/>
    protected override void OnChannelClosed()
    {
        if (!_recv.Pending)
        {
            ReleaseRead();
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

        // A read in flight stays: what it brings is held until ResumeReading.
        _paused = true;
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

        if (_held)
        {
            // What is held goes on on the next iteration, not inside this call (asyncio's call_soon).
            if (!_deliverScheduled)
            {
                _deliverScheduled = true;
                Loop.ScheduleCompletion(_deliverHeld);
            }
        }
        else
        {
            StartRead();
        }
    }

    private void StartRead()
    {
        if (_recv.Pending || _held || _paused || Lifecycle.IsClosing || ChannelClosed)
        {
            return;
        }

        try
        {
            if (_readBuffer is null)
            {
                _readBuffer = ArrayPool<byte>.Shared.Rent(ReadSize);
                _recv.SetBuffer(_readBuffer, 0, ReadSize);
            }

            _recv.Pending = true;
            if (!Channel.ReceiveAsync(_recv))
            {
                _recv.CompletedSynchronously();
            }
        }
        catch (Exception ex)
        {
            // The runtime refused to start it (the fd is of a kind it cannot wait on, say): an OS error.
            _recv.Pending = false;
            Lifecycle.FatalError(PipeError(ex, $"read(fd {Fd})"), "Fatal read error on pipe transport");
        }
    }

    private void OnReadCompleted()
    {
        _recv.Pending = false;
        if (Lifecycle.IsConnectionLost)
        {
            // Closed meanwhile: what the read brought is dropped, never delivered after ConnectionLost.
            if (ChannelClosed)
            {
                ReleaseRead();
            }

            return;
        }

        _held = true;
        _heldOffset = 0;
        DeliverHeld();
    }

    private void OnDeliverHeld()
    {
        _deliverScheduled = false;
        DeliverHeld();
    }

    /// <summary>Hands the held read on to the protocol, unless reading is paused; then reads on.</summary>
    private void DeliverHeld()
    {
        if (!_held || _paused || Lifecycle.IsClosing)
        {
            return;
        }

        if (_recv.SocketError != SocketError.Success)
        {
            _held = false;
            Lifecycle.FatalError(PipeError(_recv.SocketError, $"read(fd {Fd})"), "Fatal read error on pipe transport");
            return;
        }

        int n = _recv.BytesTransferred;
        if (n == 0)
        {
            _held = false;
            ReadEof();
            return;
        }

        if (!ReceiveDelivery.Deliver(this, _bufferedProtocol, _streamProtocol, _readBuffer!, ref _heldOffset, n))
        {
            // Paused mid-chunk (the rest stays held), closing, or failed (the transport is ending).
            if (Lifecycle.IsClosing)
            {
                _held = false;
            }

            return;
        }

        _held = false;
        StartRead();
    }

    bool IReceiveOwner.ReadingPaused => _paused;

    bool IReceiveOwner.DeliveryStopped => Lifecycle.IsClosing;

    void IReceiveOwner.DeliveryFailed(Exception error, string message)
    {
        _held = false;
        Lifecycle.FatalError(error, message);
    }

    private void ReadEof()
    {
        // The writer closed its end. As the selector's (and asyncio's): EofReceived, then
        // ConnectionLost(null), on the next iterations, in that order; no read is started again.
        Loop.CallSoon(static t => t.CallEofReceived(), this);
        Lifecycle.ScheduleConnectionLost(null);
    }

    private void CallEofReceived() => StreamProtocolKind.CallEofReceived(Loop, this, _bufferedProtocol, _streamProtocol);

    /// <summary>No read is in flight and the fd is closed: the buffer goes back to the pool, the operation is disposed.</summary>
    private void ReleaseRead()
    {
        if (_readBuffer is { } buffer)
        {
            _readBuffer = null;
            ArrayPool<byte>.Shared.Return(buffer);
        }

        _recv.Dispose();
    }
}
