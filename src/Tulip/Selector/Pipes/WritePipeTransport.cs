using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO;
using Microsoft.Extensions.Logging;
using System.Runtime.Versioning;
using Tulip.Diagnostics;

namespace Tulip;

/// <summary>
/// The write end of a pipe (or FIFO, character device, socket) on an <see cref="IReadinessEventLoop"/>:
/// asyncio's <c>_UnixWritePipeTransport</c>. <see cref="Write"/> tries the fd first and buffers only
/// what it refuses; the writer is registered only while there is a backlog.
/// </summary>
/// <remarks>
/// The far end going away: for a pipe, FIFO or socket the transport watches its own fd for
/// readability, which the kernel reports (as an error or hang-up on a pipe, as EOF on a socket)
/// when the reader has closed; as asyncio, the transport then ends with ConnectionLost(null), or
/// with an EPIPE <see cref="IOException"/> if data was still buffered. A write that fails with
/// EPIPE first ends the same way. .NET ignores SIGPIPE, so the process is never killed by it.
/// Caveat shared with asyncio: data arriving on a bidirectional socket used as a write pipe reads
/// as the peer closing.
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed class WritePipeTransport : PipeTransport, IWriteTransport
{
    private readonly Handle _writeHandle;
    private readonly Handle _peerClosedHandle;
    private readonly bool _watchPeer;

    // The write backlog: bytes [_bufStart, _bufEnd) of a pooled array; null when empty.
    private byte[]? _buffer;
    private int _bufStart;
    private int _bufEnd;

    private readonly WriteFlowControl _flow;
    private bool _eof;              // WriteEof was called: a later Write is an error

    internal WritePipeTransport(IReadinessEventLoop loop, PipeFd pipe, IBaseProtocol protocol, Future<VoidResult> waiter)
        : base(loop, pipe, protocol, waiter, "pipe write dropped: the transport is closed.")
    {
        _writeHandle = loop.CreateIoHandle(static t => t.OnWritable(), this);
        _peerClosedHandle = loop.CreateIoHandle(static t => t.OnPeerClosed(), this);
        _flow = new WriteFlowControl(loop, this);
        // A character device (a terminal) reports readability when it has input, not when a reader
        // leaves: only pipes, FIFOs and sockets are watched (asyncio's rule).
        _watchPeer = pipe.FileType is Interop.S_IFIFO or Interop.S_IFSOCK;
    }

    /// <inheritdoc/>
    public bool CanWriteEof => true;

    /// <inheritdoc/>
    protected override void OnStarted()
    {
        if (_watchPeer)
        {
            SetReader(_peerClosedHandle);
        }
    }

    /// <inheritdoc/>
    /// <remarks>Nothing: the peer stays watched while the buffer drains, so a reader that leaves meanwhile is seen.</remarks>
    protected override void OnClosing()
    {
    }

    /// <inheritdoc/>
    protected override void Unwatch()
    {
        SetReader(null);
        SetWriter(null);
    }

    /// <inheritdoc/>
    protected override void DropBuffer() => WriteBacklog.Release(ref _buffer, ref _bufStart, ref _bufEnd);

    /// <inheritdoc/>
    /// <remarks>Buffered data is still written first; then the pipe closes (asyncio's close is its write_eof).</remarks>
    public override void Close() => CloseAfterFlush();

    /// <inheritdoc/>
    /// <remarks>A pipe cannot half-close: this closes it once the buffer is written, as <see cref="Close"/>,
    /// and a later <see cref="Write"/> throws.</remarks>
    public void WriteEof()
    {
        _eof = true;
        CloseAfterFlush();
    }

    /// <inheritdoc/>
    public void Abort() => Lifecycle.Abort();

    private void CloseAfterFlush() => Lifecycle.Close(hasPendingWrites: _buffer is not null);

    // ---- Writing -------------------------------------------------------------------------

    /// <inheritdoc/>
    public unsafe void Write(ReadOnlySpan<byte> data)
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

        if (_buffer is null)
        {
            // Nothing pending: try the fd first, and buffer only what it refuses.
            nint n;
            fixed (byte* p = data)
            {
                n = Interop.Write(Fd, p, (nuint)data.Length);
            }

            if (n < 0)
            {
                int errno = Interop.GetLastErrno();
                if (errno is not (Interop.Errno.EAGAIN or Interop.Errno.EINTR))
                {
                    Lifecycle.FatalError(Interop.GetExceptionForErrno(errno, $"write(fd {Fd})", source: Interop.ErrnoSource.File), "Fatal write error on pipe transport");
                    return;
                }

                n = 0;
            }

            if (n == data.Length)
            {
                return;
            }

            Append(data.Slice((int)n));
            SetWriter(_writeHandle);
        }
        else
        {
            Append(data);
        }

        MaybePauseProtocol();
    }

    /// <inheritdoc/>
    /// <remarks>With nothing pending, the buffers go out in one writev(2) (per IOV_MAX of them), and
    /// only what the pipe refuses is buffered; behind a backlog they are buffered in order.</remarks>
    public void WriteLines(IEnumerable<ReadOnlyMemory<byte>> data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (_eof || _buffer is not null || Lifecycle.IsClosing)
        {
            // Behind a backlog (or after the end) the buffers queue, or are refused, exactly as separate writes.
            foreach (var chunk in data)
            {
                Write(chunk.Span);
            }

            return;
        }

        var chunks = ArrayPool<ReadOnlyMemory<byte>>.Shared.Rent(16);
        int count = 0;
        try
        {
            foreach (var chunk in data)
            {
                if (chunk.IsEmpty)
                {
                    continue;
                }

                if (count == chunks.Length)
                {
                    var bigger = ArrayPool<ReadOnlyMemory<byte>>.Shared.Rent(count * 2);
                    chunks.AsSpan(0, count).CopyTo(bigger);
                    chunks.AsSpan(0, count).Clear();
                    ArrayPool<ReadOnlyMemory<byte>>.Shared.Return(chunks);
                    chunks = bigger;
                }

                chunks[count++] = chunk;
            }

            WriteGathered(chunks.AsSpan(0, count));
        }
        finally
        {
            chunks.AsSpan(0, count).Clear(); // drop the references before the array goes back to the pool
            ArrayPool<ReadOnlyMemory<byte>>.Shared.Return(chunks);
        }
    }

    /// <summary>writev(2) with nothing pending: what the pipe takes is done, the rest (in order) is buffered.</summary>
    private unsafe void WriteGathered(ReadOnlySpan<ReadOnlyMemory<byte>> chunks)
    {
        int next = 0;
        while (next < chunks.Length)
        {
            int batch = Math.Min(chunks.Length - next, Interop.IOV_MAX);
            var pins = ArrayPool<MemoryHandle>.Shared.Rent(batch);
            var iov = ArrayPool<Interop.IoVec>.Shared.Rent(batch);
            long total = 0;
            nint n;
            try
            {
                for (int k = 0; k < batch; k++)
                {
                    var chunk = chunks[next + k];
                    pins[k] = chunk.Pin();
                    iov[k] = new Interop.IoVec { Base = pins[k].Pointer, Length = (nuint)chunk.Length };
                    total += chunk.Length;
                }

                fixed (Interop.IoVec* vectors = iov)
                {
                    n = Interop.Writev(Fd, vectors, batch);
                }
            }
            finally
            {
                for (int k = 0; k < batch; k++)
                {
                    pins[k].Dispose();
                }

                ArrayPool<MemoryHandle>.Shared.Return(pins, clearArray: true);
                ArrayPool<Interop.IoVec>.Shared.Return(iov);
            }

            if (n < 0)
            {
                int errno = Interop.GetLastErrno();
                if (errno is not (Interop.Errno.EAGAIN or Interop.Errno.EINTR))
                {
                    Lifecycle.FatalError(Interop.GetExceptionForErrno(errno, $"writev(fd {Fd})", source: Interop.ErrnoSource.File), "Fatal write error on pipe transport");
                    return;
                }

                n = 0;
            }

            if (n == total)
            {
                next += batch;
                continue;
            }

            // The pipe is full: skip what it took, buffer the rest of this chunk and every later one.
            long written = n;
            while (written >= chunks[next].Length)
            {
                written -= chunks[next].Length;
                next++;
            }

            Append(chunks[next].Span.Slice((int)written));
            for (next++; next < chunks.Length; next++)
            {
                Append(chunks[next].Span);
            }

            SetWriter(_writeHandle);
            MaybePauseProtocol();
            return;
        }
    }

    /// <inheritdoc/>
    public int GetWriteBufferSize() => _bufEnd - _bufStart;

    /// <inheritdoc/>
    public (int Low, int High) GetWriteBufferLimits() => _flow.Limits;

    /// <inheritdoc/>
    public void SetWriteBufferLimits(int? high = null, int? low = null) => _flow.SetLimits(high, low, GetWriteBufferSize());

    private unsafe void OnWritable()
    {
        if (_buffer is null || Lifecycle.IsConnectionLost)
        {
            SetWriter(null);
            return;
        }

        nint n;
        fixed (byte* p = &_buffer[_bufStart])
        {
            n = Interop.Write(Fd, p, (nuint)(_bufEnd - _bufStart));
        }

        if (n < 0)
        {
            int errno = Interop.GetLastErrno();
            if (errno is Interop.Errno.EAGAIN or Interop.Errno.EINTR)
            {
                return;
            }

            Lifecycle.FatalError(Interop.GetExceptionForErrno(errno, $"write(fd {Fd})", source: Interop.ErrnoSource.File), "Fatal write error on pipe transport");
            return;
        }

        _bufStart += (int)n;
        if (_bufStart < _bufEnd)
        {
            MaybeResumeProtocol();
            return;
        }

        DropBuffer();
        SetWriter(null);
        // ResumeWriting may write again and then Close: the close then waits for what it buffered.
        MaybeResumeProtocol();
        if (Lifecycle.IsClosing && _buffer is null && !Lifecycle.IsConnectionLost)
        {
            Lifecycle.ScheduleConnectionLost(null);
        }
    }

    /// <summary>The fd turned readable (or reported an error): the reader has gone away.</summary>
    private void OnPeerClosed()
    {
        if (Loop.Debug && Loop is BaseEventLoop { Logger: var logger } && logger.IsEnabled(LogLevel.Debug))
        {
            Log.WritePipeClosedByPeer(logger, this);
        }

        if (_buffer is not null)
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

    private void Append(ReadOnlySpan<byte> data) => WriteBacklog.Append(ref _buffer, ref _bufStart, ref _bufEnd, data);

    private void MaybePauseProtocol() => _flow.MaybePause(GetWriteBufferSize());

    private void MaybeResumeProtocol() => _flow.MaybeResume(GetWriteBufferSize());
}
