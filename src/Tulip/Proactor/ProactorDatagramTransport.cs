using System;
using System.Buffers;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;

namespace Tulip;

/// <summary>
/// A datagram transport over a socket on a <see cref="ProactorEventLoop"/>: asyncio's
/// <c>_ProactorDatagramTransport</c>. Used for UDP (IPv4, IPv6) and UNIX datagram sockets alike,
/// with the contract of the selector loop's <see cref="SelectorDatagramTransport"/>.
/// </summary>
/// <remarks>
/// <para>
/// Receiving: one receive (<c>ReceiveFromAsync</c>) outstanding at a time, on a reusable operation,
/// into a buffer of the transport's (64 KiB for UDP, which holds any UDP datagram; 256 KiB for UNIX
/// datagrams); one <see cref="IDatagramProtocol.DatagramReceived"/> per datagram. Receives that
/// complete at once are handled in the same callback, up to <see cref="MaxDatagramsPerCompletion"/>,
/// then the transport yields to the loop. A datagram larger than the buffer (the runtime reports it
/// truncated) goes to <see cref="IDatagramProtocol.ErrorReceived"/>, never delivered cut short. The
/// runtime keeps the sender's <see cref="EndPoint"/> while the sender does not change; a bounded
/// cache makes each sender one object, as the selector loop's transport does.
/// </para>
/// <para>
/// Sending: <see cref="SendTo"/> sends at once (a non-blocking send) when nothing is buffered, and
/// buffers a datagram only when the socket would block; the buffer then goes out by one
/// asynchronous send at a time, in order. Per-datagram errors (ICMP errors surfacing as
/// ECONNREFUSED, or ECONNRESET on Windows; EMSGSIZE; EACCES for a broadcast without SO_BROADCAST) go
/// to <see cref="IDatagramProtocol.ErrorReceived"/> and the endpoint stays usable.
/// </para>
/// <para>
/// The lifecycle is the shared <see cref="TransportLifecycle"/>, the addressing the shared
/// <see cref="DatagramAddressing"/>, flow control the shared <see cref="WriteFlowControl"/>.
/// Everything here is owned by the loop thread; only <see cref="ProactorOperation"/>'s completion
/// runs elsewhere.
/// </para>
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Reliability", "CA1001", Justification =
    "The operations are disposed when the endpoint is lost, or by their own completion if one is in flight then; a transport is not disposed, it is closed.")]
internal sealed class ProactorDatagramTransport : IDatagramTransport, ITransportLifecycleOwner
{
    /// <summary>
    /// Receives handled per callback at most when they complete at once: the selector loop's number
    /// (libuv's <c>uv__udp_recvmsg</c> reads 32 before going back to the loop), enough to drain a
    /// burst in one go, few enough that one busy socket cannot starve the others.
    /// </summary>
    internal const int MaxDatagramsPerCompletion = 32;

    /// <summary>The receive buffer of a UDP socket: 64 KiB holds the largest UDP datagram (65,507 bytes over IPv4, 65,527 over IPv6).</summary>
    internal const int UdpReadSize = 64 * 1024;

    private const string DroppedWriteWarning = "socket.sendto() raised exception: the datagram transport is closed, the datagram was dropped.";

    private readonly ProactorEventLoop _loop;
    private readonly Socket _socket;
    private readonly WriteFlowControl _flow;
    private readonly TransportLifecycle _life;
    private readonly DatagramAddressing _addressing;
    private readonly ProactorOperation _recv;
    private readonly ProactorOperation _send;
    private readonly EndPoint? _sockname;
    private readonly EndPoint? _peername;
    private readonly int _readSize;
    private Socket? _socketView;    // GetExtraInfo("socket"): made on first request, does not own the socket
    private IBaseProtocol _protocol = null!;
    private IDatagramProtocol _datagramProtocol = null!;

    private byte[]? _readBuffer;    // rented while the transport reads; every receive lands here
    private bool _awaitingBind;     // an unbound socket cannot receive yet: the first send binds it

    // The senders seen, each one object: the runtime's EndPoint -> the one handed to the protocol.
    private readonly Dictionary<EndPoint, EndPoint> _senders = new();
    private EndPoint? _lastFrom;    // the runtime's EndPoint of the last datagram, and what it was mapped to
    private EndPoint? _lastSender;

    // The send backlog, one entry per datagram, oldest first; payloads are rented arrays. The one in
    // flight is out of the queue (the runtime sends from its array until the send completes).
    private readonly Queue<PendingDatagram> _pending = new();
    private PendingDatagram? _sending;
    private int _bufferSize;

    private bool _closedByUser;     // Close or Abort: SendTo is then a usage error
    private bool _socketClosed;

