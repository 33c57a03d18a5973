using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Tulip.Diagnostics;

namespace Tulip;

/// <summary>How an <see cref="EventLoopGroup"/> spreads a server's connections over its loops (libuv#932 names both).</summary>
public enum GroupDistribution
{
    /// <summary>
    /// A listener per loop, all bound to the same address with <c>SO_REUSEPORT</c>: the kernel picks the
    /// listener of each connection by a hash of its addresses. Nothing is shared between loops, but the
    /// spread is only as even as the hash (few clients, or one client with few ports, may land on one loop),
    /// and <c>SO_REUSEPORT</c> is Linux's and the BSDs' (and not for UNIX sockets).
    /// </summary>
    ReusePort,

    /// <summary>
    /// One listener, on the first loop running, accepts every connection and hands each to the next loop
    /// in turn (the acceptor's own loop included): the spread is exact, and it works with any socket
    /// (a UNIX socket, one systemd passed), at the cost of one hop between threads per connection.
    /// </summary>
    RoundRobin,
}

public sealed partial class EventLoopGroup
{
    // The factory of the acceptor's binding server: that server only binds (it never serves), so never calls it.
    private static readonly Func<IBaseProtocol> s_neverCalled = static () =>
        throw new InvalidOperationException("The group's acceptor binds with this server; it never serves through it.");

    /// <summary>
    /// Serves <paramref name="host"/>:<paramref name="port"/> on every loop still running, spreading the
    /// connections as <paramref name="distribution"/> says.
    /// </summary>
    /// <param name="protocolFactory">Makes each connection's protocol (an <see cref="IProtocol"/> or <see cref="IBufferedProtocol"/>); called on the loop that serves it.</param>
    /// <param name="host">The address to listen on; null for every interface (IPv4 and IPv6).</param>
    /// <param name="port">The port; 0 for one the system picks.</param>
    /// <param name="distribution">A listener per loop (<see cref="GroupDistribution.ReusePort"/>) or one acceptor handing out connections in turn (<see cref="GroupDistribution.RoundRobin"/>).</param>
    /// <param name="options">Server options; <see cref="ServerOptions.Socket"/> must be null (for a socket of your own, use the overload that takes one).</param>
    /// <param name="cancellationToken">Cancels the start: what was opened so far is closed.</param>
    /// <exception cref="InvalidOperationException">The group is shutting down, every loop has failed, or the call came from one of its loops.</exception>
    /// <exception cref="ArgumentException"><paramref name="options"/> gives a socket, or asks a round-robin server not to start serving.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="distribution"/> is not a <see cref="GroupDistribution"/>, or <paramref name="port"/> is not 0 to 65535.</exception>
    public Task<GroupServer> StartServerAsync(Func<IBaseProtocol> protocolFactory, string? host, int port, GroupDistribution distribution,
        ServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        IReadOnlyList<string>? hosts = host is null ? null : [host];
        switch (distribution)
        {
            case GroupDistribution.ReusePort:
                CheckNoSocket(options, "A group makes a listener per loop: give the address, not a socket (ServerOptions.Socket must be null).");
                return StartReusePortAsync(protocolFactory, hosts, port, options, cancellationToken);
            case GroupDistribution.RoundRobin:
                CheckNoSocket(options, "Give the address, or the socket to the StartServerAsync overload that takes one, not ServerOptions.Socket.");
                var given = CheckRoundRobinOptions(options);
                var bind = given with { StartServing = false, Ssl = null };
                return StartRoundRobinAsync(protocolFactory, given, loop => loop.CreateServerAsync(s_neverCalled, hosts, port, bind), cancellationToken);
            default:
                throw new ArgumentOutOfRangeException(nameof(distribution), distribution, "Give GroupDistribution.ReusePort or GroupDistribution.RoundRobin.");
        }
    }

