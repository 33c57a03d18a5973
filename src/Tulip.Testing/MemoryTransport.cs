using System;
using System.Collections.Generic;
using System.Text;
using Tulip.Testing.Internal;

namespace Tulip.Testing;

/// <summary>
/// A stream transport with no socket behind it (Twisted's <c>StringTransport</c>): it records what
/// the protocol writes, and the test plays the peer, delivering data, EOF and connection loss.
/// It keeps the whole <see cref="ITransport"/> contract, write-buffer marks and flow control
/// included, and calls the protocol through the loop as a real transport does.
/// </summary>
/// <remarks>
/// <para>
/// Calls reach the protocol as from a socket transport: <see cref="IBaseProtocol.ConnectionMade"/>
/// is scheduled when the transport is created; each <see cref="DeliverData(ReadOnlySpan{byte})"/>
/// becomes one <see cref="IProtocol.DataReceived"/> (or <see cref="IBufferedProtocol.GetBuffer"/> /
/// <see cref="IBufferedProtocol.BufferUpdated"/> rounds) on a later iteration, in order, held back
/// while reading is paused; <see cref="IBaseProtocol.ConnectionLost"/> comes last, once. Run the loop
/// (<see cref="TestEventLoop.RunUntilIdle"/>) to let them happen.
/// </para>
/// <para>
/// Writes: what the protocol writes goes to <see cref="Written"/> (the wire, as the peer would
/// read it) while <see cref="PeerAcceptsWrites"/> is true. Set it false to simulate a slow peer:
/// writes then stay in the write buffer (<see cref="GetWriteBufferSize"/>), the protocol is paused
/// above the high-water mark and resumed at the low one as <see cref="FlushWrites"/> lets them out.
/// <see cref="Close"/> flushes before the connection is lost; <see cref="Abort"/> drops the buffer.
/// Writes after <see cref="Close"/> or <see cref="Abort"/> are ignored, as a closed socket's are.
/// </para>
/// <para>
/// Errors from the protocol's callbacks are fatal to the connection, as on a socket: they go to
/// the loop's exception handler and the protocol loses the connection with that exception.
/// All members are for the loop thread.
/// </para>
/// </remarks>
public class MemoryTransport : ITransport
{
    /// <summary>asyncio's default high-water mark: 64 KiB (<see cref="WriteFlowControl.DefaultHighWater"/>).</summary>
    public const int DefaultHighWaterMark = WriteFlowControl.DefaultHighWater;

    private readonly IEventLoop _loop;
    private readonly Dictionary<string, object?> _extra;
    private readonly ByteQueue _wire = new();
    private readonly ByteQueue _buffer = new();
    // Inbound items waiting for the protocol: byte[] for data, null for EOF.
    private readonly Queue<byte[]?> _inbound = new();
    private readonly WriteFlowControl _flow;
    private IBaseProtocol _protocol;
    private bool _peerAcceptsWrites = true;
    private bool _reading = true;
    private bool _deliveryScheduled;
    private bool _closing;
    private bool _lostScheduled;
    private bool _eofReceived;
    // Null until a dispose waits; completed and cleared once ConnectionLost has run.
    private Future<VoidResult>? _disposeWaiter;

    /// <summary>
    /// Creates the transport for <paramref name="protocol"/> and schedules its
    /// <see cref="IBaseProtocol.ConnectionMade"/> on <paramref name="loop"/>.
    /// </summary>
    /// <param name="loop">The loop that calls the protocol; usually a <see cref="TestEventLoop"/>.</param>
    /// <param name="protocol">The protocol under test: an <see cref="IProtocol"/> or an <see cref="IBufferedProtocol"/> to receive data.</param>
    /// <param name="extra">What <see cref="GetExtraInfo"/> answers ("peername", "sockname", ...); more can be set with <see cref="SetExtraInfo"/>.</param>
    public MemoryTransport(IEventLoop loop, IBaseProtocol protocol, IReadOnlyDictionary<string, object?>? extra = null)
    {
        ArgumentNullException.ThrowIfNull(loop);
        ArgumentNullException.ThrowIfNull(protocol);
        _loop = loop;
        _protocol = protocol;
        _extra = extra is null ? new() : new(extra);
        _flow = new WriteFlowControl(loop, this);
        _loop.CallSoon(static t => t.MakeConnection(), this);
    }

    /// <summary>The loop that calls the protocol.</summary>
    public IEventLoop Loop => _loop;

    /// <summary>Bytes written and not yet taken by <see cref="TakeWritten()"/>, as the peer would read them.</summary>
    public byte[] Written => _wire.Span.ToArray();

