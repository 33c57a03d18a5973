using System;
using System.Collections.Generic;
using System.Net.Sockets;

namespace Tulip;

/// <summary>
/// What the selector loop's socket transports share: asyncio's <c>_SelectorTransport</c>, the base of
/// <see cref="SelectorSocketTransport"/> (streams) and <see cref="SelectorDatagramTransport"/>.
/// It owns the socket, holds its handle, keeps the extra info and the write-side
/// <see cref="WriteFlowControl"/>, and composes the <see cref="TransportLifecycle"/> every transport
/// shares for how a connection starts and ends.
/// </summary>
/// <remarks>
/// <para>
/// The handle: the transports make their syscalls on the raw fd number, so the socket's
/// <see cref="System.Runtime.InteropServices.SafeHandle"/> is add-ref'd for the transport's whole life and released only after the fd
/// is deregistered, just before the socket is disposed. While the ref is held the number cannot be
/// closed and reused under the transport (a reused number would send this transport's writes to another
/// connection's peer, and its close would remove the other's registration). <c>GetExtraInfo("socket")</c>
/// therefore hands out a <see cref="System.Net.Sockets.Socket"/> that does not own the handle: disposing it
/// leaves the connection alone (disposing the owning socket instead would spin in .NET's
/// <c>SafeSocketHandle.CloseAsIs</c> until the ref is released, resetting the connection meanwhile). The view
/// is made on first request and disposed when the transport closes its fd, so it never reaches a
/// reused number either.
/// </para>
/// <para>
/// The subclasses keep their I/O: the reader and writer handles (typed, so a readiness event costs
/// no virtual call), the receive and send paths, and the write buffer; on those paths they read the
/// lifecycle's flags directly. Everything here is owned by the loop thread.
/// </para>
/// </remarks>
internal abstract class SelectorTransport : ITransportLifecycleOwner
{
    private protected readonly SelectorEventLoop _loop;
    private protected readonly Socket _socket;
    private protected readonly int _fd;
    private protected readonly WriteFlowControl _flow;
    private protected readonly TransportLifecycle _life;
    private readonly Dictionary<string, object?> _extra;
    private bool _handleReleased;
    private Socket? _socketView;

    private protected IBaseProtocol _protocol = null!;

    /// <summary>Takes ownership of <paramref name="socket"/>. The subclass sets the protocol and then calls <see cref="Start"/>.</summary>
    /// <param name="loop">The loop the transport runs on.</param>
    /// <param name="socket">The socket, non-blocking.</param>
    /// <param name="droppedWriteWarning">What is logged when writes keep coming after the transport closed.</param>
    private protected SelectorTransport(SelectorEventLoop loop, Socket socket, string droppedWriteWarning)
    {
        _loop = loop;
        _socket = socket;
        _fd = checked((int)socket.SafeHandle.DangerousGetHandle());
        _flow = new WriteFlowControl(loop, this);
        _life = new TransportLifecycle(loop, this, droppedWriteWarning);
        _extra = new Dictionary<string, object?>(2);
        try
        {
            _extra["sockname"] = socket.LocalEndPoint;
        }
        catch (SocketException)
        {
            // Not bound (a datagram socket binds on its first send): asyncio leaves the key out too.
        }

        try
        {
            _extra["peername"] = socket.RemoteEndPoint;
        }
        catch (SocketException)
        {
            // Not connected, or (ENOTCONN) the peer already went away: GetExtraInfo gives the default.
        }
    }

    /// <inheritdoc/>
    public bool IsClosing => _life.IsClosing;

    /// <summary>The loop this transport belongs to.</summary>
    internal SelectorEventLoop Loop => _loop;

    /// <summary>The socket (owned by the transport). Never hand it out: see <see cref="GetExtraInfo"/>.</summary>
    internal Socket Socket => _socket;

    /// <summary>The lifecycle (state flags, close and ConnectionLost).</summary>
    internal TransportLifecycle Lifecycle => _life;