    /// <summary>
    /// Serves a listening (or bound) stream socket the caller made, a systemd socket say, on every loop
    /// still running, round robin (<see cref="GroupDistribution.RoundRobin"/>): a socket already made
    /// cannot be bound again per loop. Once the arguments are accepted the socket is the group's: it is
    /// closed when the server closes, or if the start fails; a call refused at once leaves it to the caller.
    /// </summary>
    /// <param name="protocolFactory">Makes each connection's protocol; called on the loop that serves it.</param>
    /// <param name="socket">A bound or listening stream socket (TCP or UNIX).</param>
    /// <param name="options">Server options (<see cref="ServerOptions.Backlog"/> is the backlog it listens with); <see cref="ServerOptions.Socket"/> must be null.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <exception cref="InvalidOperationException">The group is shutting down, every loop has failed, or the call came from one of its loops.</exception>
    /// <exception cref="ArgumentException"><paramref name="socket"/> is not a stream socket, or <paramref name="options"/> gives a socket too.</exception>
    public Task<GroupServer> StartServerAsync(Func<IBaseProtocol> protocolFactory, Socket socket, ServerOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentNullException.ThrowIfNull(socket);
        if (socket.SocketType != SocketType.Stream)
        {
            throw new ArgumentException($"A group server needs a stream socket (TCP or UNIX); got a {socket.SocketType} socket.", nameof(socket));
        }

        CheckNoSocket(options, "The socket is the second argument: leave ServerOptions.Socket null.");
        var given = CheckRoundRobinOptions(options);
        var bind = given with { StartServing = false, Ssl = null, Socket = socket };
        return StartRoundRobinAsync(protocolFactory, given, loop => loop.CreateServerAsync(s_neverCalled, null, 0, bind), cancellationToken, socket);
    }

    /// <summary>
    /// Serves the UNIX stream socket <paramref name="path"/> on every loop still running, round robin
    /// (<c>SO_REUSEPORT</c> does not apply to UNIX sockets). A stale socket file is replaced; the file is
    /// removed when the server closes.
    /// </summary>
    /// <param name="protocolFactory">Makes each connection's protocol; called on the loop that serves it.</param>
    /// <param name="path">The socket file's path.</param>
    /// <param name="options">Server options; <see cref="ServerOptions.Socket"/> must be null.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <exception cref="InvalidOperationException">The group is shutting down, every loop has failed, or the call came from one of its loops.</exception>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty, or <paramref name="options"/> gives a socket.</exception>
    public Task<GroupServer> StartUnixServerAsync(Func<IBaseProtocol> protocolFactory, string path, ServerOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentException.ThrowIfNullOrEmpty(path);
        CheckNoSocket(options, "Give the path, not ServerOptions.Socket.");
        var given = CheckRoundRobinOptions(options);
        var bind = given with { StartServing = false, Ssl = null };
        return StartRoundRobinAsync(protocolFactory, given, loop => loop.CreateUnixServerAsync(s_neverCalled, path, bind), cancellationToken);
    }

    private static void CheckNoSocket(ServerOptions? options, string message)
    {
        if (options?.Socket is not null)
        {
            throw new ArgumentException(message, nameof(options));
        }
    }

    private static ServerOptions CheckRoundRobinOptions(ServerOptions? options)
    {
        if (options is { StartServing: false })
        {
            throw new ArgumentException(
                "A round-robin group server serves from the start (ServerOptions.StartServing = false is not supported): start it when it should serve.", nameof(options));
        }

        return options ?? new ServerOptions();
    }

    /// <summary>
    /// The round-robin start: a server per running loop that serves what it is handed, then, on the
    /// first running loop, the listener (bound by <paramref name="bind"/>, a server made not to serve)
    /// and the tasks that accept on it and hand each connection on.
    /// </summary>
    private async Task<GroupServer> StartRoundRobinAsync(Func<IBaseProtocol> protocolFactory, ServerOptions options,
        Func<IEventLoop, LoopTask<Server>> bind, CancellationToken cancellationToken, Socket? given = null)
    {
        // Refused here, a given socket is still the caller's; from the binding on it is the group's.
        CheckRunning();
        CheckNotOnALoop(nameof(StartServerAsync));
        var live = LiveMembers();
        cancellationToken.ThrowIfCancellationRequested();

        var servers = live.Select(m => new RoundRobinServer(m, protocolFactory, options)).ToArray();
        var acceptorServer = servers[0];
        try
        {
            var binder = await acceptorServer.Loop.RunCoroutineThreadSafe(() => bind(acceptorServer.Loop), cancellationToken).ConfigureAwait(false);
            var endPoints = await OnLoop(acceptorServer.Loop, async () =>
            {
                await Tasks.Yield(); // (a coroutine; the start itself is synchronous)
                return acceptorServer.StartAccepting(binder, servers, options.Backlog, given is not null);
            }).ConfigureAwait(false);
            var group = new GroupServer(servers, endPoints, GroupDistribution.RoundRobin);
            lock (_lock)
            {
                _servers.Add(group);
            }

            return group;
        }
        catch
        {
            given?.Dispose(); // closed already if the binder took it; disposing twice is harmless
            RoundRobinServer.NothingHandedOver(servers);
            await CloseAllAsync(servers).ConfigureAwait(false);
            throw;
        }
    }

