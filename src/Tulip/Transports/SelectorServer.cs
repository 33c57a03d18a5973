using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Tulip;

/// <summary>
/// The <see cref="Server"/> of a <see cref="SelectorEventLoop"/>: listening sockets watched for
/// readability, each accepted connection joined to a new protocol by a
/// <see cref="SelectorSocketTransport"/>. asyncio's <c>Server</c> with <c>_accept_connection</c>.
/// </summary>
/// <remarks>
/// Accept errors that mean "out of descriptors or memory" (EMFILE, ENFILE, ENOBUFS, ENOMEM) are
/// reported once to the exception handler and that listener stops accepting for
/// <see cref="AcceptRetryDelay"/> seconds, then resumes by itself: a full fd table can never turn
/// into a busy loop of failing accepts. Owned by the loop thread.
/// </remarks>
internal sealed class SelectorServer : Server
{
    /// <summary>asyncio's ACCEPT_RETRY_DELAY: seconds a listener rests after running out of fds.</summary>
    internal const double AcceptRetryDelay = 1.0;

    private readonly SelectorEventLoop _loop;
    private readonly Func<IBaseProtocol> _protocolFactory;
    private readonly ServerOptions _options;
    private readonly Listener[] _listeners;
    // The connections accepted and not yet lost: a list threaded through the transports
    // (SelectorSocketTransport.PreviousClient/NextClient), so a client costs two fields instead of a
    // HashSet entry and its share of the outgrown arrays the set leaves on the large object heap
    // (docs/PERFORMANCE.md, "Memory per idle connection").
    private SelectorSocketTransport? _firstClient;
    private int _clientCount;
    private readonly List<Future<VoidResult>> _waiters = new();
    private readonly string? _unixPath;
    private readonly ulong _unixInode;
    private Socket[]? _sockets;  // null once closed
    private bool _serving;
    private bool _listening;     // listen(2) done: asyncio listens in _start_serving, not at creation
    private Future<VoidResult>? _serveForever;

    internal SelectorServer(SelectorEventLoop loop, Func<IBaseProtocol> protocolFactory, IReadOnlyList<Socket> sockets,
        ServerOptions options, string? unixPath, ulong unixInode)
    {
        _loop = loop;
        _protocolFactory = protocolFactory;
        _options = options;
        _sockets = new Socket[sockets.Count];
        _listeners = new Listener[sockets.Count];
        for (int i = 0; i < sockets.Count; i++)
        {
            _sockets[i] = sockets[i];
            _listeners[i] = new Listener(this, sockets[i]);
        }

        _unixPath = unixPath;
        _unixInode = unixInode;
    }

    /// <inheritdoc/>
    public override IReadOnlyList<Socket> Sockets => _sockets ?? (IReadOnlyList<Socket>)Array.Empty<Socket>();

    /// <inheritdoc/>
    public override IEventLoop Loop => _loop;

    /// <inheritdoc/>
    public override bool IsServing => _serving;

    /// <summary>Connections accepted and not yet lost (for tests and diagnostics).</summary>
    internal int ClientCount => _clientCount;

    /// <inheritdoc/>
    /// <remarks>
    /// The sockets call listen(2) here, the first time, as asyncio's <c>_start_serving</c> does: until
    /// then a connection attempt is refused instead of waiting in a backlog nobody serves.
    /// </remarks>
    /// <exception cref="SocketException">listen(2) failed (EADDRINUSE: another socket listens on the same address).</exception>
    public override void StartServing()
    {
        if (_serving || _sockets is null)
        {
            return;
        }

        if (!_listening)
        {
            foreach (var socket in _sockets)
            {
                socket.Listen(_options.Backlog);
            }

            _listening = true;
        }

        _serving = true;
        foreach (var listener in _listeners)
        {
            listener.Resume();
        }
    }

    /// <inheritdoc/>
    public override async LoopTask ServeForeverAsync(CancellationToken cancellationToken = default)
    {
        if (_serveForever is not null)
        {
            throw new InvalidOperationException("ServeForeverAsync is already running on this server.");
        }

        if (_sockets is null)
        {
            throw new InvalidOperationException("The server is closed.");
        }

        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        StartServing();
        _serveForever = new Future<VoidResult>(_loop);
        try
        {
            await _serveForever;
        }
        finally
        {
            _serveForever = null;
            Close();
            await WaitClosedAsync(CancellationToken.None);
        }
    }