    internal ProactorDatagramTransport(ProactorEventLoop loop, Socket socket, IDatagramProtocol protocol, EndPoint? remote, EndPoint? remoteAsGiven,
        Future<VoidResult>? waiter)
    {
        _loop = loop;
        _socket = socket;
        _sockname = SocketViews.TryEndPoint(socket, local: true);
        _peername = SocketViews.TryEndPoint(socket, local: false);
        _addressing = new DatagramAddressing(socket, _peername, remote, remoteAsGiven);
        _readSize = socket.AddressFamily == AddressFamily.Unix ? DatagramAddressing.MaxUnixDatagramSize : UdpReadSize;
        _flow = new WriteFlowControl(loop, this);
        _life = new TransportLifecycle(loop, this, DroppedWriteWarning);
        _recv = new ProactorOperation(loop, loop.MakeCompletionHandle(static t => t.OnReceiveCompleted(), this));
        _send = new ProactorOperation(loop, loop.MakeCompletionHandle(static t => t.OnSendCompleted(), this));
        // The runtime writes each sender here, and keeps the object while the sender does not change.
        _recv.RemoteEndPoint = _addressing.Template;
        SetProtocol(protocol);
        _life.ScheduleStart(waiter);
        loop.ClaimSocket(socket, this);
    }

    /// <inheritdoc/>
    public bool IsClosing => _life.IsClosing;

    private bool HasPendingWrites => _sending is not null || _pending.Count > 0;

    /// <inheritdoc/>
    /// <remarks>"socket" is a <see cref="Socket"/> over the transport's socket that does not own it:
    /// options can be read and set on it, and disposing it does not close the endpoint. It is disposed
    /// when the transport closes.</remarks>
    public object? GetExtraInfo(string name, object? defaultValue = null) => name switch
    {
        "socket" => _life.IsClosed || _socketClosed ? defaultValue : SocketView(),
        "sockname" => _sockname ?? defaultValue,
        "peername" => _peername ?? defaultValue,
        _ => defaultValue,
    };

    private Socket SocketView() => _socketView ??= SocketViews.NonOwning(_socket.Handle);

    /// <inheritdoc/>
    public void SetProtocol(IBaseProtocol protocol)
    {
        ArgumentNullException.ThrowIfNull(protocol);
        _datagramProtocol = protocol as IDatagramProtocol
            ?? throw new ArgumentException($"A datagram transport needs an {nameof(IDatagramProtocol)}; got {protocol.GetType().Name}.", nameof(protocol));
        _protocol = protocol;
    }

    /// <inheritdoc/>
    public IBaseProtocol GetProtocol() => _protocol;

    /// <inheritdoc/>
    public override string ToString() => $"<ProactorDatagramTransport {_life.StateName} buffered={_pending.Count + (_sending is null ? 0 : 1)} datagrams>";

    // ---- Lifecycle -------------------------------------------------------------------------

    /// <summary>Closes (buffered data is still sent) and completes once ConnectionLost has run and the fd is closed (<see cref="TransportLifecycle.CloseAndWaitAsync"/>).</summary>
    public System.Threading.Tasks.ValueTask DisposeAsync() => _life.CloseAndWaitAsync();

    /// <inheritdoc/>
    /// <remarks>Buffered datagrams are still sent; then the socket closes and <see cref="IBaseProtocol.ConnectionLost"/> is called with null.</remarks>
    public void Close()
    {
        _closedByUser = true;
        _life.Close(HasPendingWrites);
    }

    /// <inheritdoc/>
    public void Abort()
    {
        _closedByUser = true;
        _life.Abort();
    }

    void ITransportLifecycleOwner.OnStarted(object? state, Exception? error)
    {
        var waiter = (Future<VoidResult>?)state;
        if (error is not null)
        {
            waiter?.TrySetException(error);
            return;
        }

        if (!_life.IsStarted)
        {
            // Aborted before it started (a cancelled create).
            waiter?.TrySetException(new SocketException((int)SocketError.ConnectionAborted));
            return;
        }

        if (!_life.IsClosing)
        {
            StartReceive();
        }

        waiter?.TrySetResult(default);
    }

    void ITransportLifecycleOwner.OnClosing()
    {
        // Stop reading: a receive in flight completes into nothing (OnReceiveCompleted sees IsClosing).
    }

    void ITransportLifecycleOwner.OnForceClose(Exception? error) => DropBuffers();

    void ITransportLifecycleOwner.OnConnectionLost()
    {
        DropBuffers();
        _socketClosed = true;
        // The view first: it does not own the socket, and must not outlive it.
        _socketView?.Dispose();
        _loop.ReleaseSocket(_socket.Handle, this);
        // Disposing the socket aborts the operations in flight; each completes (OperationAborted) on
        // the loop, which then releases what it held. Idle ones are released now.
        _socket.Dispose();
        if (!_recv.Pending)
        {
            ReturnReadBuffer();
            _recv.Dispose();
        }

        if (!_send.Pending)
        {
            _send.Dispose();
        }
    }