    private Member[] LiveMembers()
    {
        var live = _members.Where(m => IsRunning(m.Loop)).ToArray();
        if (live.Length == 0)
        {
            throw new InvalidOperationException("Every loop of the group has failed (see Failures): there is no loop left to serve on; make a new group.");
        }

        return live;
    }

    private async Task CloseAllAsync(IEnumerable<Server> servers)
    {
        foreach (var server in servers)
        {
            if (!IsRunning(server.Loop))
            {
                continue;
            }

            try
            {
                await OnLoop(server.Loop, async () => await server.DisposeAsync()).ConfigureAwait(false);
            }
            catch (InvalidOperationException)
            {
                // its loop ended meanwhile
            }
        }
    }

    /// <summary>
    /// A loop's thread has ended (stopped or failed): the sockets still on their way to it are closed, and
    /// the listeners of round-robin servers it accepted for are closed, so that clients are refused rather
    /// than left waiting in a backlog nobody accepts from. Runs on that loop's thread, after the loop closed.
    /// </summary>
    private void OnMemberEnded(Member member)
    {
        List<GroupServer> servers;
        lock (_lock)
        {
            servers = [.. _servers];
        }

        foreach (var server in servers)
        {
            if (server.Servers.Count > 0 && server.Servers[0] is RoundRobinServer acceptor && ReferenceEquals(acceptor.Member, member))
            {
                acceptor.AbandonListeners();
            }
        }
    }

    private void OnAcceptFailed(Exception error)
    {
        if (_logger is not null)
        {
            Log.GroupAcceptFailed(_logger, error);
        }
    }

    /// <summary>
    /// The per-loop <see cref="Server"/> of a round-robin group server: it serves the connections the
    /// acceptor hands its loop (and, on the acceptor's loop, owns the listener and the accepting tasks),
    /// through the loop's public calls only (<see cref="IEventLoop.SockAcceptAsync"/>,
    /// <see cref="IEventLoop.ConnectAcceptedSocketAsync{TProtocol}(Func{TProtocol}, Socket, System.Net.Security.SslServerAuthenticationOptions?, CancellationToken)"/>),
    /// so it runs on any loop kind. It keeps its connections by wrapping each protocol: the wrapper's
    /// ConnectionMade and ConnectionLost add and remove them. Owned by its loop's thread, but for
    /// <see cref="AbandonListeners"/>.
    /// </summary>
    /// <remarks>
    /// A protocol that steps aside (<see cref="IBaseTransport.SetProtocol"/>, or a TLS upgrade that puts
    /// the TLS layer in its place) takes the wrapper out of the transport's path, so the connection's end
    /// is not seen: it is counted until <see cref="AbortClients"/>, which forgets what it aborted two loop
    /// iterations later (an aborted connection's ConnectionLost runs on the next), so a shutdown never waits
    /// on it forever; the drain and close periods may then run to their end.
    /// </remarks>
    private sealed class RoundRobinServer : Server
    {
        private readonly Func<IBaseProtocol> _protocolFactory;
        private readonly ServerOptions _options;
        private readonly Func<IBaseProtocol> _makeTracked;
        private readonly HashSet<ITransport> _clients = new(ReferenceEqualityComparer.Instance);
        private readonly HashSet<LoopTask> _connecting = new(ReferenceEqualityComparer.Instance);
        private readonly List<Future<VoidResult>> _waiters = [];
        // Written on this loop; the acceptor's thread reads it to skip a closed server.
        private volatile bool _closed;
        // No more sockets will be handed here: the acceptor's listeners are closed, and what it handed over
        // before is in this loop's queue ahead of the notice. Until then a closed server still serves what it
        // is handed (it was accepted while the group server was open); its WaitClosedAsync waits for this too.
        private volatile bool _handOffsOver;
        private Future<VoidResult>? _serveForever;
        // The acceptor's part, on the first loop's server only.
        private Server? _binder;
        private Socket[] _listeners = [];
        private RoundRobinServer[] _targets = [];
        private LoopTask[] _accepting = [];
        private int _next;
        private bool _listenersClosed = true;
        private bool _listenerGiven; // the caller's (a systemd socket, say): its listen may be shared, so never shut down

