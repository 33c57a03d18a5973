using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip.Streams;

/// <summary>
/// A <see cref="System.IO.Stream"/> over a Tulip <see cref="LoopStreamReader"/> and <see cref="LoopStreamWriter"/>
/// pair, so .NET code that takes a <see cref="Stream"/> (<see cref="System.IO.StreamReader"/>,
/// <c>JsonSerializer</c>, <see cref="Stream.CopyToAsync(Stream)"/>, a Stream-based parser) runs over a
/// Tulip connection: <c>var (reader, writer) = await StreamConnections.OpenConnectionAsync(host, port);
/// await using var stream = new StreamReaderWriterStream(reader, writer);</c>
/// </summary>
/// <remarks>
/// <para>
/// The asynchronous members do the stream's work: <see cref="ReadAsync(Memory{byte}, CancellationToken)"/>
/// is the reader's <see cref="LoopStreamReader.ReadAsync(Memory{byte}, CancellationToken)"/> (up to the
/// buffer's length, 0 at EOF), <see cref="WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/> is
/// <see cref="LoopStreamWriter.Write"/> then <see cref="LoopStreamWriter.DrainAsync"/> (so a writer is paused
/// while the transport is, and memory stays bounded), <see cref="FlushAsync(CancellationToken)"/> is
/// <see cref="LoopStreamWriter.DrainAsync"/>, and <see cref="DisposeAsync"/> is <see cref="LoopStreamWriter.Close"/>
/// then waiting until the connection is closed.
/// </para>
/// <para>
/// Threads: on the loop thread (the thread running the loop the reader was made on) the calls go
/// straight to the reader and writer. From any other thread (a thread-pool task) each call is run on
/// the loop with <see cref="IEventLoop.RunCoroutineThreadSafe{T}"/>, so the reader, writer and transport
/// are only ever touched on the loop thread; one read and one write at a time, as any stream.
/// </para>
/// <para>
/// The synchronous members (<see cref="Read(Span{byte})"/>, <see cref="Write(ReadOnlySpan{byte})"/>,
/// <see cref="Flush"/>) block the calling thread on the asynchronous ones when called from another
/// thread, as sync-over-async .NET code expects; on the loop thread they throw
/// <see cref="NotSupportedException"/>, since blocking there would stop the loop that must do the work.
/// <see cref="Stream.Dispose()"/> closes without waiting. The stream cannot seek.
/// </para>
/// </remarks>
public sealed class StreamReaderWriterStream : Stream
{
    private readonly LoopStreamReader _reader;
    private readonly LoopStreamWriter _writer;
    private readonly IEventLoop _loop;
    private volatile bool _disposed;

