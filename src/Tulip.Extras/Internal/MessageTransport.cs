using System;
using System.Collections.Generic;
using System.Net.Sockets;

namespace Tulip.Extras.Internal;

/// <summary>
/// What both implementations share: the protocol and its call order, the send queue and its flow
/// control, and how the connection ends. The subclasses supply the I/O: readiness callbacks, or
/// completions. Everything here is owned by the loop thread.
/// </summary>
internal abstract class MessageTransport : IMessageTransport
{
    private readonly Dictionary<string, object?> _extra;
    private Future<bool>? _connected;
    private readonly WriteFlowControl _flow;
    private bool _socketClosed;

    protected MessageTransport(IEventLoop loop, Socket socket, IMessageProtocol protocol, Future<bool> connected)
    {
        Loop = loop;
        Socket = socket;
        Protocol = protocol;
        _connected = connected;
        _extra = new Dictionary<string, object?>(2) { ["socket"] = socket };
        _flow = new WriteFlowControl(loop, this);
        loop.CallSoon(static t => t.Start(), this);
    }

    protected IEventLoop Loop { get; }

    protected Socket Socket { get; }

    protected IMessageProtocol Protocol { get; private set; }

    /// <summary>Messages waiting to be sent, oldest first; each is a copy the transport owns.</summary>
    protected Queue<byte[]> Queue { get; } = new();

    /// <summary>Bytes in <see cref="Queue"/> plus any send in flight.</summary>
    protected int QueuedBytes { get; set; }

    protected bool Started { get; private set; }

    protected bool Closing { get; private set; }

    protected bool Paused { get; private set; }

    /// <summary>ConnectionLost is scheduled or done: no more I/O, no more protocol calls but that one.</summary>
    protected bool Lost { get; private set; }

    /// <inheritdoc/>
    public bool IsClosing => Closing;

    /// <inheritdoc/>
    public bool IsReading => !Paused && !Closing;

    /// <inheritdoc/>
    public object? GetExtraInfo(string name, object? defaultValue = null) =>
        _extra.TryGetValue(name, out var value) && value is not null ? value : defaultValue;

    /// <inheritdoc/>
    public void SetProtocol(IBaseProtocol protocol)
    {
        ArgumentNullException.ThrowIfNull(protocol);
        Protocol = protocol as IMessageProtocol ?? throw new ArgumentException(
            $"A message transport needs an {nameof(IMessageProtocol)}; got {protocol.GetType().Name}.", nameof(protocol));
    }

    /// <inheritdoc/>
    public IBaseProtocol GetProtocol() => Protocol;

    /// <inheritdoc/>
    public void Send(ReadOnlySpan<byte> message)
    {
        if (message.IsEmpty)
        {
            throw new ArgumentException("A SOCK_SEQPACKET message cannot be empty: the peer could not tell it from the end of the connection.", nameof(message));
        }

        if (message.Length > IMessageTransport.MaxMessageSize)
        {
            throw new ArgumentException(
                $"The message is {message.Length} bytes; the largest is {IMessageTransport.MaxMessageSize} (the receive buffer). Split it, or use a stream transport.",
                nameof(message));
        }

        if (Closing || Lost)
        {
            return; // as asyncio's transports: writes after close are dropped
        }

        if (QueuedBytes == 0 && TrySendNow(message))
        {
            return;
        }

        if (Lost)
        {
            return; // the attempt failed fatally
        }

        Queue.Enqueue(message.ToArray());
        QueuedBytes += message.Length;
        OnQueued();
        MaybePauseProtocol();
    }

    /// <inheritdoc/>
    public void Close()
    {
        if (Closing)
        {
            return;
        }

        Closing = true;
        StopReading();
        if (QueuedBytes == 0)
        {
            ScheduleConnectionLost(null);
        }
    }

    /// <inheritdoc/>
    public void Abort() => ForceClose(null);

    /// <inheritdoc/>
    public void PauseReading()
    {
        if (Closing || Paused)
        {
            return;
        }

        Paused = true;
        StopReading();
    }

    /// <inheritdoc/>
    public void ResumeReading()
    {
        if (Closing || !Paused)
        {
            return;
        }

        Paused = false;
        if (Started)
        {
            StartReading();
        }
    }

    /// <inheritdoc/>
    public int GetWriteBufferSize() => QueuedBytes;

    /// <inheritdoc/>
    public (int Low, int High) GetWriteBufferLimits() => _flow.Limits;

