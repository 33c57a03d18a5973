using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Threading;

namespace Tulip;

// Stream connections and servers (PEP 3156 "Internet connections"), whole and platform-neutral, as
// asyncio's base_events.py has them: resolving names without blocking, trying addresses in turn or
// staggered (happy eyeballs), binding listeners, and joining each connected socket to a protocol
// from the caller's factory. What needs the multiplexer is asked of it through the hooks of
// BaseEventLoop.TransportHooks.cs (MakeSocketTransport, StartAccepting) and the Sock* primitives
// (SockConnectAsync). Any failure or cancellation, at any stage, closes what was made: a socket
// before a transport owns it, the transport (and so the socket) after.
public abstract partial class BaseEventLoop
{
    private const int SOL_SOCKET = 1;
    private const int SO_REUSEPORT = 15;

    private static readonly ConnectionOptions s_defaultConnectionOptions = new();
    private static readonly ServerOptions s_defaultServerOptions = new();

    /// <inheritdoc/>
    /// <remarks>
    /// Every address <paramref name="host"/> resolves to is tried in turn (or, with
    /// <see cref="ConnectionOptions.HappyEyeballsDelay"/>, staggered as RFC 8305 says). When all
    /// fail, a <see cref="SocketException"/> is thrown if they failed alike (the same
    /// <see cref="SocketException.SocketErrorCode"/>: asyncio compares the messages, which here name
    /// each address), otherwise an <see cref="ExceptionGroup"/> of every failure in the order they
    /// happened, its message listing them as asyncio's "Multiple exceptions: ..." does. That is
    /// asyncio 3.12's <c>all_errors=True</c> shape: a .NET caller loses nothing by it, and catching
    /// <see cref="AggregateException"/> still works. Cancelling at any stage closes the socket.
    /// </remarks>
    public virtual async LoopTask<(ITransport Transport, TProtocol Protocol)> CreateConnectionAsync<TProtocol>(Func<TProtocol> protocolFactory,
        string? host, int port, ConnectionOptions? options = null, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        options ??= s_defaultConnectionOptions;
        CheckSslArguments(options.Ssl is not null, options.SslHandshakeTimeout, options.SslShutdownTimeout);
        var ssl = options.Ssl is { } given0 ? ClientOptionsFor(given0, host) : null;
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        Socket socket;
        if (TakeGivenSocket(options, host, nameof(host), "Give host and port, or ConnectionOptions.Socket, not both.") is { } given)
        {
            socket = given;
        }
        else
        {
            if (host is null)
            {
                throw new ArgumentException("No host given, and no ConnectionOptions.Socket: nothing to connect to.", nameof(host));
            }

            var infos = await GetAddrInfoAsync(host, port, options.Family, SocketType.Stream, ProtocolType.Tcp, cancellationToken: cancellationToken);
            var order = Interleave(infos, options.Interleave ?? (options.HappyEyeballsDelay is null ? 0 : 1));
            socket = options.HappyEyeballsDelay is { } delay
                ? await HappyEyeballsConnectAsync(order, options.LocalEndPoint, delay)
                : await ConnectInTurnAsync(order, options.LocalEndPoint);
            DisposeIfCancelPending(socket);
        }

        bool tcp = socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6;
        return CloseIfCancelPending(ssl is null
            ? await StartSocketTransportAsync(socket, protocolFactory, tcp && options.NoDelay)
            : await StartSslTransportAsync(socket, protocolFactory, tcp && options.NoDelay, ssl, null, options.SslHandshakeTimeout, options.SslShutdownTimeout));
    }

