using System;
using System.Collections.Generic;
using System.Net.Sockets;

namespace Tulip.Extras.Internal;

/// <summary>
/// What both implementations share: the protocol and its call order, the send queue and its flow
/// control (a <see cref="WriteFlowControl"/>), and how the connection starts and ends (a
/// <see cref="TransportLifecycle"/>, the piece every Tulip transport composes). The subclasses supply
/// the I/O: readiness callbacks, or completions. Everything here is owned by the loop thread.
/// </summary>
internal abstract class MessageTransport : IMessageTransport, ITransportLifecycleOwner
{
    private readonly WriteFlowControl _flow;
    private readonly TransportLifecycle _life;
    private bool _socketClosed;
    private bool _handleHeld;
    private Socket? _socketView;

    protected MessageTransport(IEventLoop loop, Socket socket, IMessageProtocol protocol, Future<bool> connected)
    {
        Loop = loop;
        Socket = socket;
        Protocol = protocol;
        _flow = new WriteFlowControl(loop, this);
        _life = new TransportLifecycle(loop, this, "SOCK_SEQPACKET send dropped: the message transport is closed.");
        _life.ScheduleStart(connected);
    }

    protected IEventLoop Loop { get; }

    protected Socket Socket { get; }

    protected IMessageProtocol Protocol { get; private set; }

    /// <summary>Messages waiting to be sent, oldest first; each is a copy the transport owns.</summary>
    protected Queue<byte[]> Queue { get; } = new();

    /// <summary>Bytes in <see cref="Queue"/> plus any send in flight.</summary>
    protected int QueuedBytes { get; set; }

    protected bool Started => _life.IsStarted;

    protected bool Closing => _life.IsClosing;

    protected bool Paused { get; private set; }

    /// <summary>ConnectionLost is scheduled or done: no more I/O, no more protocol calls but that one.</summary>
    protected bool Lost => _life.IsConnectionLost;

    /// <inheritdoc/>
    public bool IsClosing => _life.IsClosing;

    /// <inheritdoc/>
    public bool IsReading => !Paused && !Closing;

    /// <inheritdoc/>
    /// <remarks>"socket" is a <see cref="System.Net.Sockets.Socket"/> over the transport's fd that does not own
    /// it: disposing it leaves the connection alone. It is disposed when the transport closes.</remarks>
    public object? GetExtraInfo(string name, object? defaultValue = null)
    {
        if (name != "socket" || _socketClosed)
        {
            return defaultValue;
        }

        return _socketView ??= new Socket(new SafeSocketHandle(Socket.SafeHandle.DangerousGetHandle(), ownsHandle: false));
    }

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

        if (Closing)
        {
            _life.DropWrite(); // as asyncio's transports: writes after close are dropped
            return;
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

    /// <summary>Closes (buffered data is still sent) and completes once ConnectionLost has run and the fd is closed (<see cref="TransportLifecycle.CloseAndWaitAsync"/>).</summary>
    public System.Threading.Tasks.ValueTask DisposeAsync() => _life.CloseAndWaitAsync();

    /// <inheritdoc/>
    public void Close() => _life.Close(hasPendingWrites: QueuedBytes > 0);

    /// <inheritdoc/>
    public void Abort() => _life.Abort();

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
            _life.FatalError(ex, "Fatal error: protocol.MessageReceived() call failed.");
        }
    }

    /// <summary>The peer closed: EofReceived, then ConnectionLost(null).</summary>
    protected void PeerClosed()
    {
        // Closing, reading stopped, but ConnectionLost not yet scheduled (as if writes were pending): EofReceived comes first.
        _life.Close(hasPendingWrites: true);
        try
        {
            Protocol.EofReceived();
        }
        catch (Exception ex)
        {
            _life.FatalError(ex, "Fatal error: protocol.EofReceived() call failed.");
            return;
        }

        _life.ForceClose(null);
    }

    /// <summary>Bytes of the oldest queued message were sent: account for them and resume the protocol if it drained.</summary>
    protected void Sent(int bytes)
    {
        QueuedBytes -= bytes;
        MaybeResumeProtocol();
        if (QueuedBytes == 0 && Closing)
        {
            _life.ScheduleConnectionLost(null);
        }
    }

    /// <summary>An I/O error: OS errors end the connection quietly (as asyncio), anything else is reported too (<see cref="TransportLifecycle.FatalError"/>).</summary>
    protected void FatalError(Exception ex, string message) => _life.FatalError(ex, message);

    void ITransportLifecycleOwner.OnStarted(object? state, Exception? error)
    {
        var connected = (Future<bool>)state!;
        if (error is not null)
        {
            connected.TrySetException(error);
            return;
        }

        if (!_life.IsStarted)
        {
            // Aborted before it started: the ConnectionLost scheduled meanwhile closes the socket, without calling the protocol.
            connected.TrySetException(new SocketException((int)SocketError.ConnectionAborted));
            return;
        }

        // Held from here until the socket is closed: the readiness implementation registers the raw fd
        // number, which must not be freed (and reused by another connection) under it.
        bool added = false;
        Socket.SafeHandle.DangerousAddRef(ref added);
        _handleHeld = true;
        if (!Closing && !Paused)
        {
            StartReading();
        }

        connected.TrySetResult(true);
    }

    void ITransportLifecycleOwner.OnClosing() => StopReading();

    void ITransportLifecycleOwner.OnForceClose(Exception? error)
    {
        Queue.Clear();
        QueuedBytes = 0;
        StopAll();
    }

    void ITransportLifecycleOwner.OnConnectionLost() => CloseSocket();

    private void CloseSocket()
    {
        if (_socketClosed)
        {
            return;
        }

        _socketClosed = true;
        StopAll();
        _socketView?.Dispose();
        if (_handleHeld)
        {
            // Given up only now, after the fd is deregistered: disposing the socket while it is held would
            // spin in SafeSocketHandle.CloseAsIs until it was released.
            _handleHeld = false;
            Socket.SafeHandle.DangerousRelease();
        }

        Socket.Dispose();
    }

    private void MaybePauseProtocol() => _flow.MaybePause(QueuedBytes);

    private void MaybeResumeProtocol() => _flow.MaybeResume(QueuedBytes);

    /// <inheritdoc/>
    public override string ToString() => $"<{GetType().Name} {_life.StateName} queued={QueuedBytes}>";
}
