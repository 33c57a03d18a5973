using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using Microsoft.Extensions.Logging;

namespace Tulip.Testing;

/// <summary>
/// A <see cref="TestEventLoop"/> (virtual clock) whose <see cref="CreateServerAsync"/> and
/// <see cref="CreateConnectionAsync{TProtocol}"/> connect protocols to each other in memory, by
/// (host, port): application code that calls the loop runs unchanged in a test, with no socket.
/// Twisted's <c>MemoryReactor</c>, except that the two ends really talk, through a
/// <see cref="ConnectedPair"/>.
/// </summary>
/// <remarks>
/// A server listening on a null host list takes connections to any host at its port; port 0
/// picks a free port (see <see cref="MemoryServer.Port"/>). A connection to a (host, port) where
/// nothing serves, or that <see cref="RefuseConnections"/> names, fails with a
/// <see cref="SocketException"/> of <see cref="SocketError.ConnectionRefused"/>. Each connection's
/// pair is in <see cref="Connections"/>, to inject faults or change its chunking. TLS, sockets
/// given in the options, and the other socket members are not supported.
/// </remarks>
public class MemoryEventLoop : TestEventLoop
{
    private const string AnyHost = "*";
    private readonly Dictionary<(string Host, int Port), MemoryServer> _listeners = new();
    private readonly HashSet<(string Host, int Port)> _refused = new();
    private readonly List<ConnectedPair> _connections = new();
    private int _nextPort = 49152;

    /// <summary>Creates the loop; see <see cref="TestEventLoop(double, ILoggerFactory?)"/>.</summary>
    public MemoryEventLoop(double startTime = 0, ILoggerFactory? loggerFactory = null) : base(startTime, loggerFactory)
    {
    }

    /// <summary>Creates the loop on <paramref name="timeProvider"/>'s clock; see <see cref="TestEventLoop(TimeProvider, Action{TimeSpan}?, double, ILoggerFactory?)"/>.</summary>
    public MemoryEventLoop(TimeProvider timeProvider, Action<TimeSpan>? advance = null, double startTime = 0, ILoggerFactory? loggerFactory = null)
        : base(timeProvider, advance, startTime, loggerFactory)
    {
    }

    /// <summary>Every connection made so far, oldest first.</summary>
    public IReadOnlyList<ConnectedPair> Connections => _connections;

    /// <summary>The chunking given to each new connection's pair. Defaults to <see cref="Chunking.Whole"/>.</summary>
    public Chunking Chunking { get; set; } = Chunking.Whole;

    /// <summary>Called with each new connection's pair as it is made, before either protocol hears of it: the place to set faults.</summary>
    public Action<ConnectedPair>? ConnectionCreated { get; set; }

    /// <summary>
    /// Makes connections to (<paramref name="host"/>, <paramref name="port"/>) fail with "connection
    /// refused" even while a server listens there (or, with <paramref name="refuse"/> false, stops doing so).
    /// A null host means every host.
    /// </summary>
    public void RefuseConnections(string? host, int port, bool refuse = true)
    {
        var key = (host ?? AnyHost, port);
        if (refuse)
        {
            _refused.Add(key);
        }
        else
        {
            _refused.Remove(key);
        }
    }

    private static readonly ConnectionOptions s_noOptions = new();
    private static readonly ServerOptions s_noServerOptions = new();

    /// <inheritdoc/>
    public override async LoopTask<(ITransport Transport, TProtocol Protocol)> CreateConnectionAsync<TProtocol>(Func<TProtocol> protocolFactory,
        string? host, int port, ConnectionOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        if (options is { Socket: not null })
        {
            throw new NotSupportedException($"{GetType().Name} connects in memory: a given socket is not supported; leave options.Socket null.");
        }

        if (host is null)
        {
            throw new ArgumentException("Give the host to connect to.", nameof(host));
        }

        options ??= s_noOptions;
        CheckSslArguments(options.Ssl is not null, options.SslHandshakeTimeout, options.SslShutdownTimeout);
        var ssl = options.Ssl is { } given ? ClientOptionsFor(given, host) : null;

        cancellationToken.ThrowIfCancellationRequested();
        if (_refused.Contains((host, port)) || _refused.Contains((AnyHost, port)) || FindServer(host, port) is not { IsServing: true } server)
        {
            throw new SocketException((int)SocketError.ConnectionRefused);
        }

        var protocol = protocolFactory();
        if (ssl is not null)
        {
            // TLS over the in-memory pair, as a socket loop puts it over its socket transport.
            var handshake = CreateFuture<VoidResult>();
            var tls = new SslProtocol(this, protocol, ssl, handshake, options.SslHandshakeTimeout, options.SslShutdownTimeout);
            server.Accept(tls, host, port, _nextPort++);
            try
            {
                await handshake;
            }
            catch
            {
                tls.AppTransport.Close();
                throw;
            }

            return (tls.AppTransport, protocol);
        }

        var pair = server.Accept(protocol, host, port, _nextPort++);
        var connected = CreateFuture<bool>();
        pair.ClientTransport.Connected = () => connected.TrySetResult(true);
        await connected;
        return (pair.ClientTransport, protocol);
    }

    /// <inheritdoc/>
    public override LoopTask<Server> CreateServerAsync(Func<IBaseProtocol> protocolFactory, IReadOnlyList<string>? hosts, int port,
        ServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        if (options is { Socket: not null })
        {
            throw new NotSupportedException($"{GetType().Name} serves in memory: a given socket is not supported; leave options.Socket null.");
        }

        protocolFactory = WrapServerFactory(protocolFactory, options ?? s_noServerOptions);

        ArgumentOutOfRangeException.ThrowIfNegative(port);
        cancellationToken.ThrowIfCancellationRequested();
        if (port == 0)
        {
            port = _nextPort++;
        }

        var keys = new List<(string, int)>();
        foreach (var host in hosts ?? [AnyHost])
        {
            var key = (host, port);
            if (_listeners.ContainsKey(key) || keys.Contains(key))
            {
                throw new SocketException((int)SocketError.AddressAlreadyInUse);
            }

            keys.Add(key);
        }

        var server = new MemoryServer(this, protocolFactory, port, keys, options?.StartServing ?? true);
        foreach (var key in keys)
        {
            _listeners.Add(key, server);
        }

        return FromResult<Server>(server);
    }

    private static async LoopTask<T> FromResult<T>(T value)
    {
        await Tasks.Yield();
        return value;
    }

    private MemoryServer? FindServer(string host, int port) =>
        _listeners.TryGetValue((host, port), out var s) ? s : _listeners.GetValueOrDefault((AnyHost, port));

    internal void Unlisten(MemoryServer server, IEnumerable<(string, int)> keys)
    {
        foreach (var key in keys)
        {
            if (_listeners.TryGetValue(key, out var s) && ReferenceEquals(s, server))
            {
                _listeners.Remove(key);
            }
        }
    }

    internal ConnectedPair NewPair(IBaseProtocol client, IBaseProtocol server, EndPoint clientAddress, EndPoint serverAddress)
    {
        var pair = new ConnectedPair(this, client, server, clientAddress, serverAddress) { Chunking = Chunking };
        _connections.Add(pair);
        ConnectionCreated?.Invoke(pair);
        return pair;
    }
}
