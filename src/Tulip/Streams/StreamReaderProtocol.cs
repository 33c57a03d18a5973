using System;
using System.Collections.Generic;
using System.Net.Sockets;
using System.Threading;

namespace Tulip.Streams;

/// <summary>
/// The protocol between a stream transport and a <see cref="LoopStreamReader"/> / <see cref="LoopStreamWriter"/>
/// pair: asyncio's <c>StreamReaderProtocol</c> (with its <c>FlowControlMixin</c>). It feeds the reader
/// and tracks when writing must wait (<see cref="LoopStreamWriter.DrainAsync"/>) and when the connection
/// is closed (<see cref="LoopStreamWriter.WaitClosedAsync"/>).
/// </summary>
/// <remarks>
/// <para>
/// It is an <see cref="IBufferedProtocol"/>: the transport reads straight into the free end of the
/// reader's buffer, with no copy per chunk. Only the public transport and protocol interfaces are
/// used, so it works on every loop and transport kind.
/// </para>
/// <para>
/// With <c>clientConnected</c> (what <see cref="StreamConnections.StartServerAsync"/> gives),
/// <see cref="ConnectionMade"/> makes the <see cref="LoopStreamWriter"/> and starts
/// <c>clientConnected(reader, writer)</c>. If that task fails, its exception goes to the loop's
/// exception handler ("Unhandled exception in client_connected_cb") and the transport is closed; if
/// it is cancelled, the transport is closed.
/// </para>
/// </remarks>
public class StreamReaderProtocol : IBufferedProtocol
{
    private readonly BaseEventLoop _loop;
    private readonly Func<LoopStreamReader, LoopStreamWriter, LoopTask>? _clientConnected;
    private readonly Future<VoidResult> _closed;
    private LoopStreamReader? _reader;
    private IBaseTransport? _transport;
    private LoopStreamWriter? _writer;
    private IBaseTransport? _clientTransport;
    private bool _overTls;

    // FlowControlMixin
    private bool _paused;
    private bool _connectionLost;
    private List<Future<VoidResult>>? _drainWaiters;
    private ReusableFuture<VoidResult>? _drainSlot;

    /// <summary>Makes the protocol for <paramref name="reader"/>.</summary>
    /// <param name="reader">The reader to feed; the protocol works on its loop.</param>
    /// <param name="clientConnected">For a server: called with the reader and a new writer when the connection is made (see the class remarks). Null for a client.</param>
    /// <exception cref="ArgumentNullException"><paramref name="reader"/> is null.</exception>
    public StreamReaderProtocol(LoopStreamReader reader, Func<LoopStreamReader, LoopStreamWriter, LoopTask>? clientConnected = null)
    {
        ArgumentNullException.ThrowIfNull(reader);
        _reader = reader;
        _loop = reader.LoopCore;
        _clientConnected = clientConnected;
        _closed = new Future<VoidResult>(_loop);
    }

    internal BaseEventLoop LoopCore => _loop;

    /// <summary>Done when the connection is lost: with its error, or with no result for a normal close.</summary>
    internal Future<VoidResult> Closed => _closed;

    /// <summary>The transport, from <see cref="ConnectionMade"/> until <see cref="ConnectionLost"/>.</summary>
    internal IBaseTransport? TransportOrNull => _transport;

    /// <summary>The writer made for <c>clientConnected</c>, until the connection is lost.</summary>
    internal LoopStreamWriter? WriterOrNull => _writer;

    /// <summary>After a TLS upgrade: the protocol, its writer's callback and its reader now use <paramref name="transport"/>.</summary>
    internal void ReplaceTransport(ITransport transport)
    {
        _transport = transport;
        if (_clientTransport is not null)
        {
            _clientTransport = transport;
        }

        _overTls = transport.GetExtraInfo("sslcontext") is not null;
    }

    /// <summary>The reader gets the transport for flow control; with <c>clientConnected</c>, the writer is made and the callback started.</summary>
    public virtual void ConnectionMade(IBaseTransport transport)
    {
        ArgumentNullException.ThrowIfNull(transport);
        _transport = transport;
        var reader = _reader;
        if (reader is not null && transport is IReadTransport readTransport)
        {
            reader.SetTransport(readTransport);
        }

        _overTls = transport.GetExtraInfo("sslcontext") is not null;
        if (_clientConnected is null)
        {
            return;
        }

        if (transport is not ITransport stream)
        {
            throw new InvalidOperationException($"A StreamReaderProtocol with a clientConnected callback needs a stream transport (ITransport); got {transport.GetType().Name}.");
        }

        var writer = new LoopStreamWriter(stream, this, reader);
        _writer = writer;
        LoopTask task;
        try
        {
            task = _clientConnected(reader!, writer);
        }
        catch (Exception ex)
        {
            ReportClientConnectedFailure(ex, stream);
            return;
        }

        if (task is null)
        {
            ReportClientConnectedFailure(new InvalidOperationException("The clientConnected callback returned null instead of a LoopTask."), stream);
            return;
        }

        _clientTransport = stream;
        task.AddCallbackCore(static (f, state) => ((StreamReaderProtocol)state!).OnClientConnectedDone((LoopTask)f!), this);
    }