    /// <inheritdoc/>
    /// <remarks>
    /// A null <paramref name="hosts"/> binds the wildcard of IPv4 and of IPv6 (the IPv6 socket is
    /// IPv6-only, so both can bind the same port). As in asyncio, the sockets listen only when
    /// serving starts: with <see cref="ServerOptions.StartServing"/> false they are bound, and
    /// connection attempts are refused, until <see cref="Server.StartServing"/>. Connections are
    /// accepted by the multiplexer's <see cref="StartAccepting"/>.
    /// </remarks>
    public virtual async LoopTask<Server> CreateServerAsync(Func<IBaseProtocol> protocolFactory, IReadOnlyList<string>? hosts, int port,
        ServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        options ??= s_defaultServerOptions;
        protocolFactory = WrapServerFactory(protocolFactory, options);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var sockets = new List<Socket>();
        try
        {
            if (options.Socket is { } given)
            {
                if (hosts is not null)
                {
                    throw new ArgumentException("Give hosts and port, or ServerOptions.Socket, not both.", nameof(hosts));
                }

                CheckStreamSocket(given);
                sockets.Add(given);
            }
            else
            {
                var endPoints = new List<IPEndPoint>();
                foreach (string? host in hosts ?? [null!])
                {
                    var infos = await GetAddrInfoAsync(host, port, options.Family, SocketType.Stream, ProtocolType.Tcp, AddressInfoFlags.Passive, cancellationToken);
                    foreach (var info in infos)
                    {
                        if (!endPoints.Contains(info.EndPoint))
                        {
                            endPoints.Add(info.EndPoint);
                        }
                    }
                }

                // The last await is behind us: a cancellation that arrived meanwhile ends the call
                // here, before any socket exists, rather than dropping a bound server with the result.
                ThrowIfCancelPending();
                foreach (var endPoint in endPoints)
                {
                    var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                    sockets.Add(socket);
                    ConfigureListener(socket, options);
                    if (endPoint.AddressFamily == AddressFamily.InterNetworkV6)
                    {
                        // IPV6_V6ONLY, as asyncio: the IPv4 wildcard gets its own socket on the same port.
                        socket.DualMode = false;
                    }

                    BindWithContext(socket, endPoint);
                }
            }

            foreach (var socket in sockets)
            {
                socket.Blocking = false;
            }
        }
        catch
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }

