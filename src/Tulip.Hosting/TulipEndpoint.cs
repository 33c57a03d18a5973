using System;
using System.Collections.Generic;
using System.Net.Sockets;
using Tulip.Streams;

namespace Tulip.Hosting;

/// <summary>Where a <see cref="TulipEndpoint"/> listens.</summary>
public enum TulipEndpointKind
{
    /// <summary>A TCP host and port (<see cref="TulipOptions.ListenTcp"/>).</summary>
    Tcp,

    /// <summary>A UNIX stream socket path (<see cref="TulipOptions.ListenUnix"/>).</summary>
    Unix,

    /// <summary>The sockets systemd passed (<see cref="TulipOptions.ListenSystemd"/>).</summary>
    Systemd,

    /// <summary>A socket the application made (<see cref="TulipOptions.ListenSocket"/>).</summary>
    Socket,
}

/// <summary>
/// One endpoint of <see cref="TulipOptions"/>: where it listens and what serves each connection, a protocol
/// factory (<see cref="UseProtocol(Func{IBaseProtocol})"/>) or a streams handler
/// (<see cref="UseStreams(Func{LoopStreamReader, LoopStreamWriter, LoopTask})"/>). Configure it before the host starts.
/// </summary>
public sealed partial class TulipEndpoint
{
    private Func<TulipServerContext, IBaseProtocol>? _protocolFactory;
    private Func<LoopStreamReader, LoopStreamWriter, TulipServerContext, LoopTask>? _streamsHandler;

    internal TulipEndpoint(TulipEndpointKind kind, string? address, int port, Socket? socket)
    {
        Kind = kind;
        Address = address;
        Port = port;
        Socket = socket;
    }

    /// <summary>Where it listens.</summary>
    public TulipEndpointKind Kind { get; }

    /// <summary>The TCP host (null: every interface), the UNIX path, or the systemd name (null: every socket passed).</summary>
    public string? Address { get; }

    /// <summary>The TCP port (0: one the system picks); 0 for the other kinds.</summary>
    public int Port { get; }

    /// <summary>The socket given to <see cref="TulipOptions.ListenSocket"/>; null for the other kinds.</summary>
    public Socket? Socket { get; }

    /// <summary>
    /// The server's options (backlog, SO_REUSEPORT, TLS, ...), as <see cref="IEventLoop.CreateServerAsync"/> takes
    /// them. Defaults to null: the defaults, except that a systemd socket keeps the backlog systemd gave it.
    /// </summary>
    /// <remarks><see cref="ServerOptions.Socket"/> is set by the endpoint itself for the socket kinds; leave it null.</remarks>
    public ServerOptions? ServerOptions { get; set; }

    /// <summary>The streams handler's reader limit (<see cref="LoopStreamReader.Limit"/>). Defaults to <see cref="LoopStreamReader.DefaultLimit"/>.</summary>
    public int StreamLimit { get; set; } = LoopStreamReader.DefaultLimit;

    internal bool HasHandler => _protocolFactory is not null || _streamsHandler is not null;

    internal string AddedBy => Kind switch
    {
        TulipEndpointKind.Tcp => "ListenTcp",
        TulipEndpointKind.Unix => "ListenUnix",
        TulipEndpointKind.Systemd => "ListenSystemd",
        _ => "ListenSocket",
    };

