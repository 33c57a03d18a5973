using System;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace Tulip;

/// <summary>
/// What the selector loop's socket transports share: asyncio's <c>_SelectorTransport</c>, the base of
/// <see cref="SelectorSocketTransport"/> (streams) and <see cref="SelectorDatagramTransport"/>.
/// It owns the socket's fd (a <see cref="System.Net.Sockets.Socket"/>, or for an accepted connection
/// only its handle), the extra info, the state flags, the write-side
/// <see cref="WriteFlowControl"/>, and the way a connection ends: <see cref="Close"/>,
/// <see cref="Abort"/>, <see cref="FatalError"/>, and ConnectionLost scheduled once, after which the
/// socket is closed.
/// </summary>
/// <remarks>
/// <para>
/// The subclasses keep their I/O: the reader and writer handles (typed, so a readiness event costs
/// no virtual call), the receive and send paths, and the write buffer. The state is in fields the
/// subclasses read directly on those paths; the few virtual members here run once per connection
/// (start, close, end), never per message.
/// </para>
/// <para>
/// Protocol calls go through the loop's ready queue as in asyncio: <c>ConnectionMade</c> and
/// <c>ConnectionLost</c> are scheduled, never called from inside <c>Write</c> or <c>Close</c>.
/// Everything here is owned by the loop thread.
/// </para>
/// </remarks>
internal abstract class SelectorTransport : IBaseTransport
{
    /// <summary>asyncio's LOG_THRESHOLD_FOR_CONNLOST_WRITES: writes after close are dropped, and logged once this many have been.</summary>
    private const int LogThresholdForLostWrites = 5;

    private static readonly Action<object?, object?> s_start = static (t, w) => ((SelectorTransport)t!).Start((Future<VoidResult>?)w);
    private static readonly Action<object?, object?> s_connectionLost = static (t, e) => ((SelectorTransport)t!).CallConnectionLost((Exception?)e);

    private protected readonly SelectorEventLoop _loop;
    private protected readonly int _fd;
    private protected readonly WriteFlowControl _flow;
    // The fd's owner: _ownedSocket's handle, or (an accepted connection) a SocketFdHandle alone.
    private readonly SafeHandle _handle;
    private readonly Socket? _ownedSocket;
    // Accepted connections: the Socket over the fd, made on first request; it does not own the fd.
    private Socket? _socketView;
    // The extra info, in fields rather than a dictionary: a Dictionary<string, object?> of three
    // entries was 216 B per connection (docs/PERFORMANCE.md, "Memory per idle connection").
    private readonly EndPoint? _sockname;
    private EndPoint? _peername;
    // Accepted IPv4 connections: the peer's address packed (SocketAccept.PackIPv4), made into
    // _peername on first request.
    private readonly ulong _packedPeer;
    private readonly string _droppedWriteWarning;

    private protected IBaseProtocol _protocol = null!;
    private protected bool _started;          // ConnectionMade ran; the reader may be registered
    private protected bool _closing;          // Close, Abort or a fatal error
    private protected int _connLost;          // >0 once ConnectionLost is scheduled
    private protected bool _socketClosed;
    private int _droppedWrites;               // writes dropped because the transport was closing

    /// <summary>Takes ownership of <paramref name="socket"/>. The subclass sets the protocol and then calls <see cref="ScheduleStart"/>.</summary>
    /// <param name="loop">The loop the transport runs on.</param>
    /// <param name="socket">The socket, non-blocking.</param>
    /// <param name="droppedWriteWarning">What is logged when writes keep coming after the transport closed.</param>
    private protected SelectorTransport(SelectorEventLoop loop, Socket socket, string droppedWriteWarning)
        : this(loop, socket.SafeHandle, socket, LocalEndPointOf(socket), RemoteEndPointOf(socket), droppedWriteWarning)
    {
    }

    /// <summary>Takes ownership of <paramref name="handle"/>, an accepted connection's fd with no <see cref="System.Net.Sockets.Socket"/> made for it.</summary>
    /// <param name="loop">The loop the transport runs on.</param>
    /// <param name="handle">The fd, non-blocking.</param>
    /// <param name="sockname">The local address ("sockname"), or null.</param>
    /// <param name="peername">The peer's address ("peername"), or null.</param>
    /// <param name="packedIPv4Peer">Instead of <paramref name="peername"/>, an IPv4 peer packed by <see cref="SocketAccept.PackIPv4"/>; 0 for none.</param>
    /// <param name="droppedWriteWarning">What is logged when writes keep coming after the transport closed.</param>
    private protected SelectorTransport(SelectorEventLoop loop, SocketFdHandle handle, EndPoint? sockname, EndPoint? peername, ulong packedIPv4Peer,
        string droppedWriteWarning)
        : this(loop, handle, null, sockname, peername, droppedWriteWarning)
    {
        _packedPeer = packedIPv4Peer;
    }

