using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip.Streams;

/// <summary>
/// A stream protocol that exposes its connection as an <see cref="IDuplexPipe"/> (System.IO.Pipelines),
/// so parsers written for Pipelines run over any Tulip stream transport (TCP, UNIX sockets, the
/// in-memory transports of Tulip.Testing, TLS when it lands):
/// <c>var (_, pipe) = await loop.CreateConnectionAsync(() => new DuplexPipeProtocol(), host, port);</c>
/// then read <see cref="Input"/> and write <see cref="Output"/>.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Input"/> is a <see cref="PipeReader"/> fed with what the transport receives (the
/// transport reads straight into the pipe's memory: the protocol is an <see cref="IBufferedProtocol"/>).
/// <see cref="Output"/> is a <see cref="PipeWriter"/>: what is flushed to it, the loop writes to the transport.
/// </para>
/// <para>
/// Threads: the pipes may be used from the loop thread (awaited in an <c>async LoopTask</c> or in plain
/// <c>async Task</c> code there) or from any other thread (a .NET parser on the thread pool); one
/// reader and one writer at a time, as every pipe. A continuation awaited on the loop thread resumes on
/// the loop (the loop's <see cref="SynchronizationContext"/> is captured), elsewhere on the thread pool.
/// The transport is only ever called on the loop thread: what the other side of a pipe does from
/// another thread reaches the loop through <see cref="IEventLoop.CallSoonThreadSafe(Action)"/>.
/// </para>
/// <para>
/// Flow control, both ways. Input: once it holds the input pause threshold of unconsumed bytes, the
/// transport stops reading (<see cref="IReadTransport.PauseReading"/>), and reading resumes when the
/// reader has consumed (<see cref="PipeReader.AdvanceTo(SequencePosition)"/>) down to half of it.
/// Output: while the transport is paused (<see cref="IBaseProtocol.PauseWriting"/>), the loop takes
/// nothing from the pipe, so once Output holds the output pause threshold,
/// <see cref="PipeWriter.FlushAsync(CancellationToken)"/> waits until the transport resumes
/// (<see cref="IBaseProtocol.ResumeWriting"/>) and the loop has taken the bytes. Memory stays bounded
/// by the thresholds, the transport's high-water mark and the largest single flush.
/// </para>
/// <para>
/// Ends. The peer's EOF completes <see cref="Input"/> (its read returns
/// <see cref="ReadResult.IsCompleted"/>) and the write side stays open (a half-close) where the
/// transport can write EOF. Completing <see cref="Output"/> (<see cref="PipeWriter.Complete(Exception?)"/>)
/// sends what it holds, then <see cref="IWriteTransport.WriteEof"/> if the transport can (it
/// closes once the peer's EOF has come too), else <see cref="IBaseTransport.Close"/>; completing it with
/// an exception aborts the connection (<see cref="IWriteTransport.Abort"/>: a reset). A lost connection
/// completes <see cref="Input"/> with the transport's exception (reads throw it) or cleanly if none,
/// and <see cref="Output"/>: a flush then throws that exception, or returns
/// <see cref="FlushResult.IsCompleted"/> for a clean close (what was written afterwards is dropped).
/// Completing <see cref="Input"/> early is allowed: what arrives later is read and dropped.
/// </para>
/// <para>
/// For servers, give a callback: <c>loop.CreateServerAsync(() => new DuplexPipeProtocol(connectionMade: p => _ = Serve(p)), ...)</c>.
/// </para>
/// </remarks>
public sealed class DuplexPipeProtocol : IBufferedProtocol, IDuplexPipe
{
    /// <summary>The default pause threshold of each pipe: 64 KiB, as the transports' default high-water mark.</summary>
    public const int DefaultPauseThreshold = 65536;

    // Each read of the transport asks the pipe for at least this much (the rest of the current
    // segment when it is this large, else a new segment of SegmentSize): a small tail is not read
    // into, and a one-byte message does not cost a fresh segment. asyncio reads stream sockets in
    // chunks of up to 256 KiB; 16 KiB segments keep an idle connection's input small.
    private const int MinimumRead = 2048;
    private const int SegmentSize = 16384;

    private readonly Pipe _input;   // writer: this protocol, on the loop thread; reader: the user
    private readonly Pipe _output;  // writer: the user; reader: this protocol, on the loop thread
    private readonly LoopPipeScheduler _loopScheduler = new();
    private readonly Action<DuplexPipeProtocol>? _connectionMade;
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action _onInputFlushed;
    private readonly Action _onOutputReadable;
    private readonly List<ReadOnlyMemory<byte>> _segments = new();

