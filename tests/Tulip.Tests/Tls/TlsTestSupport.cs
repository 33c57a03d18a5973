using System.Net.Sockets;
using Tulip.Streams;
using Tulip.Testing;
using Tulip.Tests.Transports;

namespace Tulip.Tests.Tls;

/// <summary>
/// What the start_tls, layering and streams-over-TLS suites share: a runner that drives the in-memory
/// loop the way TLS needs, a buffered recording protocol, a stream protocol that says how much it has
/// received, and the end-of-test check that nothing is left on the loop.
/// </summary>
internal static class TlsTestSupport
{
    /// <summary>
    /// Runs <paramref name="body"/> on a new loop of <paramref name="kind"/>, failing on any call to the
    /// exception handler (<see cref="TestUtil.Run"/>). On the virtual clock (the memory kind) the run
    /// auto-advances: the loop counts the handshake work SslStream does off the loop thread as its own
    /// and waits for it before it calls itself idle, so the clock never jumps past a handshake in flight.
    /// </summary>
    public static void TlsRun(LoopKind kind, Func<BaseEventLoop, LoopTask> body, List<ExceptionContext>? errors = null) =>
        TestUtil.Run(kind, body, errors: errors);

    /// <summary>How much I/O the loop watches now, for <see cref="AssertNothingLeft"/>: 0 on the memory loop.</summary>
    public static int Registrations(LoopKind kind, BaseEventLoop loop) => kind.Registrations(loop);

    /// <summary>
    /// Checks that the loop is back where it was: it watches no more I/O than at <paramref name="registrations"/>,
    /// every server given holds no connection, and (on the memory loop) every in-memory connection is closed.
    /// </summary>
    public static async LoopTask AssertNothingLeft(LoopKind kind, BaseEventLoop loop, int registrations, params Server[] servers)
    {
        foreach (var server in servers)
        {
            Assert.True(await Until(loop, () => kind.ServerClients(server) == 0), $"the server still holds {kind.ServerClients(server)} connection(s)");
            server.Close();
            await server.WaitClosedAsync();
        }

        Assert.True(await Until(loop, () => kind.Registrations(loop) <= registrations),
            $"the loop still watches {kind.Registrations(loop)} (was {registrations})");
        if (loop is MemoryEventLoop memory)
        {
            foreach (var pair in memory.Connections)
            {
                Assert.True(await Until(loop, () => pair.ClientTransport.IsClosed && pair.ServerTransport.IsClosed),
                    $"an in-memory connection is still open: {pair.ClientTransport} / {pair.ServerTransport}");
            }
        }
    }

    /// <summary>
    /// Yields until <paramref name="condition"/> holds, sleeping a millisecond each time, a bounded number
    /// of times: a hang guard, not a timing (on the virtual clock the sleeps cost no real time).
    /// </summary>
    public static LoopTask<bool> Until(BaseEventLoop loop, Func<bool> condition, int iterations = 5000) =>
        TestUtil.Eventually(condition, iterations);
}

/// <summary>
/// An <see cref="IBufferedProtocol"/> that records what it receives through GetBuffer/BufferUpdated, with
/// small buffers (so a large payload arrives in many calls), and checks the PEP's call order.
/// </summary>
internal sealed class BufferedRecorder : IBufferedProtocol
{
    private readonly ReceivedBytes _received = new();
    private readonly byte[] _buffer;
    private bool _lent;

    public BufferedRecorder(IEventLoop loop, int bufferSize = 1000)
    {
        _buffer = new byte[bufferSize];
        Made = loop.CreateFuture<ITransport>();
        Eof = loop.CreateFuture<bool>();
        Lost = loop.CreateFuture<Exception?>();
    }

    public Future<ITransport> Made { get; }

    public Future<bool> Eof { get; }

    public Future<Exception?> Lost { get; }

    public List<string> Errors { get; } = new();

    public int MadeCount { get; private set; }

    public int BufferCalls { get; private set; }

    public byte[] Received => _received.ToArray();

    public Future<bool> WaitBytes(IEventLoop loop, long count) => _received.WaitFor(loop, count);

