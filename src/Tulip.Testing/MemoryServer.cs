using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Tulip.Testing;

/// <summary>
/// A server of a <see cref="MemoryEventLoop"/>: it listens on (host, port) keys in the loop's
/// memory, not on sockets, and joins each connection to a new protocol from its factory.
/// Members are for the loop thread.
/// </summary>
public sealed class MemoryServer : Server
{
    private readonly MemoryEventLoop _loop;
    private readonly Func<IBaseProtocol> _protocolFactory;
    private readonly List<(string Host, int Port)> _keys;
    private readonly List<MemoryTransport> _clients = new();
    private readonly List<Future<bool>> _closeWaiters = new();
    private bool _serving;
    private bool _closed;

    internal MemoryServer(MemoryEventLoop loop, Func<IBaseProtocol> protocolFactory, int port, List<(string, int)> keys, bool startServing)
    {
        _loop = loop;
        _protocolFactory = protocolFactory;
        _keys = keys;
        Port = port;
        _serving = startServing;
    }

    /// <summary>The port the server listens on (the one picked, when created with port 0).</summary>
    public int Port { get; }

    /// <summary>Always empty: the server has no sockets.</summary>
    public override IReadOnlyList<Socket> Sockets => Array.Empty<Socket>();

    /// <inheritdoc/>
    public override IEventLoop Loop => _loop;

    /// <inheritdoc/>
    public override bool IsServing => _serving && !_closed;

    /// <summary>The transports of the connections accepted and not yet lost.</summary>
    public IReadOnlyList<MemoryTransport> Clients => _clients;

    /// <inheritdoc/>
    public override void StartServing()
    {
        if (!_closed)
        {
            _serving = true;
        }
    }

    /// <inheritdoc/>
    public override async LoopTask ServeForeverAsync(CancellationToken cancellationToken = default)
    {
        if (_closed)
        {
            throw new InvalidOperationException("The server is closed.");
        }

        StartServing();
        await WaitFor(closedOnly: true, cancellationToken);
    }

    /// <inheritdoc/>
    public override void Close()
    {
        if (_closed)
        {
            return;
        }

        _closed = true;
        _serving = false;
        _loop.Unlisten(this, _keys);
        WakeWaiters();
    }

    /// <inheritdoc/>
    public override void CloseClients()
    {
        foreach (var client in _clients.ToArray())
        {
            client.Close();
        }
    }

    /// <inheritdoc/>
    public override void AbortClients()
    {
        foreach (var client in _clients.ToArray())
        {
            client.Abort();
        }
    }

    /// <inheritdoc/>
    public override async LoopTask WaitClosedAsync(CancellationToken cancellationToken = default) =>
        await WaitFor(closedOnly: false, cancellationToken);

    internal ConnectedPair Accept(IBaseProtocol client, string host, int port, int clientPort)
    {
        var protocol = _protocolFactory();
        var pair = _loop.NewPair(client, protocol, new DnsEndPoint("memory-client", clientPort), new DnsEndPoint(host, port));
        var transport = pair.ServerTransport;
        transport.Lost = () => ClientLost(transport);
        _clients.Add(transport);
        return pair;
    }

    private async LoopTask WaitFor(bool closedOnly, CancellationToken cancellationToken)
    {
        while (!(closedOnly ? _closed : _closed && _clients.Count == 0))
        {
            var waiter = _loop.CreateFuture<bool>();
            _closeWaiters.Add(waiter);
            TaskCancellation.LinkToFuture(waiter, cancellationToken);
            await waiter;
        }
    }

    private void WakeWaiters()
    {
        foreach (var waiter in _closeWaiters)
        {
            waiter.TrySetResult(true);
        }

        _closeWaiters.Clear();
    }

    private void ClientLost(MemoryTransport transport)
    {
        _clients.Remove(transport);
        WakeWaiters();
    }
}
