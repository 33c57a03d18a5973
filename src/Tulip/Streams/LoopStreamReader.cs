using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;

namespace Tulip.Streams;

/// <summary>
/// Reads a byte stream that a protocol feeds (<see cref="StreamReaderProtocol"/>, or
/// <see cref="FeedData"/> / <see cref="FeedEof"/> by hand): asyncio's <c>StreamReader</c>. For
/// the loop thread only.
/// </summary>
/// <remarks>
/// <para>
/// The bytes are kept in one growable buffer with a consumed offset: a read takes from its front,
/// the transport reads into its free end (<see cref="StreamReaderProtocol"/> is an
/// <see cref="IBufferedProtocol"/>), and it is compacted or grown only when the free end is too
/// small. <see cref="Limit"/> (default <see cref="DefaultLimit"/>) bounds a line or a chunk up to a
/// separator, and drives flow control: with a transport (<see cref="SetTransport"/>) reading is
/// paused while more than twice the limit is buffered and resumed at the limit or below.
/// </para>
/// <para>
/// Only one read may wait for data at a time, as in asyncio (a second one throws
/// <see cref="InvalidOperationException"/>). A read that waits and is cancelled (its task, or its
/// <see cref="CancellationToken"/>) takes nothing: the bytes stay for the next read. The
/// <see cref="Memory{T}"/> reads copy into the caller's memory only when they complete, so a result
/// once there is delivered by the await even if the task is cancelled after (Tulip's tasks deliver
/// a done result and the cancellation at the next await).
/// </para>
/// </remarks>
public sealed class LoopStreamReader
{
    /// <summary>The default <see cref="Limit"/>: 64 KiB, asyncio's <c>_DEFAULT_LIMIT</c>.</summary>
    public const int DefaultLimit = 65536;

    // The free space handed to the transport for one read starts at MinReadSpace and doubles, up to
    // MaxReadSpace, each time a read fills all of it: an idle or chatty connection keeps a 4 KiB
    // buffer, a bulk one reads 64 KiB at a time after a few reads. The buffer only ever grows, so
    // the steady state allocates nothing.
    private const int MinReadSpace = 4096;
    private const int MaxReadSpace = 64 * 1024;

    private static readonly byte[] s_newline = [(byte)'\n'];

    private readonly BaseEventLoop _loop;
    private byte[] _buffer = [];
    private int _start;
    private int _end;
    private bool _eof;
    private Exception? _exception;
    private IReadTransport? _transport;
    private bool _paused;
    private int _readSpace = MinReadSpace;
    private int _offered;

    // The one waiter: a wake-up for the LoopTask reads, or a Memory read that completes itself.
    private Future<VoidResult>? _signal;
    private ReusableFuture<VoidResult>? _signalSlot;
    private Future<int>? _readWaiter;
    private MemoryReadWaiter? _readSlot;

    // A memory read that was woken and has not yet been taken by its awaiter: it copies then, so it
    // gets all that came before its task ran (asyncio's read(n)), and until then the reader is busy.
    private MemoryReadWaiter? _deferred;
    private Memory<byte> _readTarget;
    private bool _readExactly;

    /// <summary>Makes a reader on the running loop.</summary>
    /// <param name="limit">The buffer limit (see the class remarks); defaults to <see cref="DefaultLimit"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is zero or negative.</exception>
    /// <exception cref="InvalidOperationException">No loop is running on this thread.</exception>
    public LoopStreamReader(int limit = DefaultLimit)
    {
        CheckLimit(limit);

        _loop = BaseEventLoop.RunningLoopOrNull
            ?? throw new InvalidOperationException("A LoopStreamReader is made on the running loop: create it from a loop task or callback (EventLoop.Run(MainAsync)).");
        Limit = limit;
    }