    /// <summary><see cref="Written"/> decoded as UTF-8.</summary>
    public string WrittenText => Encoding.UTF8.GetString(_wire.Span);

    /// <summary>
    /// True (the default) while the peer takes everything written at once. False simulates a slow
    /// peer: writes stay in the write buffer until <see cref="FlushWrites"/>. Setting it back to true
    /// flushes the buffer.
    /// </summary>
    public bool PeerAcceptsWrites
    {
        get => _peerAcceptsWrites;
        set
        {
            _peerAcceptsWrites = value;
            if (value)
            {
                FlushWrites();
            }
        }
    }

    /// <summary>True while the protocol is paused (its <see cref="IBaseProtocol.PauseWriting"/> was called last).</summary>
    public bool IsWritingPaused => _flow.IsPaused;

    /// <summary>True once the protocol called <see cref="WriteEof"/>.</summary>
    public bool EofWritten { get; private set; }

    /// <summary>True once the protocol (or the test) called <see cref="Abort"/>.</summary>
    public bool WasAborted { get; private set; }

    /// <summary>True once <see cref="IBaseProtocol.ConnectionLost"/> has been called.</summary>
    public bool IsClosed { get; private set; }

    /// <summary>The exception the protocol's connection was lost with (null for a clean close), once <see cref="IsClosed"/>.</summary>
    public Exception? CloseException { get; private set; }

    /// <summary>How often the protocol called <see cref="PauseReading"/> and <see cref="ResumeReading"/>, in order ("pause", "resume"): flow-control decisions a test can assert on.</summary>
    public IReadOnlyList<string> ReadingCalls => _readingCalls;

    private readonly List<string> _readingCalls = new();

    /// <inheritdoc/>
    public bool IsClosing => _closing;

    /// <inheritdoc/>
    public bool IsReading => _reading && !_closing;

    /// <summary>Whether <see cref="WriteEof"/> is supported. Defaults to true (as TCP); set false to test a protocol against a TLS-like transport.</summary>
    public bool CanWriteEof { get; set; } = true;

    // ---- Hooks for the connected pair: the wire and what was sent on it. -----------------------

    /// <summary>Called (synchronously) when bytes, a FIN or a reset were put on the wire.</summary>
    internal Action? WireChanged { get; set; }

    /// <summary>Called once the protocol's <see cref="IBaseProtocol.ConnectionMade"/> has returned.</summary>
    internal Action? Connected { get; set; }

    /// <summary>Called once the protocol's <see cref="IBaseProtocol.ConnectionLost"/> has returned.</summary>
    internal Action? Lost { get; set; }

    /// <summary>True once a FIN is on the wire: the write side was shut (WriteEof or Close) and the buffer is flushed.</summary>
    internal bool FinSent => (EofWritten || (_closing && !WasAborted)) && _buffer.Count == 0;

    internal int WireCount => _wire.Count;

    // ---- The test's side: reading what was written, playing the peer. ----------------------

    /// <summary>Returns what was written since the last call, and forgets it.</summary>
    public byte[] TakeWritten() => _wire.Take(int.MaxValue);

    /// <summary>Returns at most <paramref name="maxBytes"/> of what was written, and forgets them.</summary>
    public byte[] TakeWritten(int maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        return _wire.Take(maxBytes);
    }

    /// <summary>Returns what was written since the last call as UTF-8 text, and forgets it.</summary>
    public string TakeWrittenText() => Encoding.UTF8.GetString(TakeWritten());

    /// <summary>Sets (or replaces) what <see cref="GetExtraInfo"/> answers for <paramref name="name"/>.</summary>
    public void SetExtraInfo(string name, object? value) => _extra[name] = value;

    /// <summary>
    /// The peer sent <paramref name="data"/>: it reaches the protocol as one call, on a later
    /// iteration, after what was delivered before, and not while reading is paused. Ignored once
    /// the transport is closing or EOF was delivered (a closed socket reads nothing more).
    /// </summary>
    public void DeliverData(ReadOnlySpan<byte> data)
    {
        if (_closing || _eofReceived || data.IsEmpty)
        {
            return;
        }

        _inbound.Enqueue(data.ToArray());
        ScheduleDelivery();
    }

    /// <summary>The peer sent <paramref name="text"/>, encoded as UTF-8.</summary>
    public void DeliverData(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        DeliverData(Encoding.UTF8.GetBytes(text));
    }

    /// <summary>
    /// The peer shut its write side: after the data delivered before, the protocol's
    /// <c>EofReceived</c> is called, and unless it returns true the transport closes itself.
    /// </summary>
    public void DeliverEof()
    {
        if (_closing || _eofReceived)
        {
            return;
        }

        _eofReceived = true;
        _inbound.Enqueue(null);
        ScheduleDelivery();
    }