        public RoundRobinServer(Member member, Func<IBaseProtocol> protocolFactory, ServerOptions options)
        {
            Member = member;
            _protocolFactory = protocolFactory;
            _options = options;
            _makeTracked = MakeTracked;
        }

        public Member Member { get; }

        /// <inheritdoc/>
        public override IReadOnlyList<Socket> Sockets => _listenersClosed || _closed ? Array.Empty<Socket>() : _listeners;

        /// <inheritdoc/>
        public override IEventLoop Loop => Member.Loop;

        /// <inheritdoc/>
        public override bool IsServing => !_closed;

        /// <summary>Connections served and not yet lost, and ones still starting.</summary>
        private int ClientCount => _clients.Count + _connecting.Count;

        /// <inheritdoc/>
        /// <remarks>A round-robin server serves from its start: nothing to do.</remarks>
        public override void StartServing()
        {
        }

        /// <summary>On the acceptor's loop: listens on what <paramref name="binder"/> bound and starts accepting; returns the addresses.</summary>
        public IReadOnlyList<EndPoint> StartAccepting(Server binder, RoundRobinServer[] targets, int backlog, bool given)
        {
            _listenerGiven = given;
            _binder = binder;
            _listeners = [.. binder.Sockets];
            _targets = targets;
            _listenersClosed = false;
            try
            {
                foreach (var socket in _listeners)
                {
                    socket.Listen(backlog);
                }
            }
            catch
            {
                CloseListeners();
                throw;
            }

            _accepting = Array.ConvertAll(_listeners, socket => Loop.CreateTask(() => AcceptAsync(socket), "group-acceptor"));
            return _listeners.Select(static s => s.LocalEndPoint!).ToArray();
        }

        /// <summary>Accepts on <paramref name="listener"/> until the server closes, handing each connection to the next loop in turn.</summary>
        private async LoopTask AcceptAsync(Socket listener)
        {
            while (!_closed)
            {
                Socket connection;
                try
                {
                    connection = await Loop.SockAcceptAsync(listener);
                }
                catch (Exception ex) when (_closed && ex is not CancelledError)
                {
                    return; // the listen was stopped under the accept (shutdown(2) makes accept fail)
                }
                catch (SocketException ex)
                {
                    // Out of fds or memory (EMFILE, ENFILE, ENOBUFS) or a connection reset in the backlog:
                    // wait and try again, as asyncio's ACCEPT_RETRY_DELAY (1 s) does, rather than spin.
                    Member.Group.OnAcceptFailed(ex);
                    await Tasks.Sleep(1.0);
                    continue;
                }

                if (_closed)
                {
                    connection.Dispose(); // accepted as the server closed: as one left in the backlog
                    return;
                }

                HandOff(connection);
            }
        }

        /// <summary>To the next loop that is running (the acceptor's included); a loop that has ended is skipped.</summary>
        private void HandOff(Socket connection)
        {
            int n = _targets.Length;
            for (int tries = 0; tries < n; tries++)
            {
                int i = (_next + tries) % n;
                if (!_targets[i]._closed && _targets[i].Member.TryHand(_targets[i], connection))
                {
                    _next = (i + 1) % n;
                    return;
                }
            }

            connection.Dispose(); // every loop has ended or closed its server: nobody to serve it
        }

        /// <summary>
        /// On this server's loop: a connection the acceptor handed over. Served even if this server closed
        /// meanwhile (it was accepted while the group server was open, and the shutdown waits for it), unless
        /// the hand-offs were declared over, when it is closed.
        /// </summary>
        public void Adopt(Socket connection)
        {
            if (_closed && _handOffsOver)
            {
                connection.Dispose();
                return;
            }

            var task = Loop.CreateTask(() => ConnectAsync(connection), eagerStart: false);
            _connecting.Add(task);
            task.AddDoneCallback(t =>
            {
                _connecting.Remove((LoopTask)t);
                if (!t.Cancelled && t.Exception() is { } error)
                {
                    Loop.CallExceptionHandler(new ExceptionContext("A connection handed over by the group's acceptor could not start") { Exception = error });
                }

                WakeIfClosed();
            });
        }

        private async LoopTask ConnectAsync(Socket connection)
        {
            if (connection.ProtocolType == ProtocolType.Tcp)
            {
                connection.NoDelay = _options.NoDelay;
            }

            // The call owns the socket from here: it closes it if it fails or is cancelled.
            if (_options.Ssl is { } ssl)
            {
                await Loop.ConnectAcceptedSocketAsync(_makeTracked, connection, ssl, _options.SslHandshakeTimeout, _options.SslShutdownTimeout);
            }
            else
            {
                await Loop.ConnectAcceptedSocketAsync(_makeTracked, connection);
            }
        }