    public void ConnectionMade(IBaseTransport transport)
    {
        MadeCount++;
        if (Made.Done) Errors.Add("ConnectionMade twice");
        Made.TrySetResult((ITransport)transport);
    }

    public Memory<byte> GetBuffer(int sizeHint)
    {
        if (Lost.Done) Errors.Add("GetBuffer after ConnectionLost");
        _lent = true;
        return _buffer;
    }

    public void BufferUpdated(int bytesWritten)
    {
        if (!_lent) Errors.Add("BufferUpdated without GetBuffer");
        if (Eof.Done) Errors.Add("data after EofReceived");
        if (bytesWritten <= 0 || bytesWritten > _buffer.Length) Errors.Add($"BufferUpdated({bytesWritten})");
        _lent = false;
        BufferCalls++;
        _received.Add(_buffer.AsSpan(0, Math.Clamp(bytesWritten, 0, _buffer.Length)));
    }

    public bool EofReceived()
    {
        if (Eof.Done) Errors.Add("EofReceived twice");
        Eof.TrySetResult(true);
        return false;
    }

    public void ConnectionLost(Exception? exception)
    {
        if (Lost.Done) Errors.Add("ConnectionLost twice");
        Lost.TrySetResult(exception);
        _received.End();
    }

    public void PauseWriting()
    {
    }

    public void ResumeWriting()
    {
    }
}

/// <summary>
/// A <see cref="StreamReaderProtocol"/> that also says how many bytes its transport delivered (before a
/// TLS upgrade takes the transport's bytes away from it), so a test can let the peer's first TLS records
/// reach the reader's buffer before the upgrade: the read-ahead that CPython gh-142352 feeds to TLS.
/// </summary>
internal sealed class CountingStreamProtocol(IEventLoop loop, LoopStreamReader reader, Func<LoopStreamReader, LoopStreamWriter, LoopTask>? clientConnected = null)
    : StreamReaderProtocol(reader, clientConnected)
{
    private long _count;
    private (long Count, Future<bool> Future)? _waiter;

    public LoopStreamReader Reader { get; } = reader;

    /// <summary>Completes once the transport delivered at least <paramref name="count"/> bytes.</summary>
    public Future<bool> WaitReceived(long count)
    {
        var f = loop.CreateFuture<bool>();
        if (_count >= count)
        {
            f.SetResult(true);
        }
        else
        {
            _waiter = (count, f);
        }

        return f;
    }

    public override void BufferUpdated(int bytesWritten)
    {
        base.BufferUpdated(bytesWritten);
        _count += bytesWritten;
        if (_waiter is { } w && _count >= w.Count)
        {
            _waiter = null;
            w.Future.TrySetResult(true);
        }
    }
}

/// <summary>
/// A third party's stream transport, written outside the library against the public interfaces only:
/// two ends joined by in-process queues, each write delivered to the peer on a later loop iteration
/// (<see cref="IEventLoop.CallSoon"/>) with <see cref="IProtocol.DataReceived"/> (never the buffered
/// path), in chunks of at most <see cref="ChunkSize"/> bytes. Close sends what is queued, then EOF; Abort
/// resets the peer. No write buffer of its own (the peer always takes the bytes).
/// </summary>
internal sealed class QueueTransport : ITransport
{
    private readonly IEventLoop _loop;
    private readonly Queue<byte[]> _inbound = new();
    private readonly Dictionary<string, object?> _extra;
    private IBaseProtocol _protocol;
    private QueueTransport _peer = null!;
    private int _headOffset;
    private bool _reading = true;
    private bool _deliveryScheduled;
    private bool _eofIn;
    private bool _eofDelivered;
    private bool _writeClosed;
    private bool _closing;
    private bool _lost;
    private Exception? _lostError;

    private QueueTransport(IEventLoop loop, IBaseProtocol protocol, string name)
    {
        _loop = loop;
        _protocol = protocol;
        _extra = new Dictionary<string, object?> { ["peername"] = name == "client" ? "queue-server" : "queue-client", ["sockname"] = "queue-" + name };
    }

    /// <summary>At most this many bytes per DataReceived.</summary>
    public int ChunkSize { get; set; } = 4096;

    public bool IsClosed => _lost;

