using System;
using System.Buffers;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using System.Threading.Tasks.Sources;

namespace Tulip;

/// <summary>
/// The memory "BIO" between an <see cref="System.Net.Security.SslStream"/> and the transport beneath
/// a <see cref="SslProtocol"/> (asyncio's <c>ssl.MemoryBIO</c> pair): the stream reads the bytes the
/// transport delivered, and what it writes goes straight to the transport.
/// </summary>
/// <remarks>
/// <para>
/// It never blocks. A read with bytes on hand completes at once; one without parks its buffer and
/// completes, on the loop thread, when the transport delivers (<see cref="Commit"/>, <see cref="Feed"/>),
/// ends (<see cref="FeedEof"/>) or fails (<see cref="Fail"/>). The completion runs the stream's
/// continuation inline (no thread hop: the stream awaits with <c>ConfigureAwait(false)</c> and nothing
/// here asks for asynchronous continuations), so decrypting happens right where the bytes came in.
/// </para>
/// <para>
/// A zero-byte read (the stream's way of waiting for data without holding a buffer) completes once
/// there is data or the end, and consumes nothing. The incoming buffer is pooled and given back as
/// soon as it is empty, so an idle connection holds no receive buffer here.
/// </para>
/// <para>
/// <see cref="EofDelivered"/> tells a clean end from a truncation: the stream returns 0 both when the
/// peer's close_notify came and when the transport simply ended; only in the second case did a read
/// here return the end.
/// </para>
/// </remarks>
internal sealed class SslBio : Stream, IValueTaskSource<int>
{
    private const int MinimumBuffer = 16 * 1024 + 512;

    private readonly SslProtocol _owner;
    private byte[]? _in;
    private int _start;
    private int _end;
    private bool _eof;
    private Exception? _error;
    private ManualResetValueTaskSourceCore<int> _core;
    private Memory<byte> _pendingBuffer;
    private bool _readPending;
    private readonly object _gate = new();

    public SslBio(SslProtocol owner)
    {
        _owner = owner;
        _core.RunContinuationsAsynchronously = false;
    }

    /// <summary>True once a read here returned the end of the transport's data (not a zero-byte read).</summary>
    public bool EofDelivered { get; private set; }

    /// <summary>True once the transport's data ended.</summary>
    public bool EofReceived => _eof;