    /// <inheritdoc/>
    public void SetWriteBufferLimits(int? high = null, int? low = null) => _flow.SetLimits(high, low, QueuedBytes);

    // ---- For the implementations ---------------------------------------------------------------

    /// <summary>Tries to send <paramref name="message"/> now; false if it must wait (it is then queued). May end the connection.</summary>
    protected abstract bool TrySendNow(ReadOnlySpan<byte> message);

    /// <summary>A message was queued: arrange for the queue to drain.</summary>
    protected abstract void OnQueued();

    /// <summary>Begin (or go on) delivering messages.</summary>
    protected abstract void StartReading();

    /// <summary>Stop delivering messages.</summary>
    protected abstract void StopReading();

    /// <summary>Stop all I/O: the connection is over.</summary>
    protected abstract void StopAll();

    /// <summary>Hands one received message to the protocol; a protocol that throws ends the connection.</summary>
    protected void Deliver(ReadOnlySpan<byte> message)
    {
        try
        {
            Protocol.MessageReceived(message);
        }
        catch (Exception ex)
        {
            FatalError(ex, "Fatal error: protocol.MessageReceived() call failed.");
        }
    }

    /// <summary>The peer closed: EofReceived, then ConnectionLost(null).</summary>
    protected void PeerClosed()
    {
        Closing = true;
        StopReading();
        try
        {
            Protocol.EofReceived();
        }
        catch (Exception ex)
        {
            FatalError(ex, "Fatal error: protocol.EofReceived() call failed.");
            return;
        }

        ForceClose(null);
    }

    /// <summary>Bytes of the oldest queued message were sent: account for them and resume the protocol if it drained.</summary>
    protected void Sent(int bytes)
    {
        QueuedBytes -= bytes;
        MaybeResumeProtocol();
        if (QueuedBytes == 0 && Closing)
        {
            ScheduleConnectionLost(null);
        }
    }

    /// <summary>An I/O error: socket errors end the connection quietly (as asyncio), anything else is reported too.</summary>
    protected void FatalError(Exception ex, string message)
    {
        if (ex is not SocketException)
        {
            Loop.CallExceptionHandler(new ExceptionContext(message) { Exception = ex, Transport = this, Protocol = Protocol });
        }

        ForceClose(ex);
    }

    private void ForceClose(Exception? ex)
    {
        if (Lost)
        {
            return;
        }

        Closing = true;
        Queue.Clear();
        QueuedBytes = 0;
        StopAll();
        ScheduleConnectionLost(ex);
    }

    private void ScheduleConnectionLost(Exception? ex)
    {
        if (Lost)
        {
            return;
        }

        Lost = true;
        StopAll();
        Loop.CallSoon(static s => s.Transport.CallConnectionLost(s.Error), (Transport: this, Error: ex));
    }

    private void Start()
    {
        var connected = _connected!;
        _connected = null;
        if (Lost)
        {
            connected.TrySetException(new SocketException((int)SocketError.ConnectionAborted));
            CloseSocket();
            return;
        }

        try
        {
            Protocol.ConnectionMade(this);
        }
        catch (Exception ex)
        {
            connected.TrySetException(ex);
            FatalError(ex, "Fatal error: protocol.ConnectionMade() call failed.");
            return;
        }

        Started = true;
        if (!Closing && !Paused)
        {
            StartReading();
        }

        connected.TrySetResult(true);
    }

    private void CallConnectionLost(Exception? ex)
    {
        try
        {
            if (Started)
            {
                Protocol.ConnectionLost(ex);
            }
        }
        catch (Exception callbackError)
        {
            Loop.CallExceptionHandler(new ExceptionContext("Exception in protocol.ConnectionLost()")
            {
                Exception = callbackError,
                Transport = this,
                Protocol = Protocol,
            });
        }
        finally
        {
            CloseSocket();
        }
    }

    private void CloseSocket()
    {
        if (_socketClosed)
        {
            return;
        }

        _socketClosed = true;
        StopAll();
        Socket.Dispose();
    }

    private void MaybePauseProtocol() => _flow.MaybePause(QueuedBytes);

    private void MaybeResumeProtocol() => _flow.MaybeResume(QueuedBytes);

    /// <inheritdoc/>
    public override string ToString() => $"<{GetType().Name} {(Lost ? "closed" : Closing ? "closing" : "open")} queued={QueuedBytes}>";
}