            throw;
        }

        return StartServer(new SocketServer(this, protocolFactory, sockets, options, null, 0), options);
    }

    /// <summary>Starts serving if <paramref name="options"/> say so; a server that cannot listen is closed before the error goes on.</summary>
    private static Server StartServer(SocketServer server, ServerOptions options)
    {
        if (options.StartServing)
        {
            try
            {
                server.StartServing();
            }
            catch
            {
                server.Close();
                throw;
            }
        }

        return server;
    }

    /// <inheritdoc/>
    public virtual async LoopTask<(ITransport Transport, TProtocol Protocol)> CreateUnixConnectionAsync<TProtocol>(Func<TProtocol> protocolFactory,
        string? path, ConnectionOptions? options = null, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        options ??= s_defaultConnectionOptions;
        CheckSslArguments(options.Ssl is not null, options.SslHandshakeTimeout, options.SslShutdownTimeout);
        var ssl = options.Ssl is { } given0 ? ClientOptionsFor(given0, null) : null;
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        Socket socket;
        if (TakeGivenSocket(options, path, nameof(path), "Give a path, or ConnectionOptions.Socket, not both.") is { } given)
        {
            socket = given;
        }
        else
        {
            ArgumentException.ThrowIfNullOrEmpty(path);
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                socket.Blocking = false;
                await SockConnectAsync(socket, new UnixDomainSocketEndPoint(path), cancellationToken);
                ThrowIfCancelPending();
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        return CloseIfCancelPending(ssl is null
            ? await StartSocketTransportAsync(socket, protocolFactory, noDelay: false)
            : await StartSslTransportAsync(socket, protocolFactory, false, ssl, null, options.SslHandshakeTimeout, options.SslShutdownTimeout));
    }

    /// <inheritdoc/>
    /// <remarks>
    /// A socket file left at <paramref name="path"/> by a dead server is removed first (any other
    /// kind of file is left alone, and binding then fails). Closing the server removes the socket
    /// file it made, unless something else has replaced it since.
    /// </remarks>
    public virtual LoopTask<Server> CreateUnixServerAsync(Func<IBaseProtocol> protocolFactory, string? path,
        ServerOptions? options = null, CancellationToken cancellationToken = default) =>
        CreateUnixServerCoreAsync(protocolFactory, path, options ?? s_defaultServerOptions, cancellationToken);

    /// <inheritdoc/>
    /// <remarks>The socket is the transport's from the call on: it is closed if the call fails or is cancelled.</remarks>
    public virtual async LoopTask<(ITransport Transport, TProtocol Protocol)> ConnectAcceptedSocketAsync<TProtocol>(Func<TProtocol> protocolFactory,
        Socket socket, SslServerAuthenticationOptions? ssl = null, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        CheckStreamSocket(socket);
        if (ssl is not null)
        {
            return await ConnectAcceptedSocketAsync(protocolFactory, socket, ssl, SslProtocol.DefaultHandshakeTimeout, SslProtocol.DefaultShutdownTimeout, cancellationToken);
        }

        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        socket.Blocking = false;
        bool tcp = socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6;
        return CloseIfCancelPending(await StartSocketTransportAsync(socket, protocolFactory, tcp));
    }

#pragma warning disable CS1998 // Kept async so argument errors surface through the task, as in the other Create*Async methods.
    private async LoopTask<Server> CreateUnixServerCoreAsync(Func<IBaseProtocol> protocolFactory, string? path,
        ServerOptions options, CancellationToken cancellationToken)
#pragma warning restore CS1998
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        protocolFactory = WrapServerFactory(protocolFactory, options);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        Socket socket;
        ulong inode = 0;
        string? ownedPath = null;
        if (options.Socket is { } given)
        {
            if (path is not null)
            {
                throw new ArgumentException("Give a path, or ServerOptions.Socket, not both.", nameof(path));
            }

            CheckStreamSocket(given);
            socket = given;
        }
        else
        {
            ArgumentException.ThrowIfNullOrEmpty(path);
            bool abstractName = path[0] == '\0';
            if (!abstractName && UnixSocketFile.IsSocket(path))
            {
                File.Delete(path); // a stale socket from a server that did not clean up
            }

            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                BindWithContext(socket, new UnixDomainSocketEndPoint(path));
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            if (!abstractName && UnixSocketFile.TryGetIdentity(path, out inode))
            {
                ownedPath = path;
            }
        }

        try
        {
            socket.Blocking = false;
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return StartServer(new SocketServer(this, protocolFactory, [socket], options, ownedPath, inode), options);
    }

    /// <summary>Joins a connected socket to a new protocol through <see cref="MakeSocketTransport"/>: see <see cref="StartTransportAsync"/>.</summary>
    private LoopTask<(ITransport, TProtocol)> StartSocketTransportAsync<TProtocol>(Socket socket, Func<TProtocol> protocolFactory, bool noDelay)
        where TProtocol : IBaseProtocol =>
        StartTransportAsync<ITransport, TProtocol, bool>(socket, protocolFactory, noDelay, static (loop, socket, protocol, noDelay, waiter) =>
        {
            if (noDelay)
            {
                socket.NoDelay = true;
            }

            return loop.MakeSocketTransport(socket, protocol, waiter, null);
        });

    /// <summary>
    /// Joins a socket to a new protocol (from <see cref="NewProtocol"/>) and the transport
    /// <paramref name="make"/> builds with a hook, and waits until the transport says
    /// ConnectionMade has run. The socket is closed if anything fails before the transport owns it;
    /// after that, a failure or a cancellation (delivered at the await, or pending when it returns)
    /// closes the transport, so the protocol that got ConnectionMade gets ConnectionLost.
    /// </summary>
    private async LoopTask<(TTransport, TProtocol)> StartTransportAsync<TTransport, TProtocol, TState>(Socket socket, Func<TProtocol> protocolFactory,
        TState state, Func<BaseEventLoop, Socket, TProtocol, TState, Future<VoidResult>, TTransport> make)
        where TTransport : class, IBaseTransport
        where TProtocol : IBaseProtocol
    {
        var waiter = new Future<VoidResult>(this);
        TProtocol protocol;
        TTransport transport;
        try
        {
            protocol = NewProtocol(protocolFactory);
            transport = make(this, socket, protocol, state, waiter)
                ?? throw new InvalidOperationException($"{GetType().Name}'s transport hook returned null: it must return the transport it made.");
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        try
        {
            await waiter;
            ThrowIfCancelPending();
        }
        catch
        {
            transport.Close();
            throw;
        }

        return (transport, protocol);
    }

    /// <summary>Calls the caller's protocol factory; a null protocol is its mistake, said clearly.</summary>
    private static TProtocol NewProtocol<TProtocol>(Func<TProtocol> protocolFactory) =>
        protocolFactory() ?? throw new InvalidOperationException("The protocol factory returned null.");

    /// <summary>
    /// True when the running task has a cancellation request that has not been delivered yet (it
    /// came while the task's last await was already done, so no await raised it). A method that
    /// hands back a resource checks this after its last await and, if so, releases the resource
    /// and throws: whatever the task model then does with a returned result, the resource cannot be
    /// lost with it, and the caller who cancelled gets the cancellation.
    /// </summary>
    private protected static bool CancelPending => RunningLoopOrNull?.CurrentTask is ILoopTask task && task.Cancelling() > 0;

    /// <summary>Throws <see cref="CancelledError"/> if <see cref="CancelPending"/>.</summary>
    private protected static void ThrowIfCancelPending()
    {
        if (CancelPending)
        {
            throw new CancelledError();
        }
    }

    /// <summary>Disposes <paramref name="socket"/> and throws if <see cref="CancelPending"/>.</summary>
    private static void DisposeIfCancelPending(Socket socket)
    {
        if (CancelPending)
        {
            socket.Dispose();
            throw new CancelledError();
        }
    }

    /// <summary>Returns <paramref name="made"/>, unless <see cref="CancelPending"/>: then closes its transport and throws.</summary>
    private static (TTransport Transport, TProtocol Protocol) CloseIfCancelPending<TTransport, TProtocol>((TTransport Transport, TProtocol Protocol) made)
        where TTransport : IBaseTransport
    {
        if (CancelPending)
        {
            made.Transport.Close();
            throw new CancelledError();
        }

        return made;
    }

    /// <summary>Tries each address in turn; throws every failure together if none connects.</summary>
    private async LoopTask<Socket> ConnectInTurnAsync(IReadOnlyList<AddressInfo> infos, EndPoint? localEndPoint)
    {
        var errors = new List<Exception>();
        foreach (var info in infos)
        {
            var socket = new Socket(info.Family, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.Blocking = false;
                if (localEndPoint is not null)
                {
                    BindWithContext(socket, localEndPoint);
                }

                await SockConnectAsync(socket, info.EndPoint);
                ThrowIfCancelPending();
                return socket;
            }
            catch (SocketException ex)
            {
                socket.Dispose();
                errors.Add(new SocketException((int)ex.SocketErrorCode, $"connect to {info.EndPoint}: {ex.Message}"));
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        throw ConnectFailure(errors);
    }

    /// <summary>
    /// RFC 8305 section 5: starts the next attempt when the previous one has not finished after
    /// <paramref name="delay"/> seconds (or has failed); the first to connect wins, the others are
    /// cancelled and their sockets closed.
    /// </summary>
    private async LoopTask<Socket> HappyEyeballsConnectAsync(IReadOnlyList<AddressInfo> infos, EndPoint? localEndPoint, double delay)
    {
        var errors = new List<Exception>();
        var attempts = new List<LoopTask<Socket>>();
        var pending = new List<LoopTask<Socket>>();
        Socket? winner = null;
        int next = 0;
        try
        {
            while (winner is null && (next < infos.Count || pending.Count > 0))
            {
                if (next < infos.Count)
                {
                    var attempt = ConnectInTurnAsync([infos[next++]], localEndPoint);
                    attempts.Add(attempt);
                    pending.Add(attempt);
                }

                // Wait for any attempt to finish, or for the delay (only while there is another address to start).
                var wake = new Future<VoidResult>(this);
                Action<Future> onDone = _ => wake.TrySetResult(default);
                foreach (var p in pending)
                {
                    p.AddDoneCallback(onDone);
                }

                var timer = next < infos.Count ? CallLater(delay, static f => f.TrySetResult(default), wake) : null;
                try
                {
                    await wake;
                }
                finally
                {
                    timer?.Cancel();
                    foreach (var p in pending)
                    {
                        p.RemoveDoneCallback(onDone);
                    }
                }

                for (int i = pending.Count - 1; i >= 0; i--)
                {
                    var p = pending[i];
                    if (!p.Done)
                    {
                        continue;
                    }

                    pending.RemoveAt(i);
                    if (p.Exception() is { } ex)
                    {
                        errors.AddRange(ex is AggregateException agg ? agg.InnerExceptions : [ex]);
                    }
                    else if (!p.Cancelled)
                    {
                        winner ??= p.Result();
                        if (!ReferenceEquals(winner, p.Result()))
                        {
                            p.Result().Dispose();
                        }
                    }
                }
            }
        }
        finally
        {
            foreach (var p in pending)
            {
                p.Cancel();
            }

            if (winner is null)
            {
                foreach (var p in attempts)
                {
                    if (p.Done && !p.Cancelled && p.Exception() is null)
                    {
                        p.Result().Dispose();
                    }
                }
            }
        }

        // Attempts still connecting when a winner was found are cancelled above; their sockets are
        // closed by ConnectInTurnAsync as the cancellation reaches them.
        if (winner is not null)
        {
            DisposeIfCancelPending(winner);
        }

        return winner ?? throw ConnectFailure(errors);
    }

    internal static Exception ConnectFailure(List<Exception> errors)
    {
        if (errors.Count == 0)
        {
            return new SocketException((int)SocketError.HostNotFound, "No address to connect to.");
        }

        if (errors.Count == 1 || errors.All(e => e is SocketException s && s.SocketErrorCode == ((SocketException)errors[0]).SocketErrorCode))
        {
            return errors[0];
        }

        return new ExceptionGroup("Multiple exceptions: " + string.Join("; ", errors.Select(e => e.Message)), errors);
    }

    /// <summary>Orders addresses as RFC 8305 section 4: alternating families, <paramref name="interleave"/> of the first family at a time (0: as resolved).</summary>
    private static IReadOnlyList<AddressInfo> Interleave(IReadOnlyList<AddressInfo> infos, int interleave)
    {
        if (interleave <= 0 || infos.Count < 2)
        {
            return infos;
        }

        var first = infos.Where(i => i.Family == infos[0].Family).ToList();
        var rest = infos.Where(i => i.Family != infos[0].Family).ToList();
        var order = new List<AddressInfo>(infos.Count);
        int a = 0, b = 0;
        while (a < first.Count || b < rest.Count)
        {
            for (int k = 0; k < interleave && a < first.Count; k++)
            {
                order.Add(first[a++]);
            }

            if (b < rest.Count)
            {
                order.Add(rest[b++]);
            }
        }

        return order;
    }

    private static void ConfigureListener(Socket socket, ServerOptions options)
    {
        if (options.ReuseAddress)
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        }

        if (options.ReusePort)
        {
            socket.SetRawSocketOption(SOL_SOCKET, SO_REUSEPORT, BitConverter.GetBytes(1));
        }
    }

    private static void BindWithContext(Socket socket, EndPoint endPoint)
    {
        try
        {
            socket.Bind(endPoint);
        }
        catch (SocketException ex)
        {
            throw new SocketException((int)ex.SocketErrorCode, $"error while attempting to bind on address {endPoint}: {ex.Message}");
        }
    }

    private static void CheckStreamSocket(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (socket.SocketType != SocketType.Stream)
        {
            throw new ArgumentException($"A stream socket is needed; got {socket.SocketType}.", nameof(socket));
        }
    }

    /// <summary>
    /// The connected socket given in <paramref name="options"/>, checked and made non-blocking, or
    /// null when none was given. Giving both a socket and an address is refused.
    /// </summary>
    private static Socket? TakeGivenSocket(ConnectionOptions options, string? address, string paramName, string conflictMessage)
    {
        if (options.Socket is not { } given)
        {
            return null;
        }

        if (address is not null)
        {
            throw new ArgumentException(conflictMessage, paramName);
        }

        CheckStreamSocket(given);
        given.Blocking = false;
        return given;
    }
}