    /// <summary>Drops the backlog; the datagram in flight keeps its array until its send completes, but no longer counts.</summary>
    private void DropBuffers()
    {
        while (_pending.TryDequeue(out var p))
        {
            ArrayPool<byte>.Shared.Return(p.Data);
        }

        _bufferSize = 0;
    }

    private void ReturnReadBuffer()
    {
        if (_readBuffer is { } b)
        {
            _readBuffer = null;
            ArrayPool<byte>.Shared.Return(b);
        }
    }

    // ---- Receiving ---------------------------------------------------------------------------

    private void StartReceive()
    {
        for (int i = 1; ; i++)
        {
            if (_recv.Pending || _life.IsClosing || _socketClosed)
            {
                return;
            }

            if (!_socket.IsBound)
            {
                // An open endpoint made without an address: it has no port until its first send
                // binds it (as on the selector loop, where recvfrom finds nothing until then).
                _awaitingBind = true;
                return;
            }

            if (_readBuffer is null)
            {
                _readBuffer = ArrayPool<byte>.Shared.Rent(_readSize);
                _recv.SetBuffer(_readBuffer, 0, _readSize);
            }

            _recv.Pending = true;
            bool pending;
            try
            {
                pending = _socket.ReceiveFromAsync(_recv);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                _recv.Pending = false;
                _life.FatalError(ex is InvalidOperationException ? new SocketException((int)SocketError.InvalidArgument, ex.Message) : ex,
                    "Fatal read error on datagram transport");
                return;
            }

            if (pending)
            {
                return;
            }

            if (i >= MaxDatagramsPerCompletion)
            {
                // Enough handled in this callback: this one is delivered on the next iteration.
                _recv.CompletedSynchronously();
                return;
            }

            _recv.Pending = false;
            Deliver();
        }
    }

    private void OnReceiveCompleted()
    {
        _recv.Pending = false;
        if (_life.IsConnectionLost)
        {
            if (_socketClosed)
            {
                ReturnReadBuffer();
                _recv.Dispose();
            }

            return;
        }

        if (_life.IsClosing)
        {
            return;
        }

        Deliver();
        StartReceive();
    }

    /// <summary>Hands the completed receive to the protocol: a datagram, or a per-datagram error; a fatal error ends the endpoint.</summary>
    private void Deliver()
    {
        var error = _recv.SocketError;
        if (error == SocketError.Success && (_recv.SocketFlags & SocketFlags.Truncated) != 0)
        {
            error = SocketError.MessageSize; // what Windows reports for the same datagram
        }

        switch (error)
        {
            case SocketError.Success:
                break;
            case SocketError.MessageSize:
                CallErrorReceived(new SocketException((int)SocketError.MessageSize,
                    $"A datagram from {DatagramAddressing.Describe(SenderOf(_recv.RemoteEndPoint))} is larger than the {_readSize}-byte receive buffer; it was dropped, not delivered cut short."));
                return;
            case SocketError.OperationAborted or SocketError.NotSocket or SocketError.Fault or SocketError.Shutdown:
                // The socket itself is gone or broken: nothing more will arrive.
                _life.FatalError(new SocketException((int)error), "Fatal read error on datagram transport");
                return;
            default:
                // A pending ICMP error (ECONNREFUSED on a connected socket; ECONNRESET on Windows, ...):
                // reported, and the next receive reads on. It was consumed by this receive.
                CallErrorReceived(ProactorSocketErrors.Describe(error, "recvfrom()"));
                return;
        }

        DatagramCalls.Deliver(_loop, this, _datagramProtocol, _readBuffer!, _recv.BytesTransferred, SenderOf(_recv.RemoteEndPoint));
    }

    /// <summary>The one <see cref="EndPoint"/> handed out for the sender the runtime reported.</summary>
    private EndPoint SenderOf(EndPoint? from)
    {
        if (from is null)
        {
            return _addressing.Template;
        }

        if (ReferenceEquals(from, _lastFrom))
        {
            return _lastSender!;
        }

        if (!_senders.TryGetValue(from, out var known))
        {
            if (_senders.Count >= DatagramAddressing.AddressCacheLimit)
            {
                _senders.Clear();
            }

            _senders[from] = known = from;
        }

        _lastFrom = from;
        _lastSender = known;
        return known;
    }

    private void CallErrorReceived(Exception error) => DatagramCalls.ErrorReceived(_loop, this, _datagramProtocol, error);

    // ---- Sending -----------------------------------------------------------------------------

