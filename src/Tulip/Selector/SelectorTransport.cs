using System;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Tulip;

/// <summary>
/// What the selector loop's socket transports share: asyncio's <c>_SelectorTransport</c>, the base of
/// <see cref="SelectorSocketTransport"/> (streams) and <see cref="SelectorDatagramTransport"/>.
/// It owns the socket's fd (a <see cref="System.Net.Sockets.Socket"/>, or for an accepted connection
/// only its handle), holds the handle, keeps the extra info and the write-side
/// <see cref="WriteFlowControl"/>, and composes the <see cref="TransportLifecycle"/> every transport
/// shares for how a connection starts and ends.
/// </summary>
/// <remarks>
/// <para>
/// The handle: the transports make their syscalls on the raw fd number, so the fd's
/// <see cref="System.Runtime.InteropServices.SafeHandle"/> (the socket's, or an accepted connection's bare
/// <see cref="SocketFdHandle"/>) is add-ref'd for the transport's whole life and released only after the fd
/// is deregistered, just before the socket (or that handle) is disposed. While the ref is held the number cannot be
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
[SupportedOSPlatform("linux")]
internal abstract class SelectorTransport : ITransportLifecycleOwner
{
    private protected readonly SelectorEventLoop _loop;
    private protected readonly int _fd;
    private protected readonly WriteFlowControl _flow;
    private protected readonly TransportLifecycle _life;
    // The fd's owner: _ownedSocket's handle, or (an accepted connection) a SocketFdHandle alone.
    private readonly SafeHandle _handle;
    private readonly Socket? _ownedSocket;
    private bool _handleReleased;
    // The Socket of GetExtraInfo("socket"), made on first request; it does not own the fd.
    private Socket? _socketView;
    // The extra info, in fields rather than a dictionary: a Dictionary<string, object?> of three
    // entries was 216 B per connection (docs/PERFORMANCE.md, "Memory per idle connection").
    private readonly EndPoint? _sockname;
    private EndPoint? _peername;
    // Accepted IPv4 connections: the peer's address packed (SocketAccept.PackIPv4), made into
    // _peername on first request.
    private readonly ulong _packedPeer;

    private protected IBaseProtocol _protocol = null!;

    /// <summary>Takes ownership of <paramref name="socket"/>. The subclass sets the protocol and then calls <see cref="Start"/>.</summary>
    /// <param name="loop">The loop the transport runs on.</param>
    /// <param name="socket">The socket, non-blocking.</param>
    /// <param name="droppedWriteWarning">What is logged when writes keep coming after the transport closed.</param>
    private protected SelectorTransport(SelectorEventLoop loop, Socket socket, string droppedWriteWarning)
        : this(loop, socket.SafeHandle, socket, SocketViews.TryEndPoint(socket, local: true), SocketViews.TryEndPoint(socket, local: false), droppedWriteWarning)
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
        _flow = new WriteFlowControl(loop, this);
        _life = new TransportLifecycle(loop, this, droppedWriteWarning);
        _sockname = sockname;
        _peername = peername;
    }

    /// <inheritdoc/>
    public bool IsClosing => _life.IsClosing;

    /// <summary>The loop this transport belongs to.</summary>
    internal SelectorEventLoop Loop => _loop;

    /// <summary>
    /// The socket: the one the transport was made from (it owns the fd), or for an accepted connection
    /// the view of <see cref="GetExtraInfo"/>, made on first request. Never hand out the owning one:
    /// see <see cref="GetExtraInfo"/>.
    /// </summary>
    /// <exception cref="ObjectDisposedException">An accepted connection's transport closed its fd.</exception>
    internal Socket Socket => _ownedSocket ?? SocketView();

    /// <summary>The lifecycle (state flags, close and ConnectionLost).</summary>
    internal TransportLifecycle Lifecycle => _life;

    /// <summary>Whether data is waiting in the write buffer (Close then waits for it to be sent).</summary>
    private protected abstract bool HasPendingWrites { get; }

    /// <inheritdoc/>
    /// <remarks>"socket" is a <see cref="System.Net.Sockets.Socket"/> over the transport's fd that does not own it:
    /// options can be read and set on it, and disposing it does not close the connection. It is disposed
    /// when the transport closes.</remarks>
    public object? GetExtraInfo(string name, object? defaultValue = null) => name switch
    {
        "socket" => _life.IsClosed || _handleReleased ? defaultValue : SocketView(),
        "sockname" => _sockname ?? defaultValue,
        "peername" => (_peername ??= SocketAccept.UnpackIPv4(_packedPeer)) ?? defaultValue,
        _ => defaultValue,
    };

    /// <inheritdoc/>
    public abstract void SetProtocol(IBaseProtocol protocol);

    /// <inheritdoc/>
    public IBaseProtocol GetProtocol() => _protocol;

    private Socket SocketView()
    {
        ObjectDisposedException.ThrowIf(_handleReleased, this);
        return _socketView ??= SocketViews.NonOwning(_fd);
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
        _handle.DangerousAddRef(ref added);
        try
        {
            _life.ScheduleStart(waiter);
        }
        catch
        {
            _handle.DangerousRelease();
            throw;
        }
    }

    /// <summary>Closes (buffered data is still sent) and completes once ConnectionLost has run and the fd is closed (<see cref="TransportLifecycle.CloseAndWaitAsync"/>).</summary>
    public System.Threading.Tasks.ValueTask DisposeAsync() => _life.CloseAndWaitAsync();

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

    /// <summary>
    /// The fd is about to be closed (the io_uring transports withdraw their operations and hand every
    /// entry queued for the fd to the kernel first, so none reaches a file that reuses the number).
    /// </summary>
    private protected virtual void BeforeCloseFd()
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
        BeforeCloseFd();
        _handleReleased = true;
        // The view first: it does not own the fd, and must not outlive it.
        _socketView?.Dispose();
        _handle.DangerousRelease();
        if (_ownedSocket is not null)
        {
            _ownedSocket.Dispose();
        }
        else
        {
            _handle.Dispose();
        }
    }
}