    /// <summary>
    /// The connection broke (or, with null, was closed by the peer): data not yet delivered and the
    /// write buffer are dropped, and the protocol's <see cref="IBaseProtocol.ConnectionLost"/> is
    /// called with <paramref name="exception"/> soon. The peer of a reset connection passes
    /// <c>new SocketException((int)SocketError.ConnectionReset)</c>.
    /// </summary>
    public void DeliverConnectionLost(Exception? exception = null)
    {
        if (_lostScheduled)
        {
            return;
        }

        _closing = true;
        _inbound.Clear();
        _buffer.Clear();
        ScheduleLost(exception);
    }

    /// <summary>
    /// The slow peer read <paramref name="maxBytes"/> (all if null) of the write buffer: they move to
    /// <see cref="Written"/>; the protocol is resumed once the buffer is at or below the low-water
    /// mark, and a pending close completes once it is empty. Returns the bytes moved.
    /// </summary>
    public int FlushWrites(int? maxBytes = null)
    {
        int n = Math.Min(_buffer.Count, maxBytes ?? int.MaxValue);
        if (n < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxBytes), maxBytes, "Flush a non-negative number of bytes.");
        }

        if (n > 0)
        {
            _wire.Append(_buffer.Take(n));
        }

        MaybeResumeProtocol();
        if (_buffer.Count == 0 && _closing && !_lostScheduled)
        {
            ScheduleLost(null);
        }

        if (n > 0 || FinSent)
        {
            WireChanged?.Invoke();
        }

        return n;
    }

    // ---- ITransport -----------------------------------------------------------------------

    /// <inheritdoc/>
    public object? GetExtraInfo(string name, object? defaultValue = null) =>
        _extra.TryGetValue(name, out var value) ? value : defaultValue;

    /// <inheritdoc/>
    public void SetProtocol(IBaseProtocol protocol)
    {
        ArgumentNullException.ThrowIfNull(protocol);
        _protocol = protocol;
    }

    /// <inheritdoc/>
    public IBaseProtocol GetProtocol() => _protocol;

    /// <inheritdoc/>
    public void PauseReading()
    {
        if (_closing || !_reading)
        {
            return;
        }

        _reading = false;
        _readingCalls.Add("pause");
    }

    /// <inheritdoc/>
    public void ResumeReading()
    {
        if (_closing || _reading)
        {
            return;
        }

        _reading = true;
        _readingCalls.Add("resume");
        if (_inbound.Count > 0)
        {
            ScheduleDelivery();
        }
    }

    /// <inheritdoc/>
    public void Write(ReadOnlySpan<byte> data)
    {
        if (EofWritten)
        {
            throw new InvalidOperationException("Cannot write after WriteEof(): the write side is shut.");
        }

        if (_closing || data.IsEmpty)
        {
            return;
        }

        if (_peerAcceptsWrites && _buffer.Count == 0)
        {
            _wire.Append(data);
            WireChanged?.Invoke();
            return;
        }

        _buffer.Append(data);
        MaybePauseProtocol();
    }

    /// <inheritdoc/>
    public void WriteLines(IEnumerable<ReadOnlyMemory<byte>> data)
    {
        ArgumentNullException.ThrowIfNull(data);
        foreach (var chunk in data)
        {
            Write(chunk.Span);
        }
    }

    /// <inheritdoc/>
    public void WriteEof()
    {
        if (!CanWriteEof)
        {
            throw new NotSupportedException("This transport cannot half-close (CanWriteEof is false).");
        }

        if (_closing || EofWritten)
        {
            return;
        }

        EofWritten = true;
        if (_buffer.Count == 0)
        {
            WireChanged?.Invoke();
        }
    }

    /// <inheritdoc/>
    public void Close()
    {
        if (_closing)
        {
            return;
        }

        _closing = true;
        _inbound.Clear();
        if (_buffer.Count == 0)
        {
            ScheduleLost(null);
            WireChanged?.Invoke();
        }
    }

    /// <inheritdoc/>
    public void Abort() => ForceClose(null);

    /// <summary>
    /// Closes as <see cref="Close"/> does and completes once the connection is over: the protocol's
    /// <see cref="IBaseProtocol.ConnectionLost"/> has run (<see cref="IsClosed"/>), as a socket
    /// transport's dispose does. A write buffer the peer does not take
    /// (<see cref="PeerAcceptsWrites"/> false) holds it until <see cref="FlushWrites"/> or
    /// <see cref="Abort"/>; cancelling the waiting task ends only the wait.
    /// </summary>
    /// <remarks>Call it from inside the running loop (a loop task or callback), as any loop await.</remarks>
    /// <exception cref="InvalidOperationException">Not on the loop thread, or the loop is not a <see cref="BaseEventLoop"/>.</exception>
    public System.Threading.Tasks.ValueTask DisposeAsync()
    {
        var loop = EndOfTransportWait.CheckLoop(_loop, this);
        GC.SuppressFinalize(this); // CA1816: for a subclass that adds a finalizer
        Close();
        return IsClosed ? default : EndOfTransportWait.Wait(loop, ref _disposeWaiter);
    }

    /// <inheritdoc/>
    public int GetWriteBufferSize() => _buffer.Count;

    /// <inheritdoc/>
    public (int Low, int High) GetWriteBufferLimits() => _flow.Limits;

    /// <inheritdoc/>
    /// <remarks>Unlike a socket's, this also resumes a paused protocol at once when the buffer is at or below the new low mark.</remarks>
    public void SetWriteBufferLimits(int? high = null, int? low = null)
    {
        _flow.SetLimits(high, low, _buffer.Count);
        MaybeResumeProtocol();
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"<MemoryTransport {(IsClosed ? "closed" : _closing ? "closing" : "open")} written={_wire.Count} buffered={_buffer.Count}>";

    // ---- Internals ------------------------------------------------------------------------

    private void ForceClose(Exception? exception)
    {
        if (_lostScheduled)
        {
            return;
        }

        WasAborted = true;
        _closing = true;
        _inbound.Clear();
        _buffer.Clear();
        ScheduleLost(exception);
        WireChanged?.Invoke();
    }

    private void MakeConnection()
    {
        _protocol.ConnectionMade(this);
        Connected?.Invoke();
    }

    private void ScheduleDelivery()
    {
        if (_deliveryScheduled || !_reading)
        {
            return;
        }

        _deliveryScheduled = true;
        _loop.CallSoon(static t => t.Deliver(), this);
    }

    private void Deliver()
    {
        _deliveryScheduled = false;
        while (_reading && !_closing && _inbound.TryDequeue(out var item))
        {
            try
            {
                if (item is null)
                {
                    bool keepOpen = _protocol switch
                    {
                        IProtocol p => p.EofReceived(),
                        IBufferedProtocol b => b.EofReceived(),
                        _ => false,
                    };
                    if (!keepOpen)
                    {
                        Close();
                    }
                }
                else if (_protocol is IBufferedProtocol buffered)
                {
                    DeliverBuffered(buffered, item);
                }
                else if (_protocol is IProtocol stream)
                {
                    stream.DataReceived(item);
                }
                else
                {
                    throw new InvalidOperationException($"{_protocol.GetType().Name} is neither an IProtocol nor an IBufferedProtocol: a stream transport cannot deliver data to it.");
                }
            }
            catch (Exception ex)
            {
                FatalError(ex, item is null ? "Fatal error: protocol.EofReceived() call failed." : "Fatal error: protocol.DataReceived() call failed.");
                return;
            }
        }
    }

    private static void DeliverBuffered(IBufferedProtocol protocol, byte[] data)
    {
        int offset = 0;
        while (offset < data.Length)
        {
            var buffer = protocol.GetBuffer(data.Length - offset);
            if (buffer.IsEmpty)
            {
                throw new InvalidOperationException("GetBuffer() returned an empty buffer.");
            }

            int n = Math.Min(buffer.Length, data.Length - offset);
            data.AsSpan(offset, n).CopyTo(buffer.Span);
            offset += n;
            protocol.BufferUpdated(n);
        }
    }

    private void FatalError(Exception exception, string message)
    {
        _loop.CallExceptionHandler(new ExceptionContext(message) { Exception = exception, Transport = this, Protocol = _protocol });
        ForceClose(exception);
    }

    private void ScheduleLost(Exception? exception)
    {
        _lostScheduled = true;
        _loop.CallSoon(static s => s.Transport.CallConnectionLost(s.Exception), (Transport: this, Exception: exception));
    }

    private void CallConnectionLost(Exception? exception)
    {
        IsClosed = true;
        CloseException = exception;
        try
        {
            _protocol.ConnectionLost(exception);
        }
        finally
        {
            EndOfTransportWait.End(ref _disposeWaiter);
            Lost?.Invoke();
        }
    }

    private void MaybePauseProtocol() => _flow.MaybePause(_buffer.Count);

    private void MaybeResumeProtocol() => _flow.MaybeResume(_buffer.Count);
}