    /// <inheritdoc/>
    public override void Close()
    {
        var sockets = _sockets;
        if (sockets is null)
        {
            return;
        }

        _sockets = null;
        _serving = false;
        foreach (var listener in _listeners)
        {
            listener.Stop();
        }

        foreach (var socket in sockets)
        {
            socket.Dispose();
        }

        RemoveUnixSocketFile();
        _serveForever?.TrySetResult(default);
        if (_clientCount == 0)
        {
            WakeWaiters();
        }
    }

    /// <inheritdoc/>
    public override void CloseClients()
    {
        foreach (var client in Snapshot())
        {
            client.Close();
        }
    }

    /// <inheritdoc/>
    public override void AbortClients()
    {
        foreach (var client in Snapshot())
        {
            client.Abort();
        }
    }

    /// <inheritdoc/>
    public override async LoopTask WaitClosedAsync(CancellationToken cancellationToken = default)
    {
        if (_sockets is null && _clientCount == 0)
        {
            return;
        }

        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var waiter = new Future<VoidResult>(_loop);
        _waiters.Add(waiter);
        try
        {
            await waiter;
        }
        finally
        {
            _waiters.Remove(waiter);
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"<Server sockets={Sockets.Count} serving={_serving} clients={_clientCount}>";

    internal void Attach(SelectorSocketTransport transport)
    {
        if (transport.IsServerClient)
        {
            return;
        }

        transport.IsServerClient = true;
        transport.PreviousClient = null;
        transport.NextClient = _firstClient;
        if (_firstClient is not null)
        {
            _firstClient.PreviousClient = transport;
        }

        _firstClient = transport;
        _clientCount++;
    }

    internal void Detach(SelectorSocketTransport transport)
    {
        if (!transport.IsServerClient)
        {
            return;
        }

        transport.IsServerClient = false;
        if (transport.PreviousClient is { } previous)
        {
            previous.NextClient = transport.NextClient;
        }
        else
        {
            _firstClient = transport.NextClient;
        }

        if (transport.NextClient is { } next)
        {
            next.PreviousClient = transport.PreviousClient;
        }

        transport.PreviousClient = null;
        transport.NextClient = null;
        _clientCount--;
        if (_clientCount == 0 && _sockets is null)
        {
            WakeWaiters();
        }
    }

    private SelectorSocketTransport[] Snapshot()
    {
        var copy = new SelectorSocketTransport[_clientCount];
        int i = 0;
        for (var client = _firstClient; client is not null; client = client.NextClient)
        {
            copy[i++] = client;
        }

        return copy;
    }

    private void WakeWaiters()
    {
        foreach (var waiter in _waiters.ToArray())
        {
            waiter.TrySetResult(default);
        }
    }

    private void RemoveUnixSocketFile()
    {
        if (_unixPath is null)
        {
            return;
        }

        // Only the file this server bound: another process may have replaced it since (asyncio 3.13).
        if (Interop.TryGetFileType(_unixPath, out _, out ulong inode) && inode == _unixInode)
        {
            try
            {
                File.Delete(_unixPath);
            }
            catch (IOException)
            {
                // Gone already, or not ours to delete: nothing to clean up.
            }
            catch (UnauthorizedAccessException)
            {
                // As above.
            }
        }
    }

    /// <summary>Accepts on one listening socket.</summary>
    private void Accept(Listener listener)
    {
        // asyncio accepts up to backlog connections per readiness event, so a flood drains quickly
        // without starving the other callbacks of the iteration.
        // accept4(2) on the fd, not Socket.Accept: the connection gets a non-blocking fd in a 32-byte
        // handle and no Socket (docs/PERFORMANCE.md, "Memory per idle connection").
        for (int i = 0; i < _options.Backlog && _sockets is not null; i++)
        {
            var connection = SocketAccept.Accept(listener.Fd, listener.EndPoint, out EndPoint? peer, out ulong packedPeer, out int errno);
            if (connection is null)
            {
                if (errno is Interop.Errno.EAGAIN or Interop.Errno.EINTR or Interop.Errno.ECONNABORTED or Interop.Errno.ECONNRESET)
                {
                    return;
                }

                string operation = $"accept4(fd {listener.Fd})";
                if (errno is Interop.Errno.EMFILE or Interop.Errno.ENFILE or Interop.Errno.ENOBUFS or Interop.Errno.ENOMEM)
                {
                    var code = errno is Interop.Errno.EMFILE or Interop.Errno.ENFILE ? SocketError.TooManyOpenSockets : SocketError.NoBufferSpaceAvailable;
                    _loop.CallExceptionHandler(new ExceptionContext("socket.accept() out of system resource")
                    {
                        Exception = new SocketException((int)code, Interop.GetExceptionForErrno(errno, operation).Message),
                        Socket = listener.Socket,
                    });
                    listener.RestAndRetry();
                    return;
                }

                _loop.CallExceptionHandler(new ExceptionContext("Error on socket.accept()")
                {
                    Exception = Interop.GetSocketExceptionForErrno(errno, operation),
                    Socket = listener.Socket,
                });
                return;
            }

            AcceptConnection(connection, listener, peer, packedPeer);
        }
    }

    private void AcceptConnection(SocketFdHandle connection, Listener listener, EndPoint? peer, ulong packedPeer)
    {
        IBaseProtocol protocol;
        EndPoint? local;
        int fd = (int)connection.DangerousGetHandle();
        try
        {
            if (_options.NoDelay && listener.Socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6
                && Interop.SetSockOptInt(fd, Interop.IPPROTO_TCP, Interop.TCP_NODELAY, 1) != 0)
            {
                throw Interop.GetSocketExceptionForErrno(Interop.GetLastErrno(), $"setsockopt(fd {fd}, TCP_NODELAY)");
            }

            local = SocketAccept.LocalEndPoint(fd, listener.EndPoint);
            protocol = _protocolFactory();
        }
        catch (Exception ex)
        {
            connection.Dispose();
            _loop.CallExceptionHandler(new ExceptionContext("Error on transport creation for incoming connection")
            {
                Exception = ex,
                Socket = connection, // the accepted fd's (now closed) handle: no Socket is made for it
            });
            return;
        }

        try
        {
            _ = new SelectorSocketTransport(_loop, connection, local, peer, packedPeer, protocol, this);
        }
        catch (Exception ex)
        {
            connection.Dispose();
            _loop.CallExceptionHandler(new ExceptionContext("Error on transport creation for incoming connection")
            {
                Exception = ex,
                Socket = connection,
                Protocol = protocol,
            });
        }
    }

    /// <summary>One listening socket: its fd, bound address, reader handle and retry timer.</summary>
    private sealed class Listener
    {
        private readonly SelectorServer _server;
        private readonly int _fd;
        private readonly StateHandle<Listener> _handle;
        private TimerHandle? _retry;
        private EndPoint? _endPoint;

        public Listener(SelectorServer server, Socket socket)
        {
            _server = server;
            Socket = socket;
            _fd = checked((int)socket.Handle);
            _handle = new StateHandle<Listener>(server._loop, static l => l._server.Accept(l), this);
        }

        public Socket Socket { get; }

        public int Fd => _fd;

        /// <summary>The address the socket is bound to: the accepted connections' "sockname" (unless a wildcard), and the kind of end point their addresses are.</summary>
        public EndPoint EndPoint => _endPoint ??= Socket.LocalEndPoint!;

        public void Resume()
        {
            _retry = null;
            if (_server._serving)
            {
                _server._loop.SetReader(_fd, _handle, cancelReplaced: false);
            }
        }

        public void Stop()
        {
            _retry?.Cancel();
            _retry = null;
            _server._loop.SetReader(_fd, null, cancelReplaced: false);
        }

        public void RestAndRetry()
        {
            _server._loop.SetReader(_fd, null, cancelReplaced: false);
            _retry?.Cancel();
            _retry = _server._loop.CallLater(AcceptRetryDelay, static l => l.Resume(), this);
        }
    }
}