        private IBaseProtocol MakeTracked()
        {
            var inner = _protocolFactory() ?? throw new InvalidOperationException("The group server's protocol factory returned null.");
            return inner switch
            {
                IBufferedProtocol buffered => new TrackedBufferedProtocol(this, buffered),
                IProtocol stream => new TrackedProtocol(this, stream),
                _ => throw new InvalidOperationException($"A group server's protocol must be an {nameof(IProtocol)} or an {nameof(IBufferedProtocol)}; the factory made a {inner.GetType().Name}."),
            };
        }

        public void Attach(ITransport transport) => _clients.Add(transport);

        public void Detach(ITransport transport)
        {
            if (_clients.Remove(transport))
            {
                WakeIfClosed();
            }
        }

        /// <inheritdoc/>
        public override async LoopTask ServeForeverAsync(CancellationToken cancellationToken = default)
        {
            if (_serveForever is not null)
            {
                throw new InvalidOperationException("ServeForeverAsync is already running on this server.");
            }

            if (_closed)
            {
                throw new InvalidOperationException("The server is closed.");
            }

            using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
            _serveForever = new Future<VoidResult>(Loop);
            try
            {
                await _serveForever;
            }
            finally
            {
                _serveForever = null;
                Close();
            }
        }

        /// <inheritdoc/>
        /// <remarks>
        /// On the acceptor's loop the listen stops at once (shutdown(2) of the listening socket: clients are
        /// refused from here on; not for a socket the caller gave, whose listen systemd may share), the
        /// accepting tasks are cancelled, and the socket is closed once they have ended (so no loop watches a
        /// closed fd); <see cref="WaitClosedAsync"/> waits for that too. A connection handed over after this
        /// is closed at once.
        /// </remarks>
        public override void Close()
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            _serveForever?.TrySetResult(default);
            if (_accepting.Length > 0 && !_listenersClosed)
            {
                StopListening();
                foreach (var task in _accepting)
                {
                    task.Cancel();
                }

                var all = Tasks.Gather(Loop, _accepting.Select(static t => (Future)t).ToList(), returnExceptions: true);
                all.AddDoneCallback(_ =>
                {
                    CloseListeners();
                    WakeIfClosed();
                });
            }
            else
            {
                CloseListeners();
            }

            WakeIfClosed();
        }

        private void CloseListeners()
        {
            if (_listenersClosed && _binder is null)
            {
                return;
            }

            _listenersClosed = true;
            _binder?.Close(); // closes the sockets (and removes a UNIX socket file)
            _binder = null;
            AnnounceHandOffsOver();
        }

        /// <summary>
        /// From the acceptor's thread, once it hands nothing more: tells each loop's server, through that loop's
        /// queue (behind the hand-offs already posted there, so that each is taken first).
        /// </summary>
        private void AnnounceHandOffsOver()
        {
            foreach (var target in _targets)
            {
                if (ReferenceEquals(target, this))
                {
                    _handOffsOver = true;
                    continue;
                }

                try
                {
                    target.Loop.CallSoonThreadSafe(static t => t.OnHandOffsOver(), target);
                }
                catch (InvalidOperationException)
                {
                    // that loop has closed: nobody waits there
                }
            }
        }

        private void OnHandOffsOver()
        {
            _handOffsOver = true;
            WakeIfClosed();
        }

        /// <summary>The start failed before anything was accepted: nothing will be handed to any of <paramref name="servers"/>.</summary>
        public static void NothingHandedOver(IEnumerable<RoundRobinServer> servers)
        {
            foreach (var server in servers)
            {
                server._handOffsOver = true;
            }
        }

        /// <summary>
        /// The acceptor's loop has ended (it failed): its accepting is over, so the listening sockets are
        /// closed from the ending thread (the loop is closed: nothing else uses them). A UNIX socket file
        /// is left behind.
        /// </summary>
        public void AbandonListeners()
        {
            _closed = true;
            _listenersClosed = true;
            // The dead loop may still hold a reference on the socket's handle (a registration it never undid),
            // so that Dispose alone would leave the fd, and the listen, open: stop the listen first.
            StopListening();
            foreach (var socket in _listeners)
            {
                socket.Dispose();
            }

            AnnounceHandOffsOver();
        }

