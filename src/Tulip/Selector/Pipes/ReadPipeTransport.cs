using System;
using System.Buffers;
using System.Runtime.Versioning;

namespace Tulip;

/// <summary>
/// The read end of a pipe (or FIFO, character device, socket) on an <see cref="IReadinessEventLoop"/>:
/// asyncio's <c>_UnixReadPipeTransport</c>. One read(2) per readiness event; at the end of the data,
/// <c>EofReceived</c> then <c>ConnectionLost(null)</c> (its return value is ignored: a pipe has no
/// write side to keep open).
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class ReadPipeTransport : PipeTransport, IReadTransport
{
    /// <summary>Bytes per read(2): a Linux pipe holds 64 KiB by default, so one read empties it.</summary>
    private const int MaxReadSize = 64 * 1024;

    private readonly Handle _readHandle;
    private IProtocol? _streamProtocol;
    private IBufferedProtocol? _bufferedProtocol;
    private bool _paused;

    internal ReadPipeTransport(IReadinessEventLoop loop, PipeFd pipe, IBaseProtocol protocol, Future<VoidResult> waiter)
        : base(loop, pipe, protocol, waiter, "pipe read transport: the transport is closed.")
    {
        _readHandle = loop.CreateIoHandle(static t => t.OnReadable(), this);
        OnProtocolSet(protocol);
    }

    /// <inheritdoc/>
    public bool IsReading => !_paused && !Lifecycle.IsClosing;

    /// <summary>Throws unless <paramref name="protocol"/> can receive data.</summary>
    internal static void CheckReadProtocol(IBaseProtocol protocol) => PipeHandleProbe.CheckReadProtocol(protocol);

    /// <inheritdoc/>
    protected override void CheckProtocol(IBaseProtocol protocol) => CheckReadProtocol(protocol);

    /// <inheritdoc/>
    protected override void OnProtocolSet(IBaseProtocol protocol)
    {
        _bufferedProtocol = protocol as IBufferedProtocol;
        _streamProtocol = _bufferedProtocol is null ? protocol as IProtocol : null;
    }

    /// <inheritdoc/>
    protected override void OnStarted()
    {
        if (!_paused)
        {
            SetReader(_readHandle);
        }
    }

    /// <inheritdoc/>
    protected override void OnClosing() => SetReader(null);

    /// <inheritdoc/>
    protected override void Unwatch() => SetReader(null);

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
        SetReader(null);
    }

    /// <inheritdoc/>
    public void ResumeReading()
    {
        if (Lifecycle.IsClosing || !_paused)
        {
            return;
        }

        _paused = false;
        if (Lifecycle.IsStarted)
        {
            SetReader(_readHandle);
        }
    }

    private unsafe void OnReadable()
    {
        if (Lifecycle.IsClosing || _paused)
        {
            return;
        }

        byte[]? rented = null;
        Memory<byte> target;
        if (_bufferedProtocol is { } buffered)
        {
            try
            {
                target = buffered.GetBuffer(-1);
                if (target.IsEmpty)
                {
                    throw new InvalidOperationException("IBufferedProtocol.GetBuffer() returned an empty buffer.");
                }
            }
            catch (Exception ex)
            {
                Lifecycle.FatalError(ex, "Fatal error: protocol.GetBuffer() call failed.");
                return;
            }
        }
        else
        {
            rented = ArrayPool<byte>.Shared.Rent(MaxReadSize);
            target = rented;
        }

        try
        {
            nint n;
            using (var pin = target.Pin())
            {
                n = Interop.Read(Fd, (byte*)pin.Pointer, (nuint)target.Length);
            }

            if (n < 0)
            {
                int errno = Interop.GetLastErrno();
                if (errno is not (Interop.Errno.EAGAIN or Interop.Errno.EINTR))
                {
                    Lifecycle.FatalError(Interop.GetExceptionForErrno(errno, $"read(fd {Fd})", source: Interop.ErrnoSource.File), "Fatal read error on pipe transport");
                }

                return;
            }

            if (n == 0)
            {
                ReadEof();
                return;
            }

            try
            {
                if (_bufferedProtocol is { } b)
                {
                    b.BufferUpdated((int)n);
                }
                else
                {
                    _streamProtocol!.DataReceived(target.Span.Slice(0, (int)n));
                }
            }
            catch (Exception ex)
            {
                Lifecycle.FatalError(ex, "Fatal error: protocol.DataReceived() call failed.");
            }
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private void ReadEof()
    {
        // The writer closed its end. As asyncio: stop watching (level-triggered readiness would spin),
        // then EofReceived and ConnectionLost(null) on the next iterations, in that order.
        SetReader(null);
        Loop.CallSoon(static t => t.CallEofReceived(), this);
        Lifecycle.ScheduleConnectionLost(null);
    }

    private void CallEofReceived() => StreamProtocolKind.CallEofReceived(Loop, this, _bufferedProtocol, _streamProtocol);
}
