using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Threading;

namespace Tulip;

public abstract partial class BaseEventLoop
{
    /// <summary>
    /// The <see cref="Server"/> of every base loop (asyncio's <c>base_events.Server</c>): it owns the
    /// listening sockets, listens when serving starts, joins each accepted connection to a new
    /// protocol, and keeps the connections not yet lost. Accepting and making the accepted
    /// connections' transports is the multiplexer's, through <see cref="StartAccepting"/> (asyncio's
    /// <c>_accept_connection</c> is the selector loop's too).
    /// </summary>
    /// <remarks>
    /// <see cref="ServeForeverAsync"/> stops serving at once when it is cancelled or the server is
    /// closed; it never waits for the connections (asyncio 3.12's <c>serve_forever</c> waits in
    /// <c>wait_closed</c> for every client, so one idle client kept it from returning). Waiting for
    /// them is the caller's choice: <see cref="WaitClosedAsync"/> with a token or a timeout, or
    /// <see cref="Server.ShutdownAsync"/>. Owned by the loop thread.
    /// </remarks>
    internal sealed class SocketServer : Server
    {
        private readonly BaseEventLoop _loop;
        private readonly Func<IBaseProtocol> _protocolFactory;
        private readonly ServerOptions _options;
        // The connections accepted and not yet lost. Transports that carry the links (IServerClient:
        // the selector loop's) are in a list threaded through them, so a client costs no set entry
        // and leaves no outgrown arrays on the large object heap (docs/PERFORMANCE.md, "Memory per
        // idle connection"); any other transport is in _otherClients.
        private ITransport? _firstClient;
        private int _linkedClients;
        private HashSet<ITransport>? _otherClients;
        private readonly List<Future<VoidResult>> _waiters = new();
        private readonly string? _unixPath;
        private readonly ulong _unixInode;
        // One delegate of each per server, handed to the hooks: no allocation per connection.
        private readonly Func<IBaseProtocol> _makeProtocol;
        private readonly Action<ITransport> _attach;
        private readonly Action<ITransport> _detach;
        private Socket[]? _sockets;  // null once closed
        private IDisposable?[] _acceptors;
        private bool _serving;
        private bool _listening;     // listen(2) done: asyncio listens in _start_serving, not at creation
        private Future<VoidResult>? _serveForever;

        internal SocketServer(BaseEventLoop loop, Func<IBaseProtocol> protocolFactory, IReadOnlyList<Socket> sockets,
            ServerOptions options, string? unixPath, ulong unixInode)
        {
            _loop = loop;
            _protocolFactory = protocolFactory;
            _options = options;
            _sockets = new Socket[sockets.Count];
            for (int i = 0; i < sockets.Count; i++)
            {
                _sockets[i] = sockets[i];
            }

            _acceptors = new IDisposable?[sockets.Count];
            _unixPath = unixPath;
            _unixInode = unixInode;
            _makeProtocol = MakeProtocol;
            _attach = Attach;
            _detach = Detach;
        }

        /// <inheritdoc/>
        public override IReadOnlyList<Socket> Sockets => _sockets ?? (IReadOnlyList<Socket>)Array.Empty<Socket>();

        /// <inheritdoc/>
        public override IEventLoop Loop => _loop;

        /// <inheritdoc/>
        public override bool IsServing => _serving;

        /// <summary>Connections accepted and not yet lost (for tests and diagnostics).</summary>
        internal int ClientCount => _linkedClients + (_otherClients?.Count ?? 0);

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
            for (int i = 0; i < _sockets.Length; i++)
            {
                _acceptors[i] = _loop.StartAccepting(_sockets[i], _options, _makeProtocol, _attach, _detach);
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
                // Stop serving now; the connections are the caller's to wait for (see the class remarks).
                _serveForever = null;
                Close();
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
            for (int i = 0; i < _acceptors.Length; i++)
            {
                _acceptors[i]?.Dispose();
                _acceptors[i] = null;
            }

            foreach (var socket in sockets)
            {
                socket.Dispose();
            }

            RemoveUnixSocketFile();
            _serveForever?.TrySetResult(default);
            if (ClientCount == 0)
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
            if (_sockets is null && ClientCount == 0)
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
        public override string ToString() => $"<Server sockets={Sockets.Count} serving={_serving} clients={ClientCount}>";

        /// <summary>
        /// A transport the multiplexer made for an accepted connection (asyncio's <c>Server._attach</c>).
        /// ConnectionLost (and so <see cref="Detach"/>) is scheduled, never called from inside the
        /// hook, so adding after the transport was made is in time.
        /// </summary>
        private void Attach(ITransport transport)
        {
            if (transport is IServerClient link)
            {
                if (link.IsServerClient)
                {
                    return;
                }

                link.IsServerClient = true;
                link.PreviousClient = null;
                link.NextClient = _firstClient;
                if (_firstClient is IServerClient first)
                {
                    first.PreviousClient = transport;
                }

                _firstClient = transport;
                _linkedClients++;
            }
            else
            {
                (_otherClients ??= new HashSet<ITransport>()).Add(transport);
            }
        }

        /// <summary>Called by the transport of a connection this server accepted, once its ConnectionLost has run.</summary>
        private void Detach(ITransport transport)
        {
            if (transport is IServerClient link)
            {
                if (!link.IsServerClient)
                {
                    return;
                }

                link.IsServerClient = false;
                if (link.PreviousClient is IServerClient previous)
                {
                    previous.NextClient = link.NextClient;
                }
                else
                {
                    _firstClient = link.NextClient;
                }

                if (link.NextClient is IServerClient next)
                {
                    next.PreviousClient = link.PreviousClient;
                }

                link.PreviousClient = null;
                link.NextClient = null;
                _linkedClients--;
            }
            else if (_otherClients is null || !_otherClients.Remove(transport))
            {
                return;
            }

            if (ClientCount == 0 && _sockets is null)
            {
                WakeWaiters();
            }
        }

        private ITransport[] Snapshot()
        {
            var copy = new ITransport[ClientCount];
            int i = 0;
            for (var client = _firstClient; client is not null; client = ((IServerClient)client).NextClient)
            {
                copy[i++] = client;
            }

            _otherClients?.CopyTo(copy, i);
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
            if (UnixSocketFile.TryGetIdentity(_unixPath, out ulong inode) && inode == _unixInode)
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

        /// <summary>The protocol of a connection the multiplexer accepted: the server's factory's, never null.</summary>
        /// <exception cref="InvalidOperationException">The factory returned null.</exception>
        private IBaseProtocol MakeProtocol() =>
            _protocolFactory() ?? throw new InvalidOperationException("The protocol factory returned null.");
    }
}