    /// <summary>Whether data is waiting in the write buffer (Close then waits for it to be sent).</summary>
    private protected abstract bool HasPendingWrites { get; }

    /// <inheritdoc/>
    /// <remarks>"socket" is a <see cref="System.Net.Sockets.Socket"/> over the transport's fd that does not own it:
    /// options can be read and set on it, and disposing it does not close the connection. It is disposed
    /// when the transport closes.</remarks>
    public object? GetExtraInfo(string name, object? defaultValue = null)
    {
        if (name == "socket")
        {
            return _life.IsClosed ? defaultValue : SocketView();
        }

        return _extra.TryGetValue(name, out var value) && value is not null ? value : defaultValue;
    }

    /// <inheritdoc/>
    public abstract void SetProtocol(IBaseProtocol protocol);

    /// <inheritdoc/>
    public IBaseProtocol GetProtocol() => _protocol;

    private Socket SocketView()
    {
        if (_socketView is null)
        {
            var view = new Socket(new SafeSocketHandle(_fd, ownsHandle: false));
            // The view's own idea of the mode: the fd is non-blocking (the flag is already set, so this changes nothing).
            view.Blocking = false;
            _socketView = view;
        }

        return _socketView;
    }

    // ---- Lifecycle -------------------------------------------------------------------------

    /// <summary>
    /// The last step of the subclass's constructor, once nothing there can throw: add-refs the socket's
    /// handle (held until <see cref="CloseSocket"/>) and schedules ConnectionMade. If this throws, no ref
    /// is held, so the caller can dispose the socket as before.
    /// </summary>
    private protected void Start(Future<VoidResult>? waiter)
    {
        bool added = false;
        _socket.SafeHandle.DangerousAddRef(ref added);
        try
        {
            _life.ScheduleStart(waiter);
        }
        catch
        {
            _socket.SafeHandle.DangerousRelease();
            throw;
        }
    }

    /// <inheritdoc/>
    public virtual void Close() => _life.Close(HasPendingWrites);

    /// <inheritdoc/>
    public virtual void Abort() => _life.Abort();

    /// <summary>After ConnectionMade, unless closing: register the reader if reading is wanted.</summary>
    private protected abstract void OnStarted();

    /// <summary>Drops what the write buffer holds, returning its memory.</summary>
    private protected abstract void DropBuffer();

    /// <summary>Called by <see cref="ITransportLifecycleOwner.OnForceClose"/> after the buffer was dropped and the fd unwatched.</summary>
    private protected virtual void OnForceClose(Exception? ex)
    {
    }

    /// <summary>Called after ConnectionLost returned and the socket was closed.</summary>
    private protected virtual void OnConnectionLost()
    {
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
            OnStarted();
        }

        waiter?.TrySetResult(default);
    }

    void ITransportLifecycleOwner.OnClosing() => _loop.SetReader(_fd, null, cancelReplaced: false);

    void ITransportLifecycleOwner.OnForceClose(Exception? error)
    {
        DropBuffer();
        if (!_handleReleased)
        {
            _loop.SetReader(_fd, null, cancelReplaced: false);
            _loop.SetWriter(_fd, null, cancelReplaced: false);
        }

        OnForceClose(error);
    }

    void ITransportLifecycleOwner.OnConnectionLost()
    {
        CloseSocket();
        OnConnectionLost();
    }

    /// <summary>Deregisters the fd, then gives up the handle's ref and disposes the socket (closing the fd). Idempotent.</summary>
    private protected void CloseSocket()
    {
        if (_handleReleased)
        {
            return;
        }

        _loop.SetReader(_fd, null, cancelReplaced: false);
        _loop.SetWriter(_fd, null, cancelReplaced: false);
        DropBuffer();
        _handleReleased = true;
        _socketView?.Dispose();
        _socket.SafeHandle.DangerousRelease();
        _socket.Dispose();
    }
}