    private SelectorTransport(SelectorEventLoop loop, SafeHandle handle, Socket? socket, EndPoint? sockname, EndPoint? peername, string droppedWriteWarning)
    {
        _loop = loop;
        _handle = handle;
        _ownedSocket = socket;
        _fd = checked((int)handle.DangerousGetHandle());
        _droppedWriteWarning = droppedWriteWarning;
        _flow = new WriteFlowControl(loop, this);
        _sockname = sockname;
        _peername = peername;
    }

    private static EndPoint? LocalEndPointOf(Socket socket)
    {
        try
        {
            return socket.LocalEndPoint;
        }
        catch (SocketException)
        {
            // Not bound (a datagram socket binds on its first send): asyncio leaves the key out too.
            return null;
        }
    }

    private static EndPoint? RemoteEndPointOf(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint;
        }
        catch (SocketException)
        {
            // Not connected, or (ENOTCONN) the peer already went away: GetExtraInfo gives the default.
            return null;
        }
    }

    /// <inheritdoc/>
    public bool IsClosing => _closing;

    /// <summary>The loop this transport belongs to.</summary>
    internal SelectorEventLoop Loop => _loop;

    /// <summary>
    /// The socket: the one the transport was made from (it owns the fd), or for an accepted connection
    /// a <see cref="System.Net.Sockets.Socket"/> over the fd made on first request, which does not own it
    /// (disposing it leaves the connection open) and is disposed when the transport closes.
    /// </summary>
    internal Socket Socket => _ownedSocket ?? (_socketView ??= MakeSocketView());

    /// <summary>Whether data is waiting in the write buffer (Close then waits for it to be sent).</summary>
    private protected abstract bool HasPendingWrites { get; }

    /// <summary>"open", "closing" or "closed", for <see cref="object.ToString"/>.</summary>
    private protected string StateName => _socketClosed ? "closed" : _closing ? "closing" : "open";

    /// <inheritdoc/>
    public object? GetExtraInfo(string name, object? defaultValue = null) => name switch
    {
        "socket" => _ownedSocket ?? (_socketClosed ? _socketView ?? defaultValue : Socket),
        "sockname" => _sockname ?? defaultValue,
        "peername" => (_peername ??= SocketAccept.UnpackIPv4(_packedPeer)) ?? defaultValue,
        _ => defaultValue,
    };

    private Socket MakeSocketView()
    {
        ObjectDisposedException.ThrowIf(_socketClosed, this);
        // The fd is already non-blocking; Blocking = false only tells the Socket so.
        return new Socket(new SafeSocketHandle(_fd, ownsHandle: false)) { Blocking = false };
    }

    /// <inheritdoc/>
    public abstract void SetProtocol(IBaseProtocol protocol);

    /// <inheritdoc/>
    public IBaseProtocol GetProtocol() => _protocol;

    // ---- Lifecycle -------------------------------------------------------------------------

    /// <summary>Schedules <c>ConnectionMade</c>: the last step of the subclass's constructor, once nothing there can throw.</summary>
    private protected void ScheduleStart(Future<VoidResult>? waiter) => _loop.ScheduleInternal(s_start, this, waiter);

    /// <summary>After ConnectionMade, unless closing: register the reader if reading is wanted.</summary>
    private protected abstract void OnStarted();

    /// <summary>Drops what the write buffer holds, returning its memory.</summary>
    private protected abstract void DropBuffer();

    private void Start(Future<VoidResult>? waiter)
    {
        if (_connLost > 0)
        {
            // Aborted before it started (a cancelled create): ConnectionMade never runs, nor does ConnectionLost (asyncio).
            waiter?.TrySetException(new SocketException((int)SocketError.ConnectionAborted));
            return;
        }

        try
        {
            _protocol.ConnectionMade(this);
        }
        catch (Exception ex)
        {
            waiter?.TrySetException(ex);
            FatalError(ex, "Fatal error: protocol.ConnectionMade() call failed.");
            return;
        }

        _started = true;
        if (!_closing)
        {
            OnStarted();
        }

        waiter?.TrySetResult(default);
    }

    /// <inheritdoc/>
    public virtual void Close()
    {
        if (_closing)
        {
            return;
        }

        _closing = true;
        _loop.SetReader(_fd, null, cancelReplaced: false);
        if (!HasPendingWrites)
        {
            ScheduleConnectionLost(null);
        }
    }

    /// <inheritdoc/>
    public virtual void Abort() => ForceClose(null);

    /// <summary>
    /// asyncio's <c>_fatal_error</c>: an OS error (<see cref="SocketException"/>: the peer went away)
    /// is an ordinary end of the connection, logged only in debug mode; anything else (a protocol
    /// callback that threw) goes to the exception handler. Either way the protocol gets ConnectionLost(ex).
    /// </summary>
    private protected void FatalError(Exception ex, string message)
    {
        if (ex is not SocketException)
        {
            _loop.CallExceptionHandler(new ExceptionContext(message) { Exception = ex, Transport = this, Protocol = _protocol });
        }
        else if (_loop.Debug && _loop.Logger.IsEnabled(LogLevel.Debug))
        {
            _loop.Logger.LogDebug(ex, "{Transport}: {Message}", this, message);
        }

        ForceClose(ex);
    }

    /// <summary>asyncio's <c>_force_close</c>: drop the buffer, stop watching the fd, schedule ConnectionLost(<paramref name="ex"/>) once.</summary>
    private protected void ForceClose(Exception? ex)
    {
        if (_connLost > 0)
        {
            return;
        }

        DropBuffer();
        _loop.SetWriter(_fd, null, cancelReplaced: false);
        if (!_closing)
        {
            _closing = true;
            _loop.SetReader(_fd, null, cancelReplaced: false);
        }

        OnForceClose(ex);
        ScheduleConnectionLost(ex);
    }

    /// <summary>Called by <see cref="ForceClose"/> just before ConnectionLost is scheduled.</summary>
    private protected virtual void OnForceClose(Exception? ex)
    {
    }

    /// <summary>Marks ConnectionLost as coming and schedules it, unless <see cref="DeferConnectionLost"/> keeps it for later.</summary>
    private protected void ScheduleConnectionLost(Exception? ex)
    {
        _connLost++;
        if (DeferConnectionLost(ex))
        {
            return;
        }

        ScheduleConnectionLostNow(ex);
    }

    /// <summary>Schedules the ConnectionLost call (and the socket's close after it) on the next iteration.</summary>
    private protected void ScheduleConnectionLostNow(Exception? ex) => _loop.ScheduleInternal(s_connectionLost, this, ex);

    /// <summary>True to keep ConnectionLost back (the subclass schedules it later with <see cref="ScheduleConnectionLostNow"/>).</summary>
    private protected virtual bool DeferConnectionLost(Exception? ex) => false;

    /// <summary>Called after ConnectionLost returned and the socket was closed.</summary>
    private protected virtual void OnConnectionLost()
    {
    }

    private void CallConnectionLost(Exception? ex)
    {
        try
        {
            if (_started)
            {
                _protocol.ConnectionLost(ex);
            }
        }
        catch (Exception callbackError)
        {
            _loop.CallExceptionHandler(new ExceptionContext("Exception in protocol.ConnectionLost()")
            {
                Exception = callbackError,
                Transport = this,
                Protocol = _protocol,
            });
        }
        finally
        {
            CloseSocket();
            OnConnectionLost();
        }
    }

    private void CloseSocket()
    {
        if (_socketClosed)
        {
            return;
        }

        _socketClosed = true;
        _loop.SetReader(_fd, null, cancelReplaced: false);
        _loop.SetWriter(_fd, null, cancelReplaced: false);
        DropBuffer();
        if (_ownedSocket is not null)
        {
            _ownedSocket.Dispose();
        }
        else
        {
            // The view first: it does not own the fd, and must not outlive it.
            _socketView?.Dispose();
            _handle.Dispose();
        }
    }

    /// <summary>A write after close is dropped (asyncio); after a few, each further one is logged.</summary>
    private protected void DropWrite()
    {
        if (_droppedWrites >= LogThresholdForLostWrites)
        {
            _loop.Logger.LogWarning(_droppedWriteWarning);
        }

        _droppedWrites++;
    }
}