    /// <inheritdoc/>
    public void SendTo(ReadOnlySpan<byte> data, EndPoint? address = null)
    {
        if (_closedByUser)
        {
            DatagramAddressing.ThrowClosed();
        }

        var destination = _addressing.Resolve(address);
        if (_life.IsClosing)
        {
            // Closed by a fatal error: the protocol learns it through ConnectionLost; sends are dropped (asyncio).
            _life.DropWrite();
            return;
        }

        if (!HasPendingWrites)
        {
            // Nothing pending: try the socket first, and buffer only what would block.
            var error = TrySend(data, destination);
            if (error == SocketError.Success)
            {
                if (_awaitingBind)
                {
                    // The send bound the socket: it can receive now.
                    _awaitingBind = false;
                    StartReceive();
                }

                return;
            }

            if (error is not (SocketError.WouldBlock or SocketError.Interrupted))
            {
                CallErrorReceived(SendError(error, address));
                return;
            }
        }

        byte[] copy = ArrayPool<byte>.Shared.Rent(Math.Max(data.Length, 1));
        data.CopyTo(copy);
        _pending.Enqueue(new PendingDatagram(copy, data.Length, destination, address));
        _bufferSize += data.Length + DatagramAddressing.PerDatagramOverhead;
        StartSend();
        _flow.MaybePause(_bufferSize);
    }

    /// <summary>One non-blocking send of a whole datagram.</summary>
    private SocketError TrySend(ReadOnlySpan<byte> data, DatagramAddressing.Destination? destination)
    {
        if (destination is null)
        {
            _socket.Send(data, SocketFlags.None, out SocketError error);
            return error;
        }

        try
        {
            if (_socket.IsBound)
            {
                _socket.SendTo(data, SocketFlags.None, destination.Raw);
            }
            else
            {
                // The EndPoint overload: the runtime then records the socket as bound (by this
                // send), so it can receive; the SocketAddress one does not.
                _socket.SendTo(data, SocketFlags.None, destination.EndPoint);
            }

            return SocketError.Success;
        }
        catch (SocketException ex)
        {
            return ex.SocketErrorCode;
        }
    }

    /// <summary>Starts sending the oldest buffered datagram when no send is in flight.</summary>
    private void StartSend()
    {
        if (_send.Pending || _sending is not null || _socketClosed || !_pending.TryDequeue(out var next))
        {
            return;
        }

        _sending = next;
        _send.SetBuffer(next.Data, 0, next.Length);
        _send.RemoteEndPoint = next.Destination?.EndPoint;
        _send.Pending = true;
        bool pending;
        try
        {
            pending = next.Destination is null ? _socket.SendAsync(_send) : _socket.SendToAsync(_send);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            _send.Pending = false;
            _sending = null;
            ArrayPool<byte>.Shared.Return(next.Data);
            _life.FatalError(ex, "Fatal write error on datagram transport");
            return;
        }

        if (!pending)
        {
            _send.CompletedSynchronously(); // handled on the next iteration, not inside SendTo
        }
    }

    private void OnSendCompleted()
    {
        _send.Pending = false;
        var sent = _sending!.Value;
        _sending = null;
        ArrayPool<byte>.Shared.Return(sent.Data);
        if (_life.IsConnectionLost)
        {
            if (_socketClosed)
            {
                _send.Dispose();
            }

            return;
        }

        _bufferSize -= sent.Length + DatagramAddressing.PerDatagramOverhead;
        var error = _send.SocketError;
        if (error is SocketError.OperationAborted or SocketError.NotSocket or SocketError.Fault)
        {
            _life.FatalError(new SocketException((int)error), "Fatal write error on datagram transport");
            return;
        }

        if (error != SocketError.Success)
        {
            // This datagram is lost; the ones behind it go on (asyncio).
            CallErrorReceived(SendError(error, sent.Address));
            if (_life.IsConnectionLost)
            {
                return;
            }
        }

        else if (_awaitingBind)
        {
            // The send bound the socket: it can receive now.
            _awaitingBind = false;
            StartReceive();
        }

        StartSend();
        _flow.MaybeResume(_bufferSize);
        if (!HasPendingWrites && _life.IsClosing)
        {
            _life.ScheduleConnectionLost(null);
        }
    }

    private Exception SendError(SocketError error, EndPoint? address) =>
        ProactorSocketErrors.Describe(error, $"sendto({DatagramAddressing.Describe(address ?? _addressing.Remote)})");

    /// <inheritdoc/>
    public int GetWriteBufferSize() => _bufferSize;

    /// <inheritdoc/>
    public (int Low, int High) GetWriteBufferLimits() => _flow.Limits;

    /// <inheritdoc/>
    public void SetWriteBufferLimits(int? high = null, int? low = null) => _flow.SetLimits(high, low, _bufferSize);

    /// <summary>A datagram waiting for the socket: its payload (a rented array), where it goes (null: the connected peer), and the address as the caller gave it (for error messages).</summary>
    private readonly record struct PendingDatagram(byte[] Data, int Length, DatagramAddressing.Destination? Destination, EndPoint? Address);
}