    /// <summary>The reader gets the error (or EOF); the closed future and the drain waiters finish with it.</summary>
    public virtual void ConnectionLost(Exception? exception)
    {
        var reader = _reader;
        if (reader is not null)
        {
            if (exception is null)
            {
                reader.FeedEof();
            }
            else
            {
                reader.SetException(exception);
            }
        }

        if (!_closed.Done)
        {
            if (exception is null)
            {
                _closed.TrySetResult(default);
            }
            else if (exception is OperationCanceledException)
            {
                _closed.Cancel(exception.Message);
            }
            else
            {
                _closed.TrySetException(exception);

                // No one need await it: the error is not "never retrieved" (asyncio's __del__ does the same).
                _closed.MarkExceptionObserved();
            }
        }

        // FlowControlMixin.connection_lost: wake the writers if paused.
        _connectionLost = true;
        if (_paused && _drainWaiters is { } waiters)
        {
            foreach (var waiter in waiters)
            {
                if (waiter.Done)
                {
                    continue;
                }

                if (exception is null)
                {
                    waiter.TrySetResult(default);
                }
                else if (exception is OperationCanceledException)
                {
                    waiter.Cancel(exception.Message);
                }
                else
                {
                    waiter.TrySetException(exception);
                }
            }

            waiters.Clear();
        }

        _reader = null;
        _writer = null;
        _transport = null;
    }

    /// <summary>The free end of the reader's buffer: the transport reads into it directly.</summary>
    public virtual Memory<byte> GetBuffer(int sizeHint)
    {
        var reader = _reader ?? throw new InvalidOperationException("GetBuffer after the connection was lost.");
        return reader.GetFreeMemory(sizeHint);
    }

    /// <summary>The bytes written into the buffer are the reader's now.</summary>
    public virtual void BufferUpdated(int bytesWritten) => _reader?.Advance(bytesWritten);

    /// <summary>Feeds EOF; returns true (keep the write side open) except over TLS, as asyncio does.</summary>
    public virtual bool EofReceived()
    {
        _reader?.FeedEof();
        return !_overTls;
    }

    /// <summary>Writing must wait: <see cref="LoopStreamWriter.DrainAsync"/> waits until <see cref="ResumeWriting"/>.</summary>
    /// <exception cref="InvalidOperationException">Writing is paused already.</exception>
    public virtual void PauseWriting()
    {
        if (_paused)
        {
            throw new InvalidOperationException("PauseWriting called twice without ResumeWriting.");
        }

        _paused = true;
    }

    /// <summary>Writing may go on: every waiting <see cref="LoopStreamWriter.DrainAsync"/> completes, oldest first.</summary>
    /// <exception cref="InvalidOperationException">Writing was not paused.</exception>
    public virtual void ResumeWriting()
    {
        if (!_paused)
        {
            throw new InvalidOperationException("ResumeWriting called without PauseWriting.");
        }

        _paused = false;
        if (_drainWaiters is { } waiters)
        {
            foreach (var waiter in waiters)
            {
                waiter.TrySetResult(default);
            }

            waiters.Clear();
        }
    }

    /// <summary>asyncio's <c>_drain_helper</c>: done at once unless paused; after the connection was lost, a <see cref="SocketException"/> (ConnectionReset).</summary>
    internal ValueFuture<VoidResult> DrainHelper(CancellationToken cancellationToken)
    {
        if (_connectionLost)
        {
            var failed = new Future<VoidResult>(_loop);
            failed.SetException(new SocketException((int)SocketError.ConnectionReset, "Connection lost"));
            return new ValueFuture<VoidResult>(failed);
        }

        if (!_paused)
        {
            return default;
        }

        var waiters = _drainWaiters ??= new List<Future<VoidResult>>(1);
        waiters.RemoveAll(static w => w.Done);

        // A token's callback cancels later, from the loop: a cancellable wait gets a future of its own.
        Future<VoidResult> waiter = cancellationToken.CanBeCanceled
            ? new Future<VoidResult>(_loop)
            : ReusableFuture<VoidResult>.Next(ref _drainSlot, _loop);
        waiters.Add(waiter);
        TaskCancellation.LinkToFuture(waiter, cancellationToken);
        return new ValueFuture<VoidResult>(waiter);
    }

    private void OnClientConnectedDone(LoopTask task)
    {
        var transport = _clientTransport;
        if (task.Cancelled)
        {
            transport?.Close();
            return;
        }

        if (task.Exception() is { } exception)
        {
            ReportClientConnectedFailure(exception, transport);
        }
    }

    private void ReportClientConnectedFailure(Exception exception, IBaseTransport? transport)
    {
        _loop.CallExceptionHandler(new ExceptionContext("Unhandled exception in client_connected_cb")
        {
            Exception = exception,
            Transport = transport,
            Protocol = this,
        });
        transport?.Close();
    }
}
