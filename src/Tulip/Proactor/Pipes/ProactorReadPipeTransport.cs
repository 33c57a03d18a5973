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
internal sealed class ProactorReadPipeTransport : ProactorPipeTransport, IReadTransport
{
    /// <summary>Bytes per read: a Linux pipe holds 64 KiB by default, so one read empties it (as the selector's).</summary>
    private const int ReadSize = 64 * 1024;

    private readonly ProactorOperation _recv;
    private IProtocol? _streamProtocol;
    private IBufferedProtocol? _bufferedProtocol;
    private byte[]? _readBuffer;   // rented at the first read, returned once no read is in flight after the close
    private bool _paused;          // PauseReading was called
    private bool _held;            // a read completed while paused: delivered on resume

    internal ProactorReadPipeTransport(ProactorEventLoop loop, ProactorPipeTransportFactory factory, SafeHandle handle, IDisposable? owner,
        PipeHandleInfo info, IBaseProtocol protocol, Future<VoidResult> waiter)
        : base(loop, factory, handle, owner, info, protocol, waiter, "pipe read transport: the transport is closed.")
    {
        _recv = new ProactorOperation(loop, loop.MakeCompletionHandle(static t => t.OnReadCompleted(), this));
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
            _held = false;
            _recv.Pending = true;
            _recv.CompletedSynchronously(); // deliver the held data on the next iteration, not inside this call
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

        if (_paused)
        {
            _held = true;
            return;
        }

        if (_recv.SocketError != SocketError.Success)
        {
            Lifecycle.FatalError(PipeError(_recv.SocketError, $"read(fd {Fd})"), "Fatal read error on pipe transport");
            return;
        }

        int n = _recv.BytesTransferred;
        if (n == 0)
        {
            ReadEof();
            return;
        }

        try
        {
            if (_bufferedProtocol is { } buffered)
            {
                if (!DeliverBuffered(buffered, n))
                {
                    return;
                }
            }
            else
            {
                _streamProtocol!.DataReceived(new ReadOnlySpan<byte>(_readBuffer, 0, n));
            }
        }
        catch (Exception ex)
        {
            Lifecycle.FatalError(ex, _bufferedProtocol is null
                ? "Fatal error: protocol.DataReceived() call failed."
                : "Fatal error: protocol.BufferUpdated() call failed.");
            return;
        }

        StartRead();
    }

    /// <summary>Copies <paramref name="n"/> read bytes into the protocol's buffers (GetBuffer, BufferUpdated) as many times as it takes.</summary>
    private bool DeliverBuffered(IBufferedProtocol protocol, int n)
    {
        int offset = 0;
        while (offset < n)
        {
            Memory<byte> memory;
            try
            {
                memory = protocol.GetBuffer(n - offset);
                if (memory.IsEmpty)
                {
                    throw new InvalidOperationException("IBufferedProtocol.GetBuffer() returned an empty buffer.");
                }
            }
            catch (Exception ex)
            {
                Lifecycle.FatalError(ex, "Fatal error: protocol.GetBuffer() call failed.");
                return false;
            }

            int count = Math.Min(memory.Length, n - offset);
            _readBuffer.AsSpan(offset, count).CopyTo(memory.Span);
            offset += count;
            protocol.BufferUpdated(count);
            if (Lifecycle.IsClosing)
            {
                return false;
            }
        }

        return true;
    }

    private void ReadEof()
    {
        // The writer closed its end. As the selector's (and asyncio's): EofReceived, then
        // ConnectionLost(null), on the next iterations, in that order; no read is started again.
        Loop.CallSoon(static t => t.CallEofReceived(), this);
        Lifecycle.ScheduleConnectionLost(null);
    }

    private void CallEofReceived()
    {
        try
        {
            if (_bufferedProtocol is { } buffered)
            {
                _ = buffered.EofReceived();
            }
            else
            {
                _ = _streamProtocol!.EofReceived();
            }
        }
        catch (Exception ex)
        {
            Loop.CallExceptionHandler(new ExceptionContext("Exception in protocol.EofReceived()") { Exception = ex, Transport = this, Protocol = Protocol });
        }
    }

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