    // ---- Owned by the loop thread (set at ConnectionMade; the pipes' loop sides run there only). ----
    private ITransport? _transport;
    private int _loopThreadId;
    private ConfiguredValueTaskAwaitable<FlushResult>.ConfiguredValueTaskAwaiter _inputFlush;
    private bool _inputFlushPending;   // a flush of Input waits for the reader: reading is paused
    private bool _inputUnflushed;      // bytes were advanced into Input while that flush waited
    private bool _inputDone;           // Input's writer is completed: what arrives is dropped
    private byte[]? _discard;
    private ConfiguredValueTaskAwaitable<ReadResult>.ConfiguredValueTaskAwaiter _outputRead;
    private bool _outputReadPending;   // a read of Output waits for the user to flush
    private bool _outputDone;          // Output's reader is completed: nothing more goes to the transport
    private bool _writingPaused;
    private bool _eofReceived;
    private bool _lost;

    /// <summary>Creates the protocol and its two pipes; give it to <c>CreateConnectionAsync</c> or <c>CreateServerAsync</c>.</summary>
    /// <param name="connectionMade">Called on the loop thread once the connection is made, with this protocol
    /// (the place a server starts serving the connection); null for none.</param>
    /// <param name="inputPauseThreshold">Unconsumed bytes in <see cref="Input"/> at which the transport stops reading;
    /// it reads again at half of it. Defaults to <see cref="DefaultPauseThreshold"/>.</param>
    /// <param name="outputPauseThreshold">Bytes in <see cref="Output"/> not yet taken by the loop at which
    /// <see cref="PipeWriter.FlushAsync(CancellationToken)"/> waits; it goes on at half of it. Defaults to <see cref="DefaultPauseThreshold"/>.</param>
    /// <param name="pool">The memory pool of both pipes; null for <see cref="MemoryPool{T}.Shared"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">A threshold is not positive.</exception>
    public DuplexPipeProtocol(Action<DuplexPipeProtocol>? connectionMade = null, int inputPauseThreshold = DefaultPauseThreshold,
        int outputPauseThreshold = DefaultPauseThreshold, MemoryPool<byte>? pool = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inputPauseThreshold);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outputPauseThreshold);
        _connectionMade = connectionMade;
        // The user's side of each pipe continues where it awaited: the captured SynchronizationContext
        // (the loop's, on the loop thread), else the thread pool. The loop's side always continues on
        // the loop: it captures the loop's context too, and its scheduler posts to the loop otherwise.
        _input = new Pipe(new PipeOptions(pool, readerScheduler: PipeScheduler.ThreadPool, writerScheduler: _loopScheduler,
            pauseWriterThreshold: inputPauseThreshold, resumeWriterThreshold: Math.Max(1, inputPauseThreshold / 2),
            minimumSegmentSize: SegmentSize, useSynchronizationContext: true));
        _output = new Pipe(new PipeOptions(pool, readerScheduler: _loopScheduler, writerScheduler: PipeScheduler.ThreadPool,
            pauseWriterThreshold: outputPauseThreshold, resumeWriterThreshold: Math.Max(1, outputPauseThreshold / 2),
            useSynchronizationContext: true));
        _onInputFlushed = OnInputFlushed;
        _onOutputReadable = OnOutputReadable;
    }

    /// <summary>What the peer sent: read it from any thread (one reader at a time).</summary>
    public PipeReader Input => _input.Reader;

    /// <summary>What to send to the peer: write and flush it from any thread (one writer at a time).</summary>
    public PipeWriter Output => _output.Writer;

    /// <summary>This protocol as an <see cref="IDuplexPipe"/>, for code that takes one.</summary>
    public IDuplexPipe Pipe => this;

    /// <summary>Completes once the connection is lost (the transport's <c>ConnectionLost</c>); never faults: an error shows on <see cref="Input"/> and <see cref="Output"/>.</summary>
    public Task Closed => _closed.Task;

    /// <summary>The transport, once connected; for the loop thread only.</summary>
    /// <exception cref="InvalidOperationException">Not connected yet, or used from a thread other than the loop's.</exception>
    public ITransport Transport
    {
        get
        {
            var transport = _transport ?? throw new InvalidOperationException("DuplexPipeProtocol: not connected yet; the transport is set when the loop calls ConnectionMade.");
            if (Environment.CurrentManagedThreadId != _loopThreadId)
            {
                throw new InvalidOperationException("DuplexPipeProtocol.Transport is for the loop thread only; from another thread use the pipes " +
                    "(complete Output to close, or complete it with an exception to abort), or loop.CallSoonThreadSafe.");
            }

            return transport;
        }
    }

    /// <summary>
    /// One line of the protocol's flow-control state (each pipe side waiting, done, paused; EOF, loss),
    /// for a hang guard to say which side stopped; loop thread.
    /// </summary>
    internal string DescribeState() =>
        $"input: flushPending={_inputFlushPending} unflushed={_inputUnflushed} done={_inputDone} eofReceived={_eofReceived} | " +
        $"output: readPending={_outputReadPending} done={_outputDone} writingPaused={_writingPaused} | lost={_lost}";

    // ---- IBufferedProtocol, called by the transport on the loop thread. -------------------------

    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException"><paramref name="transport"/> is not a stream transport (<see cref="ITransport"/>), or the protocol was connected before.</exception>
    public void ConnectionMade(IBaseTransport transport)
    {
        ArgumentNullException.ThrowIfNull(transport);
        if (_transport is not null)
        {
            throw new InvalidOperationException("A DuplexPipeProtocol serves one connection: make a new one for each.");
        }

        _transport = transport as ITransport ?? throw new InvalidOperationException(
            $"DuplexPipeProtocol needs a bidirectional stream transport (ITransport); got {transport.GetType().Name}.");
        _loopThreadId = Environment.CurrentManagedThreadId;
        _loopScheduler.Bind(EventLoop.GetRunningLoop());
        PumpOutput();
        _connectionMade?.Invoke(this);
    }

    /// <inheritdoc/>
    public Memory<byte> GetBuffer(int sizeHint)
    {
        if (_inputDone)
        {
            return _discard ??= new byte[MinimumRead];
        }

        var memory = _input.Writer.GetMemory();
        return memory.Length >= MinimumRead ? memory : _input.Writer.GetMemory(MinimumRead);
    }

    /// <inheritdoc/>
    public void BufferUpdated(int bytesWritten)
    {
        if (_inputDone)
        {
            return;
        }

        _input.Writer.Advance(bytesWritten);
        if (_inputFlushPending)
        {
            // A transport may deliver the rest of a chunk after PauseReading: it joins the next flush.
            _inputUnflushed = true;
            return;
        }

        FlushInput();
    }

    /// <inheritdoc/>
    public bool EofReceived()
    {
        _eofReceived = true;
        CompleteInput(null);
        // Keep the write side open for Output (a half-close), unless it is done already or the
        // transport cannot half-close (then asyncio's rule: return false, the transport closes).
        return !_outputDone && _transport!.CanWriteEof;
    }

    /// <inheritdoc/>
    public void ConnectionLost(Exception? exception)
    {
        _lost = true;
        CompleteInput(exception);
        if (_outputReadPending)
        {
            // Wakes the pending read; its continuation finds Output completed and does nothing more.
            _output.Reader.CancelPendingRead();
        }

        // At once, so a flush made from now on reports the loss (throws the exception, or IsCompleted).
        CompleteOutputReader(exception);

        _closed.TrySetResult();
    }

    /// <inheritdoc/>
    public void PauseWriting() => _writingPaused = true;

    /// <inheritdoc/>
    public void ResumeWriting()
    {
        _writingPaused = false;
        if (!_outputReadPending && !_outputDone && _transport is not null)
        {
            PumpOutput();
        }
    }

    // ---- Input: the transport's bytes into the pipe. ----------------------------------------

    private void FlushInput()
    {
        ConfiguredValueTaskAwaitable<FlushResult>.ConfiguredValueTaskAwaiter awaiter;
        try
        {
            // Consumed once: GetResult now, or once by the continuation (CA2012 cannot see through the awaiter).
#pragma warning disable CA2012
            awaiter = _input.Writer.FlushAsync().ConfigureAwait(true).GetAwaiter();
#pragma warning restore CA2012
            if (awaiter.IsCompleted)
            {
                if (awaiter.GetResult().IsCompleted)
                {
                    InputReaderGone();
                }

                return;
            }
        }
        catch (Exception)
        {
            // The reader completed Input with an exception: it reads no more, whatever the reason.
            InputReaderGone();
            return;
        }

        // Over the pause threshold: stop reading until the reader consumes. The continuation comes
        // back on the loop thread (the loop's context is captured here; the scheduler posts there otherwise).
        _inputFlushPending = true;
        _transport!.PauseReading();
        _inputFlush = awaiter;
        awaiter.UnsafeOnCompleted(_onInputFlushed);
    }

    private void OnInputFlushed()
    {
        _inputFlushPending = false;
        bool readerGone;
        try
        {
            readerGone = _inputFlush.GetResult().IsCompleted;
        }
        catch (Exception)
        {
            readerGone = true;
        }

        _inputFlush = default;
        if (_lost || _inputDone)
        {
            return;
        }

        if (readerGone)
        {
            InputReaderGone();
        }
        else if (_inputUnflushed)
        {
            _inputUnflushed = false;
            FlushInput();
            if (_inputFlushPending)
            {
                return;
            }
        }

        if (!_eofReceived && !_lost)
        {
            _transport!.ResumeReading();
        }
    }

    private void InputReaderGone()
    {
        CompleteInput(null);
        if (_inputFlushPending)
        {
            return;
        }

        if (!_eofReceived && !_lost && !_transport!.IsReading)
        {
            _transport.ResumeReading(); // read on, and drop, so the peer is not stalled and its EOF is seen
        }
    }

    private void CompleteInput(Exception? exception)
    {
        if (_inputDone)
        {
            return;
        }

        _inputDone = true;
        _input.Writer.Complete(exception); // commits what was advanced and not flushed yet
    }

    // ---- Output: the pipe's bytes to the transport. ---------------------------------------

    /// <summary>Takes what Output holds and writes it to the transport, until Output is empty (then waits for a flush) or the transport is paused.</summary>
    private void PumpOutput()
    {
        while (!_outputDone && !_writingPaused)
        {
            ConfiguredValueTaskAwaitable<ReadResult>.ConfiguredValueTaskAwaiter awaiter;
            ReadResult result;
            try
            {
                // Consumed once: GetResult now, or once by the continuation (CA2012 cannot see through the awaiter).
#pragma warning disable CA2012
                awaiter = _output.Reader.ReadAsync().ConfigureAwait(true).GetAwaiter();
#pragma warning restore CA2012
                if (!awaiter.IsCompleted)
                {
                    _outputReadPending = true;
                    _outputRead = awaiter;
                    awaiter.UnsafeOnCompleted(_onOutputReadable);
                    return;
                }

                result = awaiter.GetResult();
            }
            catch (Exception ex)
            {
                OutputFailed(ex);
                return;
            }

            WriteToTransport(result);
        }
    }

    private void OnOutputReadable()
    {
        _outputReadPending = false;
        ReadResult result;
        try
        {
            result = _outputRead.GetResult();
        }
        catch (Exception ex)
        {
            _outputRead = default;
            if (!_outputDone)
            {
                OutputFailed(ex); // Output completed with an exception
            }

            return;
        }

        _outputRead = default;
        WriteToTransport(result);
        PumpOutput();
    }

    private void WriteToTransport(ReadResult result)
    {
        if (_outputDone)
        {
            return; // the connection was lost while this read waited: Output is completed already
        }

        var buffer = result.Buffer;

        try
        {
            if (buffer.IsSingleSegment)
            {
                if (!buffer.IsEmpty)
                {
                    _transport!.Write(buffer.FirstSpan);
                }
            }
            else
            {
                foreach (var segment in buffer)
                {
                    _segments.Add(segment);
                }

                _transport!.WriteLines(_segments);
                _segments.Clear();
            }
        }
        catch (Exception ex)
        {
            _segments.Clear();
            _output.Reader.AdvanceTo(buffer.End);
            OutputFailed(ex);
            return;
        }

        _output.Reader.AdvanceTo(buffer.End);
        if (result.IsCompleted)
        {
            // The user completed Output: both directions have ended once the peer's EOF is in too.
            CompleteOutputReader(null);
            if (_transport!.CanWriteEof && !_eofReceived)
            {
                _transport.WriteEof();
            }
            else
            {
                _transport.Close();
            }
        }
    }

    /// <summary>Output was completed with an exception, or the transport refused a write: abort the connection.</summary>
    private void OutputFailed(Exception exception)
    {
        CompleteOutputReader(exception);
        if (!_lost)
        {
            _transport!.Abort();
        }
    }

    private void CompleteOutputReader(Exception? exception)
    {
        if (_outputDone)
        {
            return;
        }

        _outputDone = true;
        _output.Reader.Complete(exception);
    }
}