        /// <summary>
        /// shutdown(2) of the listening sockets: on Linux a listening socket shut down stops listening at once,
        /// and connection attempts are refused (a UNIX one too). Not for a socket the caller gave.
        /// </summary>
        private void StopListening()
        {
            if (_listenerGiven)
            {
                return;
            }

            foreach (var socket in _listeners)
            {
                try
                {
                    socket.Shutdown(SocketShutdown.Both);
                }
                catch (SocketException)
                {
                    // the platform refuses shutdown on a listener: closing it still ends the listen
                }
                catch (ObjectDisposedException)
                {
                }
            }
        }

        /// <inheritdoc/>
        public override void CloseClients()
        {
            foreach (var task in _connecting.ToArray())
            {
                task.Cancel(); // still in its TLS handshake: nothing of it reached the application
            }

            foreach (var client in _clients.ToArray())
            {
                client.Close();
            }
        }

        /// <inheritdoc/>
        public override void AbortClients()
        {
            foreach (var task in _connecting.ToArray())
            {
                task.Cancel();
            }

            var aborted = _clients.ToArray();
            foreach (var client in aborted)
            {
                client.Abort();
            }

            if (aborted.Length > 0)
            {
                // An aborted connection's ConnectionLost runs on the next iteration; one whose protocol stepped
                // aside never tells the wrapper (see the class remarks): forget it the iteration after.
                Loop.CallSoon(() => Loop.CallSoon(() =>
                {
                    foreach (var client in aborted)
                    {
                        Detach(client);
                    }
                }));
            }
        }

        /// <inheritdoc/>
        public override async LoopTask WaitClosedAsync(CancellationToken cancellationToken = default)
        {
            if (IsFullyClosed)
            {
                return;
            }

            using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
            var waiter = new Future<VoidResult>(Loop);
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

        private bool IsFullyClosed => _closed && _handOffsOver && _listenersClosed && _clients.Count == 0 && _connecting.Count == 0;

        private void WakeIfClosed()
        {
            if (!IsFullyClosed)
            {
                return;
            }

            foreach (var waiter in _waiters.ToArray())
            {
                waiter.TrySetResult(default);
            }
        }

        /// <inheritdoc/>
        public override string ToString() => $"<GroupServer round-robin loop={Member.Index} listeners={Sockets.Count} serving={!_closed} clients={ClientCount}>";
    }

    /// <summary>A stream protocol with the group server's bookkeeping around its ConnectionMade and ConnectionLost.</summary>
    private sealed class TrackedProtocol(RoundRobinServer server, IProtocol inner) : IProtocol
    {
        private ITransport? _transport;

        public void ConnectionMade(IBaseTransport transport)
        {
            _transport = (ITransport)transport;
            server.Attach(_transport);
            inner.ConnectionMade(transport);
        }

        public void DataReceived(ReadOnlySpan<byte> data) => inner.DataReceived(data);

        public bool EofReceived() => inner.EofReceived();

        public void PauseWriting() => inner.PauseWriting();

        public void ResumeWriting() => inner.ResumeWriting();

        public void ConnectionLost(Exception? exception)
        {
            try
            {
                inner.ConnectionLost(exception);
            }
            finally
            {
                if (_transport is { } transport)
                {
                    server.Detach(transport);
                }
            }
        }

        public override string ToString() => inner.ToString() ?? nameof(TrackedProtocol);
    }

    /// <summary>A buffered protocol with the group server's bookkeeping around its ConnectionMade and ConnectionLost.</summary>
    private sealed class TrackedBufferedProtocol(RoundRobinServer server, IBufferedProtocol inner) : IBufferedProtocol
    {
        private ITransport? _transport;

        public void ConnectionMade(IBaseTransport transport)
        {
            _transport = (ITransport)transport;
            server.Attach(_transport);
            inner.ConnectionMade(transport);
        }

        public Memory<byte> GetBuffer(int sizeHint) => inner.GetBuffer(sizeHint);

        public void BufferUpdated(int bytesWritten) => inner.BufferUpdated(bytesWritten);

        public bool EofReceived() => inner.EofReceived();

        public void PauseWriting() => inner.PauseWriting();

        public void ResumeWriting() => inner.ResumeWriting();

        public void ConnectionLost(Exception? exception)
        {
            try
            {
                inner.ConnectionLost(exception);
            }
            finally
            {
                if (_transport is { } transport)
                {
                    server.Detach(transport);
                }
            }
        }

        public override string ToString() => inner.ToString() ?? nameof(TrackedBufferedProtocol);
    }
}