    /// <summary>Each connection gets a new protocol from <paramref name="protocolFactory"/>, called on the loop thread.</summary>
    /// <returns>This endpoint.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="protocolFactory"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The endpoint has a handler already.</exception>
    public TulipEndpoint UseProtocol(Func<IBaseProtocol> protocolFactory)
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        return UseProtocol(_ => protocolFactory());
    }

    /// <summary>
    /// Each connection gets a new protocol from <paramref name="protocolFactory"/>, called on the loop thread with
    /// the server's context (its services, its loop, and the token that says the host is stopping).
    /// </summary>
    /// <returns>This endpoint.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="protocolFactory"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The endpoint has a handler already.</exception>
    public TulipEndpoint UseProtocol(Func<TulipServerContext, IBaseProtocol> protocolFactory)
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        CheckNoHandler();
        _protocolFactory = protocolFactory;
        return this;
    }

    /// <summary>
    /// Each connection runs <paramref name="clientConnected"/> as a task on the loop with its reader and writer
    /// (asyncio's <c>start_server</c>); an exception from it goes to the loop's exception handler (logged) and
    /// closes that connection.
    /// </summary>
    /// <returns>This endpoint.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="clientConnected"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The endpoint has a handler already.</exception>
    public TulipEndpoint UseStreams(Func<LoopStreamReader, LoopStreamWriter, LoopTask> clientConnected)
    {
        ArgumentNullException.ThrowIfNull(clientConnected);
        return UseStreams((reader, writer, _) => clientConnected(reader, writer));
    }

    /// <summary>
    /// As <see cref="UseStreams(Func{LoopStreamReader, LoopStreamWriter, LoopTask})"/>, with the server's context:
    /// a handler that serves requests in a loop should stop taking new ones once
    /// <see cref="TulipServerContext.Stopping"/> is cancelled, so that it ends within the drain period.
    /// </summary>
    /// <returns>This endpoint.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="clientConnected"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The endpoint has a handler already.</exception>
    public TulipEndpoint UseStreams(Func<LoopStreamReader, LoopStreamWriter, TulipServerContext, LoopTask> clientConnected)
    {
        ArgumentNullException.ThrowIfNull(clientConnected);
        CheckNoHandler();
        _streamsHandler = clientConnected;
        return this;
    }

    /// <summary>The endpoint as a URI-like string: <c>tcp://host:port</c>, <c>unix:/path</c>, <c>systemd:name</c>, <c>socket:...</c>.</summary>
    public override string ToString() => Kind switch
    {
        TulipEndpointKind.Tcp => Address is null ? $"tcp://*:{Port}" : Address.Contains(':', StringComparison.Ordinal) ? $"tcp://[{Address}]:{Port}" : $"tcp://{Address}:{Port}",
        TulipEndpointKind.Unix => $"unix:{Address}",
        TulipEndpointKind.Systemd => Address is null ? "systemd:*" : $"systemd:{Address}",
        _ => $"socket:{Socket?.LocalEndPoint?.ToString() ?? "(unbound)"}",
    };

    private void CheckNoHandler()
    {
        if (HasHandler)
        {
            throw new InvalidOperationException($"The Tulip endpoint {this} has a handler already; an endpoint has one protocol factory or one streams handler.");
        }
    }

    /// <summary>The protocol factory the loop's server calls (on the loop thread) for each connection.</summary>
    internal Func<IBaseProtocol> MakeProtocolFactory(TulipServerContext context)
    {
        if (_protocolFactory is { } factory)
        {
            return () => factory(context) ?? throw new InvalidOperationException($"The protocol factory of the Tulip endpoint {this} returned null.");
        }

        var handler = _streamsHandler!;
        int limit = StreamLimit;
        Func<LoopStreamReader, LoopStreamWriter, LoopTask> connected = (reader, writer) => handler(reader, writer, context);
        return () => new StreamReaderProtocol(new LoopStreamReader(limit), connected);
    }

    /// <summary>Starts this endpoint's servers on the running loop (one per socket: a systemd endpoint may have several).</summary>
    internal async LoopTask<IReadOnlyList<Server>> StartAsync(IEventLoop loop, TulipServerContext context, Func<string, string?> environment)
    {
        var factory = MakeProtocolFactory(context);
        var options = ServerOptions ?? new ServerOptions();
        if (options.Socket is not null)
        {
            throw new InvalidOperationException($"The Tulip endpoint {this} has ServerOptions.Socket set; use TulipOptions.ListenSocket(socket) for a socket of your own.");
        }

        switch (Kind)
        {
            case TulipEndpointKind.Tcp:
                return [await loop.CreateServerAsync(factory, Address is null ? null : [Address], Port, options)];
            case TulipEndpointKind.Unix:
                return [await loop.CreateUnixServerAsync(factory, Address, options)];
            case TulipEndpointKind.Socket:
                return [await loop.CreateServerAsync(factory, null, 0, options with { Socket = Socket })];
            default:
                var sockets = SystemdSocketActivation.TakeListenSockets(environment, Address, this);
                var servers = new List<Server>();
                try
                {
                    // Re-listening sets the backlog: keep systemd's (Backlog=, SOMAXCONN by default), which the
                    // kernel caps at net.core.somaxconn, unless the application asked for one.
                    var systemdOptions = ServerOptions is null ? options with { Backlog = int.MaxValue } : options;
                    for (int i = 0; i < sockets.Count; i++)
                    {
                        servers.Add(await loop.CreateServerAsync(factory, null, 0, systemdOptions with { Socket = sockets[i] }));
                    }
                }
                catch
                {
                    foreach (var server in servers)
                    {
                        server.Close();
                    }

                    for (int i = servers.Count; i < sockets.Count; i++)
                    {
                        sockets[i].Dispose();
                    }

                    throw;
                }

                return servers;
        }
    }
}
