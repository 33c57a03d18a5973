using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Tulip;

// The base loop's transport hooks, the completion way (asyncio's proactor_events): stream
// transports with one receive outstanding, a chain of accept operations per listener, and the
// Sock* primitives the connection code awaits, on .NET's asynchronous socket operations.
public sealed partial class ProactorEventLoop
{
    /// <summary>asyncio's ACCEPT_RETRY_DELAY: seconds a listener rests after running out of descriptors or buffers.</summary>
    internal const double AcceptRetryDelay = 1.0;

    /// <inheritdoc/>
    /// <remarks>A <see cref="ProactorSocketTransport"/>: asyncio's <c>_ProactorSocketTransport</c>.</remarks>
    protected override ITransport MakeSocketTransport(Socket socket, IBaseProtocol protocol, Future<VoidResult>? waiter,
        Action<ITransport>? connectionLost) =>
        new ProactorSocketTransport(this, socket, protocol, waiter, connectionLost);

    /// <inheritdoc/>
    /// <remarks>One accept operation outstanding per listener, reused; after running out of descriptors
    /// or buffers the listener rests <see cref="AcceptRetryDelay"/> seconds.</remarks>
    protected override IDisposable StartAccepting(Socket listener, ServerOptions options, Func<IBaseProtocol> protocolFactory,
        Action<ITransport> accepted, Action<ITransport> connectionLost)
    {
        ArgumentNullException.ThrowIfNull(listener);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentNullException.ThrowIfNull(accepted);
        ArgumentNullException.ThrowIfNull(connectionLost);
        var acceptor = new Acceptor(this, listener, options, protocolFactory, accepted, connectionLost);
        acceptor.Start();
        return acceptor;
    }

    /// <inheritdoc/>
    public override async LoopTask SockConnectAsync(Socket socket, EndPoint address, CancellationToken cancellationToken = default)
    {
        CheckSockCall(socket);
        ArgumentNullException.ThrowIfNull(address);
        if (address is DnsEndPoint)
        {
            throw new ArgumentException("SockConnectAsync needs a resolved address (IPEndPoint, UnixDomainSocketEndPoint): resolve names with GetAddrInfoAsync.", nameof(address));
        }

        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var token = CurrentTask?.CancellationToken ?? default;
        if (socket.AddressFamily == AddressFamily.Unix)
        {
            await UnixConnectAsync(socket, address);
            return;
        }

        try
        {
            await CountedAsync(socket.ConnectAsync(address, token));
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            throw new CancelledError();
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset && socket.SocketType == SocketType.Stream)
        {
            NoteResetAtConnect(socket, address); // made, then reset: see ProactorEventLoop.ConnectReset.cs
        }
    }

    /// <summary>One listening socket being served: its reusable accept operation and retry timer. Owned by the loop thread.</summary>
    private sealed class Acceptor : IDisposable
    {
        private readonly ProactorEventLoop _loop;
        private readonly Socket _listener;
        private readonly bool _noDelay;
        private readonly Func<IBaseProtocol> _protocolFactory;
        private readonly Action<ITransport> _accepted;
        private readonly Action<ITransport> _connectionLost;
        private readonly ProactorOperation _accept;
        private TimerHandle? _retry;
        private bool _stopped;

        public Acceptor(ProactorEventLoop loop, Socket listener, ServerOptions options, Func<IBaseProtocol> protocolFactory,
            Action<ITransport> accepted, Action<ITransport> connectionLost)
        {
            _loop = loop;
            _listener = listener;
            _noDelay = options.NoDelay && listener.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6;
            _protocolFactory = protocolFactory;
            _accepted = accepted;
            _connectionLost = connectionLost;
            _accept = new ProactorOperation(loop, loop.MakeCompletionHandle(static a => a.OnAccepted(), this));
        }

        public void Start()
        {
            _retry = null;
            while (!_stopped && !_accept.Pending)
            {
                _accept.AcceptSocket = null;
                _accept.Pending = true;
                bool pending;
                try
                {
                    pending = _listener.AcceptAsync(_accept);
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    _accept.Pending = false;
                    _loop.CallExceptionHandler(new ExceptionContext("Error on socket.accept()") { Exception = ex, Socket = _listener });
                    return;
                }

                if (pending)
                {
                    return;
                }

                // Completed at once: handle it here and go round for the next, as a readiness loop
                // accepts several per wake-up, but at most a handful so other callbacks are not starved.
                _accept.Pending = false;
                if (!Handle())
                {
                    return;
                }
            }
        }

        public void Dispose()
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
            _retry?.Cancel();
            _retry = null;
            if (!_accept.Pending)
            {
                _accept.Dispose();
            }

            // A pending accept completes (aborted) when the server closes the listener; OnAccepted then disposes it.
        }

        private void OnAccepted()
        {
            _accept.Pending = false;
            if (_stopped)
            {
                _accept.AcceptSocket?.Dispose();
                _accept.Dispose();
                return;
            }

            if (Handle())
            {
                Start();
            }
        }

        /// <summary>Takes the completed accept; false when the acceptor must not go on now.</summary>
        private bool Handle()
        {
            var error = _accept.SocketError;
            var connection = _accept.AcceptSocket;
            _accept.AcceptSocket = null;
            if (error != SocketError.Success)
            {
                connection?.Dispose();
                switch (error)
                {
                    case SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Interrupted or SocketError.WouldBlock:
                        return true;
                    case SocketError.OperationAborted:
                        return false; // the listener was closed
                    case SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable:
                        _loop.CallExceptionHandler(new ExceptionContext("socket.accept() out of system resource")
                        {
                            Exception = new SocketException((int)error),
                            Socket = _listener,
                        });
                        Diagnostics.TulipMetrics.AcceptBackedOff(_loop);
                        _retry = _loop.CallLater(AcceptRetryDelay, static a => a.Start(), this);
                        return false;
                    default:
                        _loop.CallExceptionHandler(new ExceptionContext("Error on socket.accept()")
                        {
                            Exception = new SocketException((int)error),
                            Socket = _listener,
                        });
                        return true;
                }
            }

            if (connection is null)
            {
                return true;
            }

            IBaseProtocol? protocol = null;
            ITransport transport;
            try
            {
                connection.Blocking = false;
                if (_noDelay)
                {
                    connection.NoDelay = true;
                }

                protocol = _protocolFactory();
                transport = new ProactorSocketTransport(_loop, connection, protocol, null, _connectionLost);
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
                return true;
            }

            _accepted(transport);
            return !_stopped;
        }
    }
}