    /// <summary>Bytes received and not yet read by the stream.</summary>
    public int Buffered => _end - _start;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>Room for the transport to receive into (an <see cref="IBufferedProtocol"/>'s GetBuffer).</summary>
    public Memory<byte> GetBuffer(int sizeHint)
    {
        lock (_gate)
        {
            return GetBufferLocked(sizeHint);
        }
    }

    private Memory<byte> GetBufferLocked(int sizeHint)
    {
        int want = Math.Max(sizeHint, 4096);
        if (_in is null)
        {
            _in = ArrayPool<byte>.Shared.Rent(Math.Max(want, MinimumBuffer));
            _start = _end = 0;
        }
        else if (_in.Length - _end < want)
        {
            int pending = _end - _start;
            if (_in.Length - pending >= want)
            {
                Buffer.BlockCopy(_in, _start, _in, 0, pending);
            }
            else
            {
                var bigger = ArrayPool<byte>.Shared.Rent(pending + want);
                Buffer.BlockCopy(_in, _start, bigger, 0, pending);
                ArrayPool<byte>.Shared.Return(_in);
                _in = bigger;
            }

            _start = 0;
            _end = pending;
        }

        return _in.AsMemory(_end);
    }

    /// <summary>The transport wrote <paramref name="count"/> bytes into the last <see cref="GetBuffer"/>.</summary>
    public void Commit(int count)
    {
        lock (_gate)
        {
            if (count <= 0)
            {
                ReleaseIfEmpty();
                return;
            }

            _end += count;
        }

        CompletePending();
    }

    /// <summary>Adds received bytes (a plain protocol's DataReceived, or bytes read before the upgrade).</summary>
    public void Feed(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        lock (_gate)
        {
            data.CopyTo(GetBufferLocked(data.Length).Span);
            _end += data.Length;
        }

        CompletePending();
    }

    /// <summary>The transport's data ended (the peer's FIN).</summary>
    public void FeedEof()
    {
        lock (_gate)
        {
            _eof = true;
        }

        CompletePending();
    }

    /// <summary>The transport is gone: a pending read fails with <paramref name="error"/>, as do later ones.</summary>
    public void Fail(Exception error)
    {
        lock (_gate)
        {
            _error ??= error;
        }

        CompletePending();
    }

    /// <summary>Gives the incoming buffer back; what it held is dropped.</summary>
    public void Release()
    {
        lock (_gate)
        {
            ReleaseLocked();
        }
    }

    private void ReleaseLocked()
    {
        if (_in is not null)
        {
            ArrayPool<byte>.Shared.Return(_in);
            _in = null;
        }

        _start = _end = 0;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ValueTask<int> pending;
        lock (_gate)
        {
            if (_readPending)
            {
                return ValueTask.FromException<int>(new InvalidOperationException("SslBio: a read is already pending."));
            }

            if (TryRead(buffer.Span, out int n))
            {
                return new ValueTask<int>(n);
            }

            if (_error is not null)
            {
                return ValueTask.FromException<int>(_error);
            }

            _pendingBuffer = buffer;
            _core.Reset();
            _readPending = true;
            pending = new ValueTask<int>(this, _core.Version);
        }

        return pending;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(Span<byte> buffer)
    {
        int n;
        bool read;
        lock (_gate)
        {
            read = TryRead(buffer, out n);
        }

        if (read)
        {
            return n;
        }

        if (_error is not null)
        {
            throw _error;
        }

        throw new InvalidOperationException("SslBio never blocks: a synchronous read found no data.");
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _owner.WriteBeneath(buffer);
    }

    public override void Write(byte[] buffer, int offset, int count) => _owner.WriteBeneath(buffer.AsSpan(offset, count));

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        try
        {
            _owner.WriteBeneath(buffer.Span);
            return default;
        }
        catch (Exception ex)
        {
            return ValueTask.FromException(ex);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    int IValueTaskSource<int>.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    /// <summary>A read of what is on hand: bytes, the end, or nothing (false).</summary>
    private bool TryRead(Span<byte> buffer, out int count)
    {
        int available = _end - _start;
        if (available > 0)
        {
            if (buffer.IsEmpty)
            {
                count = 0;
                return true;
            }

            count = Math.Min(available, buffer.Length);
            _in.AsSpan(_start, count).CopyTo(buffer);
            _start += count;
            ReleaseIfEmpty();
            return true;
        }

        if (_eof && _error is null)
        {
            if (!buffer.IsEmpty)
            {
                EofDelivered = true;
            }

            count = 0;
            return true;
        }

        count = 0;
        return false;
    }

    private void CompletePending()
    {
        int n;
        Exception? error = null;
        lock (_gate)
        {
            if (!_readPending)
            {
                return;
            }

            if (!TryRead(_pendingBuffer.Span, out n))
            {
                if (_error is null)
                {
                    return;
                }

                error = _error;
            }

            _readPending = false;
            _pendingBuffer = default;
        }

        // Outside the lock: the stream's continuation runs inline here (no context current: see
        // NoSyncContextScope), and may read again.
        using var noContext = new NoSyncContextScope();
        if (error is null)
        {
            _core.SetResult(n);
        }
        else
        {
            _core.SetException(error);
        }
    }

    private void ReleaseIfEmpty()
    {
        if (_start == _end && _in is not null)
        {
            ArrayPool<byte>.Shared.Return(_in);
            _in = null;
            _start = _end = 0;
        }
    }
}