    /// <summary>Joins two protocols; each gets ConnectionMade on the next iteration (the server's first).</summary>
    public static (QueueTransport Client, QueueTransport Server) Pair(IEventLoop loop, IBaseProtocol client, IBaseProtocol server, int chunkSize = 4096)
    {
        var c = new QueueTransport(loop, client, "client") { ChunkSize = chunkSize };
        var s = new QueueTransport(loop, server, "server") { ChunkSize = chunkSize };
        c._peer = s;
        s._peer = c;
        loop.CallSoon(() => s._protocol.ConnectionMade(s));
        loop.CallSoon(() => c._protocol.ConnectionMade(c));
        return (c, s);
    }

    public object? GetExtraInfo(string name, object? defaultValue = null) => _extra.TryGetValue(name, out var v) ? v : defaultValue;

    public bool IsClosing => _closing || _lost;

    public void SetProtocol(IBaseProtocol protocol) => _protocol = protocol ?? throw new ArgumentNullException(nameof(protocol));

    public IBaseProtocol GetProtocol() => _protocol;

    public bool IsReading => _reading && !_closing && !_lost;

    public void PauseReading() => _reading = false;

    public void ResumeReading()
    {
        _reading = true;
        ScheduleDelivery();
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        if (_writeClosed)
        {
            throw new InvalidOperationException("QueueTransport: write after WriteEof or Close.");
        }

        if (_lost || data.IsEmpty)
        {
            return;
        }

        _peer.Enqueue(data.ToArray());
    }

    public void WriteLines(IEnumerable<ReadOnlyMemory<byte>> data)
    {
        foreach (var d in data)
        {
            Write(d.Span);
        }
    }

    public void WriteEof()
    {
        if (_writeClosed)
        {
            return;
        }

        _writeClosed = true;
        _peer.EnqueueEof();
    }

    public bool CanWriteEof => true;

    public void Close()
    {
        if (_closing || _lost)
        {
            return;
        }

        _closing = true;
        WriteEof();
        // The peer sees the EOF after the queued bytes; this end is done once it is.
        _loop.CallSoon(() => Lose(null));
    }

    public void Abort()
    {
        if (_lost)
        {
            return;
        }

        _closing = true;
        _writeClosed = true;
        _peer.Reset();
        _loop.CallSoon(() => Lose(null));
    }

    public int GetWriteBufferSize() => 0;

    public (int Low, int High) GetWriteBufferLimits() => (0, 0);

    public void SetWriteBufferLimits(int? high = null, int? low = null)
    {
    }

    private void Enqueue(byte[] data)
    {
        if (_lost || _eofIn)
        {
            return;
        }

        _inbound.Enqueue(data);
        ScheduleDelivery();
    }

    private void EnqueueEof()
    {
        _eofIn = true;
        ScheduleDelivery();
    }

    private void Reset()
    {
        _inbound.Clear();
        _headOffset = 0;
        _lostError = new SocketException((int)SocketError.ConnectionReset);
        _loop.CallSoon(() => Lose(_lostError));
    }

    private void ScheduleDelivery()
    {
        if (_deliveryScheduled || _lost)
        {
            return;
        }

        _deliveryScheduled = true;
        _loop.CallSoon(Deliver);
    }

    private void Deliver()
    {
        _deliveryScheduled = false;
        while (_reading && !_lost && _inbound.Count > 0)
        {
            var head = _inbound.Peek();
            int n = Math.Min(head.Length - _headOffset, ChunkSize);
            int at = _headOffset;
            _headOffset += n;
            if (_headOffset == head.Length)
            {
                _inbound.Dequeue();
                _headOffset = 0;
            }

            ((IProtocol)_protocol).DataReceived(head.AsSpan(at, n));
        }

        if (_reading && !_lost && _eofIn && _inbound.Count == 0 && !_eofDelivered)
        {
            _eofDelivered = true;
            if (!((IProtocol)_protocol).EofReceived())
            {
                Close();
            }
        }
    }

    private void Lose(Exception? error)
    {
        if (_lost)
        {
            return;
        }

        _lost = true;
        _closing = true;
        _inbound.Clear();
        _protocol.ConnectionLost(error);
    }
}