    /// <summary>Refuses a limit that is not a positive number of bytes (the constructor, and the streams functions before any I/O).</summary>
    internal static void CheckLimit(int limit)
    {
        if (limit <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(limit), limit, "The limit must be positive (a number of bytes); the default is LoopStreamReader.DefaultLimit.");
        }
    }

    /// <summary>The buffer limit given to the constructor.</summary>
    public int Limit { get; }

    /// <summary>True when EOF was fed and every byte was read.</summary>
    public bool AtEof => _eof && _start == _end;

    /// <summary>The exception set by <see cref="SetException"/> (the connection's error), or null.</summary>
    public Exception? Exception => _exception;

    internal BaseEventLoop LoopCore => _loop;

    private int Buffered => _end - _start;

    private ReadOnlySpan<byte> BufferedSpan => new(_buffer, _start, _end - _start);

    /// <summary>Sets the error every read throws from now on; a read waiting for data throws it at once.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="exception"/> is null.</exception>
    /// <exception cref="InvalidOperationException">Called from a thread other than the loop's.</exception>
    public void SetException(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        CheckThread();
        _exception = exception;
        if (_signal is { } signal)
        {
            _signal = null;
            Fail(signal, exception);
        }

        if (_readWaiter is { } read)
        {
            _readWaiter = null;
            _readTarget = default;
            Fail(read, exception);
        }
    }

    /// <summary>Gives the reader the transport it pauses and resumes for flow control (see the class remarks).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="transport"/> is null.</exception>
    /// <exception cref="InvalidOperationException">A transport was set already.</exception>
    public void SetTransport(IReadTransport transport)
    {
        ArgumentNullException.ThrowIfNull(transport);
        if (_transport is not null)
        {
            throw new InvalidOperationException("The LoopStreamReader has a transport already: SetTransport is called once.");
        }

        _transport = transport;
    }

    /// <summary>
    /// For a TLS upgrade: takes the bytes read ahead and not yet consumed; they are the peer's first TLS
    /// records (CPython gh-142352).
    /// </summary>
    internal byte[] TakeReadAhead()
    {
        var taken = BufferedSpan.ToArray();
        _start = _end = 0;
        return taken;
    }

    /// <summary>After a TLS upgrade: flow control pauses and resumes <paramref name="transport"/> (CPython gh-114921).</summary>
    internal void MoveTransport(IReadTransport transport)
    {
        bool paused = _paused;
        _transport = transport;
        _paused = false;
        if (paused || Buffered > 2 * Limit)
        {
            AfterAppend();
        }
    }

    /// <summary>Appends <paramref name="data"/> and wakes a waiting read.</summary>
    /// <exception cref="InvalidOperationException">EOF was fed already, or called from a thread other than the loop's.</exception>
    public void FeedData(ReadOnlySpan<byte> data)
    {
        CheckThread();
        if (_eof)
        {
            throw new InvalidOperationException("FeedData after FeedEof: no data can follow the end of the stream.");
        }

        if (data.IsEmpty)
        {
            return;
        }

        EnsureFree(data.Length);
        data.CopyTo(_buffer.AsSpan(_end));
        _end += data.Length;
        AfterAppend();
    }

    /// <summary>Marks the end of the stream and wakes a waiting read. Feeding EOF again does nothing more.</summary>
    /// <exception cref="InvalidOperationException">Called from a thread other than the loop's.</exception>
    public void FeedEof()
    {
        CheckThread();
        _eof = true;
        Wakeup();
    }

    /// <summary>
    /// Reads up to <paramref name="n"/> bytes: what is buffered (at most <paramref name="n"/>), else waits
    /// for some. -1 (any negative) reads to EOF; 0 returns an empty array at once. At EOF it returns an empty array.
    /// </summary>
    /// <exception cref="InvalidOperationException">Another read is waiting for data.</exception>
    /// <remarks>The exception set by <see cref="SetException"/> is thrown first.</remarks>
    public async LoopTask<byte[]> ReadAsync(int n = -1, CancellationToken cancellationToken = default)
    {
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        ThrowIfException();
        if (n == 0)
        {
            return [];
        }

        if (n < 0)
        {
            // asyncio reads limit-sized blocks until EOF, so flow control keeps working meanwhile.
            var all = new MemoryStream();
            while (true)
            {
                ThrowIfException();
                if (Buffered > 0)
                {
                    all.Write(BufferedSpan);
                    Consume(Buffered);
                    MaybeResumeTransport();
                }

                if (_eof)
                {
                    return all.ToArray();
                }

                await WaitForData("read");
            }
        }

        if (Buffered == 0 && !_eof)
        {
            await WaitForData("read");
        }

        var data = BufferedSpan[..Math.Min(n, Buffered)].ToArray();
        Consume(data.Length);
        MaybeResumeTransport();
        return data;
    }

    /// <summary>
    /// Reads up to <paramref name="buffer"/>'s length into it: what is buffered, else waits for some.
    /// Returns the number of bytes read, 0 at EOF (or for an empty buffer). Allocates nothing unless
    /// <paramref name="cancellationToken"/> can be cancelled and the read must wait.
    /// </summary>
    /// <remarks>
    /// Await the result once, right away (see <see cref="ValueFuture{T}"/>). The memory is written
    /// when the awaiting code takes the result, so the read gets everything that arrived before it
    /// ran (as asyncio's <c>read(n)</c>); a cancelled read leaves every byte in the reader. The
    /// exception set by <see cref="SetException"/> is thrown first.
    /// </remarks>
    /// <exception cref="InvalidOperationException">Another read is waiting for data.</exception>
    public ValueFuture<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckThread();
        SettleDeferred();
        if (_exception is { } exception)
        {
            return Failed<int>(exception);
        }

        if (buffer.IsEmpty)
        {
            return new ValueFuture<int>(0);
        }

        if (Buffered > 0)
        {
            return new ValueFuture<int>(TakeInto(buffer.Span));
        }

        if (_eof)
        {
            return new ValueFuture<int>(0);
        }

        return WaitToRead(buffer, exactly: false, "read", cancellationToken);
    }

    /// <summary>
    /// Reads one line, up to and including <c>\n</c>. At EOF it returns what is left (without a
    /// <c>\n</c>), or an empty array when nothing is.
    /// </summary>
    /// <exception cref="InvalidDataException">
    /// The line is longer than <see cref="Limit"/> (asyncio's <c>ValueError</c>). As asyncio does, the
    /// reader first drops what it buffered of that line: through the <c>\n</c> if it was found,
    /// else everything buffered. Its <see cref="Exception.InnerException"/> is the
    /// <see cref="LimitOverrunError"/>.
    /// </exception>
    /// <exception cref="InvalidOperationException">Another read is waiting for data.</exception>
    public LoopTask<byte[]> ReadLineAsync(CancellationToken cancellationToken = default) =>
        ReadUntilCoreAsync(s_newline, null, line: true, cancellationToken);

    /// <summary>Reads exactly <paramref name="n"/> bytes (0: an empty array at once).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is negative.</exception>
    /// <exception cref="IncompleteReadError">EOF came first: its <see cref="IncompleteReadError.Partial"/> has what was read.</exception>
    /// <exception cref="InvalidOperationException">Another read is waiting for data.</exception>
    public LoopTask<byte[]> ReadExactlyAsync(int n, CancellationToken cancellationToken = default)
    {
        if (n < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(n), n, "ReadExactlyAsync's size cannot be less than zero.");
        }

        return ReadExactlyCoreAsync(n, cancellationToken);
    }

    /// <summary>
    /// Fills <paramref name="buffer"/> whole and returns its length. Allocates nothing unless
    /// <paramref name="cancellationToken"/> can be cancelled and the read must wait.
    /// </summary>
    /// <remarks>
    /// Await the result once, right away (see <see cref="ValueFuture{T}"/>). The memory is written
    /// only when the read completes; a cancelled read leaves every byte in the reader.
    /// </remarks>
    /// <exception cref="IncompleteReadError">EOF came first: the bytes read are in its <see cref="IncompleteReadError.Partial"/>, not in <paramref name="buffer"/>.</exception>
    /// <exception cref="InvalidOperationException">Another read is waiting for data.</exception>
    public ValueFuture<int> ReadExactlyAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckThread();
        SettleDeferred();
        if (_exception is { } exception)
        {
            return Failed<int>(exception);
        }

        if (buffer.IsEmpty)
        {
            return new ValueFuture<int>(0);
        }

        if (Buffered >= buffer.Length)
        {
            return new ValueFuture<int>(TakeInto(buffer.Span));
        }

        if (_eof)
        {
            return Failed<int>(new IncompleteReadError(TakeAll(), buffer.Length));
        }

        return WaitToRead(buffer, exactly: true, "readexactly", cancellationToken);
    }

    /// <summary>
    /// Reads up to and including <paramref name="separator"/>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="separator"/> is empty.</exception>
    /// <exception cref="LimitOverrunError">
    /// No separator within <see cref="Limit"/> bytes, or one found past it; the data stays in the reader.
    /// </exception>
    /// <exception cref="IncompleteReadError">EOF came first: its <see cref="IncompleteReadError.Partial"/> has every byte that was left.</exception>
    /// <exception cref="InvalidOperationException">Another read is waiting for data.</exception>
    public LoopTask<byte[]> ReadUntilAsync(ReadOnlyMemory<byte> separator, CancellationToken cancellationToken = default)
    {
        if (separator.IsEmpty)
        {
            throw new ArgumentException("The separator must be at least one byte long.", nameof(separator));
        }

        return ReadUntilCoreAsync(separator, null, line: false, cancellationToken);
    }

    /// <summary>
    /// Reads up to and including whichever of <paramref name="separators"/> ends first in the data
    /// (asyncio 3.13's tuple of separators; the shortest wins when two end at the same place).
    /// </summary>
    /// <exception cref="ArgumentException">The list is empty, or a separator is empty.</exception>
    /// <exception cref="ArgumentNullException"><paramref name="separators"/> is null.</exception>
    /// <exception cref="LimitOverrunError">No separator within <see cref="Limit"/> bytes, or one found past it; the data stays in the reader.</exception>
    /// <exception cref="IncompleteReadError">EOF came first.</exception>
    /// <exception cref="InvalidOperationException">Another read is waiting for data.</exception>
    public LoopTask<byte[]> ReadUntilAsync(IReadOnlyList<ReadOnlyMemory<byte>> separators, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(separators);
        if (separators.Count == 0)
        {
            throw new ArgumentException("Give at least one separator.", nameof(separators));
        }

        var sorted = new ReadOnlyMemory<byte>[separators.Count];
        for (int i = 0; i < sorted.Length; i++)
        {
            sorted[i] = separators[i];
            if (sorted[i].IsEmpty)
            {
                throw new ArgumentException($"Separator {i} is empty: each must be at least one byte long.", nameof(separators));
            }
        }

        // Stable, by length: asyncio sorts so that the shortest match ending at the same place wins.
        var order = new int[sorted.Length];
        for (int i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        Array.Sort(order, (a, b) => sorted[a].Length != sorted[b].Length ? sorted[a].Length.CompareTo(sorted[b].Length) : a.CompareTo(b));
        var byLength = new ReadOnlyMemory<byte>[sorted.Length];
        for (int i = 0; i < order.Length; i++)
        {
            byLength[i] = sorted[order[i]];
        }

        return ReadUntilCoreAsync(byLength[0], byLength, line: false, cancellationToken);
    }

    /// <summary>Enumerates the lines (as <see cref="ReadLineAsync"/>) until EOF: <c>await foreach (byte[] line in reader)</c>.</summary>
    public StreamReaderLineEnumerator GetAsyncEnumerator(CancellationToken cancellationToken = default) => new(this, cancellationToken);

    /// <summary>Describes the reader.</summary>
    public override string ToString()
    {
        var parts = new List<string> { "LoopStreamReader" };
        if (Buffered > 0)
        {
            parts.Add($"{Buffered} bytes");
        }

        if (_eof)
        {
            parts.Add("eof");
        }

        if (Limit != DefaultLimit)
        {
            parts.Add($"limit={Limit}");
        }

        if (_signal is { Done: false } || _readWaiter is { Done: false })
        {
            parts.Add("waiting");
        }

        if (_exception is not null)
        {
            parts.Add($"exception={_exception.GetType().Name}");
        }

        if (_transport is not null)
        {
            parts.Add($"transport={_transport}");
        }

        if (_paused)
        {
            parts.Add("paused");
        }

        return "<" + string.Join(' ', parts) + ">";
    }

    // ---- For StreamReaderProtocol (IBufferedProtocol) ----------------------------------------

    /// <summary>The free end of the buffer, for the transport to read into.</summary>
    internal Memory<byte> GetFreeMemory(int sizeHint)
    {
        if (_start == _end)
        {
            _start = _end = 0;
        }

        EnsureFree(Math.Max(sizeHint, _readSpace));
        _offered = _buffer.Length - _end;
        return _buffer.AsMemory(_end);
    }

    /// <summary>The transport wrote <paramref name="count"/> bytes into the free end.</summary>
    internal void Advance(int count)
    {
        if (_eof)
        {
            throw new InvalidOperationException("BufferUpdated after EOF: no data can follow the end of the stream.");
        }

        if ((uint)count > (uint)(_buffer.Length - _end))
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"More bytes than the buffer handed out ({_buffer.Length - _end}).");
        }

        if (count == 0)
        {
            return;
        }

        if (count == _offered && _readSpace < MaxReadSpace)
        {
            // The read took all it was offered: more is likely waiting, offer more next time.
            _readSpace *= 2;
        }

        _end += count;
        AfterAppend();
    }

    /// <summary>The line enumerator's fast path: a whole line (or the rest at EOF) that is buffered already.</summary>
    internal bool TryTakeBufferedLine(out byte[] line)
    {
        SettleDeferred();
        line = [];
        if (_exception is not null || _signal is { Done: false } || _readWaiter is { Done: false })
        {
            return false;
        }

        int index = BufferedSpan.IndexOf((byte)'\n');
        if (index >= 0)
        {
            if (index > Limit)
            {
                return false;
            }

            line = TakeArray(index + 1);
            return true;
        }

        if (_eof)
        {
            line = TakeAll();
            return true;
        }

        return false;
    }

    // ---- Internals -----------------------------------------------------------------------------

    private async LoopTask<byte[]> ReadExactlyCoreAsync(int n, CancellationToken cancellationToken)
    {
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        ThrowIfException();
        if (n == 0)
        {
            return [];
        }

        while (Buffered < n)
        {
            if (_eof)
            {
                throw new IncompleteReadError(TakeAll(), n);
            }

            await WaitForData("readexactly");
        }

        return TakeArray(n);
    }

    private async LoopTask<byte[]> ReadUntilCoreAsync(ReadOnlyMemory<byte> single, ReadOnlyMemory<byte>[]? many, bool line, CancellationToken cancellationToken)
    {
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        ThrowIfException();
        int minLength = single.Length;
        int maxLength = many is null ? single.Length : many[^1].Length;

        // No separator starts before offset: only what arrives (and the last maxLength - 1 bytes) is searched again.
        int offset = 0;
        int matchStart;
        int matchEnd;
        while (true)
        {
            int length = Buffered;
            if (length - offset >= minLength)
            {
                (matchStart, matchEnd) = FindFirstEnd(single, many, offset);
                if (matchEnd >= 0)
                {
                    break;
                }

                offset = Math.Max(0, length + 1 - maxLength);
                if (offset > Limit)
                {
                    throw LimitOverrun(line, "Separator is not found, and chunk exceed the limit", offset);
                }
            }

            // A whole message may be buffered even with EOF set: the buffer is searched first.
            if (_eof)
            {
                var rest = TakeAll();
                if (line)
                {
                    return rest;
                }

                throw new IncompleteReadError(rest, null);
            }

            await WaitForData(line ? "readline" : "readuntil");
        }

        if (matchStart > Limit)
        {
            throw LimitOverrun(line, "Separator is found, but chunk is longer than limit", matchStart);
        }

        return TakeArray(matchEnd);
    }

    private (int Start, int End) FindFirstEnd(ReadOnlyMemory<byte> single, ReadOnlyMemory<byte>[]? many, int offset)
    {
        var span = BufferedSpan[offset..];
        if (many is null)
        {
            int i = span.IndexOf(single.Span);
            return i < 0 ? (-1, -1) : (offset + i, offset + i + single.Length);
        }

        int bestStart = -1;
        int bestEnd = -1;
        foreach (var separator in many)
        {
            int i = span.IndexOf(separator.Span);
            if (i >= 0)
            {
                int end = offset + i + separator.Length;
                if (bestEnd < 0 || end < bestEnd)
                {
                    bestEnd = end;
                    bestStart = offset + i;
                }
            }
        }

        return (bestStart, bestEnd);
    }

    private Exception LimitOverrun(bool line, string message, int consumed)
    {
        var overrun = new LimitOverrunError(message, consumed);
        if (!line)
        {
            return overrun;
        }

        // asyncio's readline: drop the too-long line (through its '\n' if that is buffered), then ValueError.
        if (Buffered > consumed && _buffer[_start + consumed] == (byte)'\n')
        {
            Consume(consumed + 1);
        }
        else
        {
            Consume(Buffered);
        }

        MaybeResumeTransport();
        return new InvalidDataException($"{message} (the line is longer than the limit of {Limit} bytes; it was dropped).", overrun);
    }

    /// <summary>The wake-up for the LoopTask reads (asyncio's <c>_wait_for_data</c>).</summary>
    private ValueFuture<VoidResult> WaitForData(string functionName)
    {
        CheckNotWaiting(functionName);

        // Waiting while paused would never end: resume (what lets ReadExactly(n > limit) finish).
        ResumeIfPaused();
        var signal = ReusableFuture<VoidResult>.Next(ref _signalSlot, _loop);
        _signal = signal;
        return new ValueFuture<VoidResult>(signal);
    }

    private ValueFuture<int> WaitToRead(Memory<byte> buffer, bool exactly, string functionName, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            var cancelled = new Future<int>(_loop);
            cancelled.Cancel();
            return new ValueFuture<int>(cancelled);
        }

        CheckNotWaiting(functionName);
        ResumeIfPaused();

        // A token's callback cancels the future later, from the loop: a reusable one might be in its
        // next wait by then, so a cancellable wait gets a future of its own.
        MemoryReadWaiter waiter;
        if (cancellationToken.CanBeCanceled)
        {
            waiter = new MemoryReadWaiter(this);
        }
        else
        {
            if (_readSlot is null || !_readSlot.TryReset())
            {
                _readSlot = new MemoryReadWaiter(this);
            }

            waiter = _readSlot;
        }

        _readWaiter = waiter;
        _readTarget = buffer;
        _readExactly = exactly;
        TaskCancellation.LinkToFuture(waiter, cancellationToken);
        return new ValueFuture<int>(waiter);
    }

    private void CheckNotWaiting(string functionName)
    {
        if (_signal is { Done: false } || _readWaiter is { Done: false })
        {
            throw new InvalidOperationException($"{functionName}() called while another coroutine is already waiting for incoming data.");
        }

        CheckThread();
    }

    private void AfterAppend()
    {
        Wakeup();
        if (_transport is not null && !_paused && Buffered > 2 * Limit && _readWaiter is not { Done: false })
        {
            try
            {
                _transport.PauseReading();
                _paused = true;
            }
            catch (NotSupportedException)
            {
                // The transport cannot pause (asyncio's NotImplementedError): no flow control.
                _transport = null;
            }
        }
    }

    private void Wakeup()
    {
        if (_signal is { } signal)
        {
            _signal = null;
            if (!signal.Done)
            {
                signal.TrySetResult(default);
            }
        }

        if (_readWaiter is not { } read)
        {
            return;
        }

        if (read.Done)
        {
            // Cancelled: it took nothing.
            _readWaiter = null;
            _readTarget = default;
            return;
        }

        if (_readExactly ? Buffered >= _readTarget.Length : Buffered > 0)
        {
            var target = _readTarget;
            _readWaiter = null;
            _readTarget = default;
            if (read is MemoryReadWaiter { Escaped: false } memoryRead)
            {
                // Copied when the awaiter takes it, so a chunk that comes before the task runs is read too.
                memoryRead.Target = target;
                memoryRead.Deferred = true;
                _deferred = memoryRead;
                read.TrySetResult(0);
            }
            else
            {
                read.TrySetResult(TakeInto(target.Span));
            }
        }
        else if (_eof)
        {
            int expected = _readTarget.Length;
            _readWaiter = null;
            _readTarget = default;
            if (_readExactly)
            {
                read.TrySetException(new IncompleteReadError(TakeAll(), expected));
            }
            else
            {
                read.TrySetResult(0);
            }
        }
    }

    /// <summary>
    /// Another read starts while a woken memory read has not been taken yet (its task has not run):
    /// that read gets its bytes first, so the order of reads is the order of the bytes.
    /// </summary>
    private void SettleDeferred()
    {
        if (_deferred is { } waiter)
        {
            waiter.Settle();
        }
    }

    /// <summary>A woken memory read is taken: the bytes go to its memory now.</summary>
    private int TakeDeferred(MemoryReadWaiter waiter)
    {
        if (ReferenceEquals(_deferred, waiter))
        {
            _deferred = null;
        }

        var target = waiter.Target;
        waiter.Target = default;
        return TakeInto(target.Span);
    }

    /// <summary>
    /// The future a memory read waits on. When data came, the reader finishes it at once (the task
    /// wakes) but copies into the caller's memory only when the awaiter takes the result, so the read
    /// gets everything that arrived before its task ran, as asyncio's <c>read(n)</c>. Given out as a
    /// future of its own (<c>AsFuture</c>/<c>AsTask</c>), it copies right away instead.
    /// </summary>
    private sealed class MemoryReadWaiter : ReusableFuture<int>
    {
        private readonly LoopStreamReader _reader;

        public MemoryReadWaiter(LoopStreamReader reader) : base(reader._loop) => _reader = reader;

        public Memory<byte> Target { get; set; }

        public bool Deferred { get; set; }

        private protected override int TakeResult()
        {
            Settle();
            return Result();
        }

        public override void MarkEscaped()
        {
            base.MarkEscaped();
            Settle();
        }

        /// <summary>Copies now if it was woken and not yet taken, making its result final.</summary>
        public void Settle()
        {
            if (Deferred && Done)
            {
                Deferred = false;
                ReplaceResult(_reader.TakeDeferred(this));
            }
        }
    }

    private int TakeInto(Span<byte> destination)
    {
        int n = Math.Min(destination.Length, Buffered);
        _buffer.AsSpan(_start, n).CopyTo(destination);
        Consume(n);
        MaybeResumeTransport();
        return n;
    }

    private byte[] TakeArray(int n)
    {
        var data = _buffer.AsSpan(_start, n).ToArray();
        Consume(n);
        MaybeResumeTransport();
        return data;
    }

    private byte[] TakeAll() => TakeArray(Buffered);

    private void Consume(int n)
    {
        _start += n;
        if (_start == _end)
        {
            _start = _end = 0;
        }
    }

    private void EnsureFree(int needed)
    {
        if (_buffer.Length - _end >= needed)
        {
            return;
        }

        int used = Buffered;
        if (_start > 0 && _buffer.Length - used >= needed)
        {
            // Compact: the free space is split between the front and the end.
            _buffer.AsSpan(_start, used).CopyTo(_buffer);
            _start = 0;
            _end = used;
            return;
        }

        long wanted = Math.Max(Math.Max((long)_buffer.Length * 2, MinReadSpace), (long)used + needed);
        int capacity = (int)Math.Min(wanted, Array.MaxLength);
        if (capacity - used < needed)
        {
            throw new OutOfMemoryException("The LoopStreamReader's buffer cannot grow any further.");
        }

        var bigger = new byte[capacity];
        _buffer.AsSpan(_start, used).CopyTo(bigger);
        _buffer = bigger;
        _start = 0;
        _end = used;
    }

    private void MaybeResumeTransport()
    {
        if (_paused && Buffered <= Limit)
        {
            _paused = false;
            _transport!.ResumeReading();
        }
    }

    private void ResumeIfPaused()
    {
        if (_paused)
        {
            _paused = false;
            _transport!.ResumeReading();
        }
    }

    private void ThrowIfException()
    {
        SettleDeferred();
        if (_exception is { } exception)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(exception);
        }
    }

    private ValueFuture<T> Failed<T>(Exception exception)
    {
        var failed = new Future<T>(_loop);
        Fail(failed, exception);
        return new ValueFuture<T>(failed);
    }

    private static void Fail<T>(Future<T> future, Exception exception)
    {
        if (future.Done)
        {
            return;
        }

        if (exception is OperationCanceledException)
        {
            // A future cannot hold a cancellation as its exception: it is cancelled instead.
            future.Cancel(exception.Message);
        }
        else
        {
            future.TrySetException(exception);
        }
    }

    private void CheckThread()
    {
        if (_loop.IsRunning && !_loop.IsOnLoopThread)
        {
            throw new InvalidOperationException(
                "A LoopStreamReader is used on its loop's thread only; from another thread, use loop.CallSoonThreadSafe(...) or loop.RunCoroutineThreadSafe(...).");
        }
    }
}