    /// <summary>Makes the stream over <paramref name="reader"/> and <paramref name="writer"/>; call it on the loop thread (where they were made).</summary>
    /// <exception cref="InvalidOperationException">No loop is running on this thread.</exception>
    public StreamReaderWriterStream(LoopStreamReader reader, LoopStreamWriter writer)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(writer);
        _reader = reader;
        _writer = writer;
        _loop = EventLoop.TryGetRunningLoop()
            ?? throw new InvalidOperationException("A StreamReaderWriterStream is made on the loop thread, where its reader and writer live: create it from a loop task.");
    }

    /// <summary>The reader the stream reads from (for the loop thread).</summary>
    public LoopStreamReader Reader => _reader;

    /// <summary>The writer the stream writes to (for the loop thread).</summary>
    public LoopStreamWriter Writer => _writer;

    /// <summary>True until the stream is disposed.</summary>
    public override bool CanRead => !_disposed;

    /// <summary>True until the stream is disposed.</summary>
    public override bool CanWrite => !_disposed;

    /// <summary>False: a connection cannot seek.</summary>
    public override bool CanSeek => false;

    /// <summary>Not supported: a connection has no length.</summary>
    /// <exception cref="NotSupportedException">Always.</exception>
    public override long Length => throw NoSeek();

    /// <summary>Not supported: a connection has no position.</summary>
    /// <exception cref="NotSupportedException">Always.</exception>
    public override long Position
    {
        get => throw NoSeek();
        set => throw NoSeek();
    }

    private bool OnLoop => ReferenceEquals(EventLoop.TryGetRunningLoop(), _loop);

    /// <summary>
    /// Reads up to <paramref name="buffer"/>'s length: what is buffered, or waits for data; 0 at EOF.
    /// The connection's error, if it broke, is thrown.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The stream is disposed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (OnLoop)
        {
            var read = _reader.ReadAsync(buffer, cancellationToken);
            return read.IsCompletedSuccessfully ? new ValueTask<int>(read.Result()) : new ValueTask<int>(read.AsTask());
        }

        return new ValueTask<int>(_loop.RunCoroutineThreadSafe(() => ReadOnLoopAsync(buffer, cancellationToken), cancellationToken));
    }

    /// <inheritdoc cref="ReadAsync(Memory{byte}, CancellationToken)"/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        ValidateBufferArguments(buffer, offset, count);
        return ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    /// <summary>Writes <paramref name="buffer"/> and waits while the transport is paused (<see cref="LoopStreamWriter.DrainAsync"/>).</summary>
    /// <exception cref="ObjectDisposedException">The stream is disposed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (OnLoop)
        {
            _writer.Write(buffer.Span);
            return Drain(cancellationToken);
        }

        return new ValueTask(_loop.RunCoroutineThreadSafe(() => WriteOnLoopAsync(buffer, cancellationToken), cancellationToken));
    }

    /// <inheritdoc cref="WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/>
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        ValidateBufferArguments(buffer, offset, count);
        return WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    /// <summary>Waits while the transport is paused (<see cref="LoopStreamWriter.DrainAsync"/>): the writes are sent or buffered below the high-water mark.</summary>
    /// <exception cref="ObjectDisposedException">The stream is disposed.</exception>
    public override Task FlushAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (OnLoop)
        {
            return Drain(cancellationToken).AsTask();
        }

        return _loop.RunCoroutineThreadSafe(() => DrainOnLoopAsync(cancellationToken), cancellationToken);
    }

    /// <summary>From another thread: blocks on <see cref="ReadAsync(Memory{byte}, CancellationToken)"/>.</summary>
    /// <exception cref="NotSupportedException">Called on the loop thread, which it would block: use <see cref="ReadAsync(Memory{byte}, CancellationToken)"/>.</exception>
    public override int Read(Span<byte> buffer)
    {
        ThrowIfOnLoop(nameof(Read), nameof(ReadAsync));
        byte[] temporary = new byte[buffer.Length];
        int n = ReadAsync(temporary).AsTask().GetAwaiter().GetResult();
        temporary.AsSpan(0, n).CopyTo(buffer);
        return n;
    }

    /// <inheritdoc cref="Read(Span{byte})"/>
    public override int Read(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        ThrowIfOnLoop(nameof(Read), nameof(ReadAsync));
        return ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    }

    /// <summary>From another thread: blocks on <see cref="WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/>.</summary>
    /// <exception cref="NotSupportedException">Called on the loop thread, which it would block: use <see cref="WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/>.</exception>
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ThrowIfOnLoop(nameof(Write), nameof(WriteAsync));
        WriteAsync(buffer.ToArray()).AsTask().GetAwaiter().GetResult();
    }

    /// <inheritdoc cref="Write(ReadOnlySpan{byte})"/>
    public override void Write(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        ThrowIfOnLoop(nameof(Write), nameof(WriteAsync));
        WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    }

    /// <summary>From another thread: blocks on <see cref="FlushAsync(CancellationToken)"/>; on a disposed stream, does nothing.</summary>
    /// <exception cref="NotSupportedException">Called on the loop thread, which it would block: use <see cref="FlushAsync(CancellationToken)"/>.</exception>
    public override void Flush()
    {
        if (_disposed)
        {
            return;
        }

        ThrowIfOnLoop(nameof(Flush), nameof(FlushAsync));
        FlushAsync(CancellationToken.None).GetAwaiter().GetResult();
    }

    /// <summary>Not supported: a connection cannot seek.</summary>
    /// <exception cref="NotSupportedException">Always.</exception>
    public override long Seek(long offset, SeekOrigin origin) => throw NoSeek();

    /// <summary>Not supported: a connection has no length.</summary>
    /// <exception cref="NotSupportedException">Always.</exception>
    public override void SetLength(long value) => throw NoSeek();

    /// <summary>Closes the writer (<see cref="LoopStreamWriter.Close"/>) and waits until the connection is closed; its error, if it broke, is not thrown. Idempotent.</summary>
    public override async ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            if (OnLoop)
            {
                await _writer.DisposeAsync();
            }
            else
            {
                await _loop.RunCoroutineThreadSafe(() => CloseOnLoopAsync(_writer));
            }
        }

        await base.DisposeAsync(); // Dispose(true), with nothing left to do
    }

    /// <summary>Closes the writer (<see cref="LoopStreamWriter.Close"/>), without waiting for the connection to close: prefer <see cref="DisposeAsync"/>.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            if (OnLoop)
            {
                _writer.Close();
            }
            else if (!_loop.IsClosed)
            {
                _loop.CallSoonThreadSafe(static w => w.Close(), _writer);
            }
        }

        base.Dispose(disposing);
    }

    private ValueTask Drain(CancellationToken cancellationToken)
    {
        var drain = _writer.DrainAsync(cancellationToken);
        if (drain.IsCompletedSuccessfully)
        {
            return default;
        }

        return new ValueTask(drain.AsTask());
    }

    private async LoopTask<int> ReadOnLoopAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        await _reader.ReadAsync(buffer, cancellationToken);

    private async LoopTask<bool> WriteOnLoopAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        _writer.Write(buffer.Span);
        await _writer.DrainAsync(cancellationToken);
        return true;
    }

    private async LoopTask<bool> DrainOnLoopAsync(CancellationToken cancellationToken)
    {
        await _writer.DrainAsync(cancellationToken);
        return true;
    }

    private static async LoopTask<bool> CloseOnLoopAsync(LoopStreamWriter writer)
    {
        await writer.DisposeAsync();
        return true;
    }

    private void ThrowIfOnLoop(string member, string instead)
    {
        if (OnLoop)
        {
            throw new NotSupportedException($"StreamReaderWriterStream.{member} would block the event loop's thread, which must do the work: " +
                $"await {instead} instead (the synchronous members are for other threads).");
        }
    }

    private static NotSupportedException NoSeek() => new("A StreamReaderWriterStream is a connection: it has no length or position and cannot seek.");
}
