using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using Microsoft.Extensions.Logging;
using Tulip.Diagnostics;

namespace Tulip;

// Datagram endpoints (PEP 3156 "Datagram Transports", asyncio's create_datagram_endpoint), whole and
// platform-neutral as in base_events.py: the loop resolves the addresses without blocking, pairs
// local and remote addresses by family, tries each pair in turn (socket, options, bind, connect
// with SockConnectAsync), and hands the first socket that works to the multiplexer's
// MakeDatagramTransport hook. Any failure or cancellation, at any stage, closes what was made.
public abstract partial class BaseEventLoop
{
    private static readonly DatagramOptions s_defaultDatagramOptions = new();

    /// <inheritdoc/>
    /// <remarks>
    /// <para>
    /// Addresses: an <see cref="IPEndPoint"/> is used as it is, a <see cref="DnsEndPoint"/> is resolved
    /// with <see cref="BaseEventLoop.GetAddrInfoAsync(string?, int, AddressFamily, SocketType, ProtocolType, AddressInfoFlags, CancellationToken)"/> (never blocking the loop); local and remote
    /// results are paired by address family and each pair is tried in turn, as asyncio does. When every
    /// pair fails, the one failure is thrown, or an <see cref="AggregateException"/> of all of them.
    /// A <see cref="UnixDomainSocketEndPoint"/> (or <see cref="DatagramOptions.Family"/> Unix) makes a
    /// UNIX datagram socket; a socket file left at the local path is removed first (any other kind of
    /// file is left alone, and binding then fails).
    /// </para>
    /// <para>
    /// With a remote address the socket is connected (unless <see cref="DatagramOptions.AllowBroadcast"/>),
    /// so it receives only from that address and ICMP errors reach <see cref="IDatagramProtocol.ErrorReceived"/>.
    /// Cancelling at any stage closes the socket.
    /// </para>
    /// </remarks>
    public virtual async LoopTask<(IDatagramTransport Transport, TProtocol Protocol)> CreateDatagramEndpointAsync<TProtocol>(Func<TProtocol> protocolFactory,
        EndPoint? localAddress, EndPoint? remoteAddress, DatagramOptions? options = null, CancellationToken cancellationToken = default)
        where TProtocol : IDatagramProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        options ??= s_defaultDatagramOptions;
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        Socket socket;
        EndPoint? remote = null;
        if (options.Socket is { } given)
        {
            CheckGivenDatagramSocket(given, localAddress, remoteAddress, options);
            given.Blocking = false;
            socket = given;
        }
        else if (IsUnixRequest(localAddress, remoteAddress, options))
        {
            RemoveStaleUnixSocket(localAddress);
            (socket, remote) = await OpenFirstDatagramSocketAsync([(AddressFamily.Unix, localAddress, remoteAddress)], localAddress, remoteAddress, options);
            DisposeIfCancelPending(socket);
        }
        else
        {
            var pairs = await ResolveDatagramPairsAsync(localAddress, remoteAddress, options, cancellationToken);
            (socket, remote) = await OpenFirstDatagramSocketAsync(pairs, localAddress, remoteAddress, options);
            DisposeIfCancelPending(socket);
        }

        return CloseIfCancelPending(await StartDatagramTransportAsync(socket, protocolFactory, remote, remoteAddress));
    }

    /// <summary>Joins a datagram socket to a new protocol through <see cref="MakeDatagramTransport"/>: see <see cref="StartTransportAsync"/>.</summary>
    private async LoopTask<(IDatagramTransport, TProtocol)> StartDatagramTransportAsync<TProtocol>(Socket socket, Func<TProtocol> protocolFactory,
        EndPoint? remote, EndPoint? remoteAsGiven)
        where TProtocol : IDatagramProtocol
    {
        var (transport, protocol) = await StartTransportAsync<IDatagramTransport, TProtocol, (EndPoint? Remote, EndPoint? AsGiven)>(socket, protocolFactory, (remote, remoteAsGiven),
            static (loop, socket, protocol, remotes, waiter) => loop.MakeDatagramTransport(socket, protocol, remotes.Remote, remotes.AsGiven, waiter));
        if (Debug && Logger.IsEnabled(LogLevel.Debug))
        {
            Log.DatagramEndpointCreated(Logger, socket.LocalEndPoint, remote, transport);
        }

        return CloseIfCancelPending((transport, protocol));
    }

    /// <summary>
    /// asyncio's pairing: each address is resolved for datagrams; the (local, remote) pairs are grouped
    /// by family in the order resolved, and a family lacking an address that was asked for is dropped.
    /// </summary>
    private async LoopTask<List<(AddressFamily Family, EndPoint? Local, EndPoint? Remote)>> ResolveDatagramPairsAsync(EndPoint? localAddress,
        EndPoint? remoteAddress, DatagramOptions options, CancellationToken cancellationToken)
    {
        if (localAddress is null && remoteAddress is null)
        {
            if (options.Family is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
            {
                throw new ArgumentException(
                    "No local or remote address, and no DatagramOptions.Family: give an address, or the family of the unbound socket to create (InterNetwork, InterNetworkV6 or Unix).",
                    nameof(options));
            }

            return [(options.Family, null, null)];
        }

        var order = new List<AddressFamily>();
        var locals = new Dictionary<AddressFamily, EndPoint>();
        var remotes = new Dictionary<AddressFamily, EndPoint>();
        foreach (var (address, found, name) in new[] { (localAddress, locals, "local"), (remoteAddress, remotes, "remote") })
        {
            if (address is null)
            {
                continue;
            }

            foreach (var endPoint in await ResolveDatagramAddressAsync(address, name, options, cancellationToken))
            {
                if (!order.Contains(endPoint.AddressFamily))
                {
                    order.Add(endPoint.AddressFamily);
                }

                found.TryAdd(endPoint.AddressFamily, endPoint);
            }
        }

        var pairs = new List<(AddressFamily, EndPoint?, EndPoint?)>();
        foreach (var family in order)
        {
            locals.TryGetValue(family, out var local);
            remotes.TryGetValue(family, out var remote);
            if ((localAddress is null || local is not null) && (remoteAddress is null || remote is not null))
            {
                pairs.Add((family, local, remote));
            }
        }

        if (pairs.Count == 0)
        {
            throw new ArgumentException(
                $"The local address {localAddress} ({string.Join(", ", locals.Keys)}) and the remote address {remoteAddress} ({string.Join(", ", remotes.Keys)}) have no address family in common: give addresses of one family.",
                nameof(remoteAddress));
        }

        return pairs;
    }

    /// <summary>The addresses <paramref name="address"/> stands for: itself if it is an IP address, what getaddrinfo gives for a name.</summary>
    private async LoopTask<IEnumerable<IPEndPoint>> ResolveDatagramAddressAsync(EndPoint address, string name, DatagramOptions options,
        CancellationToken cancellationToken)
    {
        switch (address)
        {
            case IPEndPoint ip:
                if (options.Family != AddressFamily.Unspecified && ip.AddressFamily != options.Family)
                {
                    throw new ArgumentException($"The {name} address {ip} is {ip.AddressFamily}, but DatagramOptions.Family is {options.Family}.",
                        name == "local" ? "localAddress" : "remoteAddress");
                }

                return [ip];
            case DnsEndPoint dns:
                var family = options.Family != AddressFamily.Unspecified ? options.Family : dns.AddressFamily;
                var infos = await GetAddrInfoAsync(dns.Host, dns.Port, family, SocketType.Dgram,
                    options.Protocol == ProtocolType.Unspecified ? ProtocolType.Udp : options.Protocol, options.Flags, cancellationToken);
                if (infos.Count == 0)
                {
                    throw new SocketException((int)SocketError.HostNotFound, $"getaddrinfo({dns.Host}) returned no address for the {name} address.");
                }

                return infos.Select(i => i.EndPoint);
            default:
                throw new ArgumentException(
                    $"The {name} address {address} ({address.GetType().Name}) is not an IP address: give an IPEndPoint or a DnsEndPoint, or UnixDomainSocketEndPoints for a UNIX datagram socket.",
                    name == "local" ? "localAddress" : "remoteAddress");
        }
    }

    /// <summary>Tries each candidate in turn; returns the first socket set up, or throws every failure together.</summary>
    private async LoopTask<(Socket, EndPoint?)> OpenFirstDatagramSocketAsync(IReadOnlyList<(AddressFamily Family, EndPoint? Local, EndPoint? Remote)> pairs,
        EndPoint? localAddress, EndPoint? remoteAddress, DatagramOptions options)
    {
        var errors = new List<Exception>();
        foreach (var (family, local, remote) in pairs)
        {
            Socket? socket = null;
            string stage = "socket()";
            try
            {
                var protocol = options.Protocol != ProtocolType.Unspecified ? options.Protocol
                    : family == AddressFamily.Unix ? ProtocolType.Unspecified : ProtocolType.Udp;
                socket = new Socket(family, SocketType.Dgram, protocol);
                stage = "setsockopt()";
                if (options.ReusePort)
                {
                    socket.SetRawSocketOption(SOL_SOCKET, SO_REUSEPORT, BitConverter.GetBytes(1));
                }

                if (options.AllowBroadcast)
                {
                    socket.EnableBroadcast = true;
                }

                socket.Blocking = false;
                if (localAddress is not null)
                {
                    stage = $"bind to {local}";
                    socket.Bind(local!);
                }

                if (remoteAddress is not null && !options.AllowBroadcast)
                {
                    stage = $"connect to {remote}";
                    await SockConnectAsync(socket, remote!);
                    ThrowIfCancelPending();
                }

                return (socket, remote);
            }
            catch (SocketException ex)
            {
                socket?.Dispose();
                errors.Add(new SocketException((int)ex.SocketErrorCode, $"{stage}: {ex.Message}"));
            }
            catch
            {
                socket?.Dispose();
                throw;
            }
        }

        throw ConnectFailure(errors);
    }

    private static bool IsUnixRequest(EndPoint? localAddress, EndPoint? remoteAddress, DatagramOptions options)
    {
        bool unixLocal = localAddress is UnixDomainSocketEndPoint;
        bool unixRemote = remoteAddress is UnixDomainSocketEndPoint;
        bool unix = options.Family == AddressFamily.Unix || unixLocal || unixRemote;
        if (!unix)
        {
            if (options.Family is not (AddressFamily.Unspecified or AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
            {
                throw new ArgumentException($"DatagramOptions.Family {options.Family} is not supported: use InterNetwork, InterNetworkV6 or Unix.", nameof(options));
            }

            return false;
        }

        if (options.Family is not (AddressFamily.Unspecified or AddressFamily.Unix))
        {
            throw new ArgumentException($"DatagramOptions.Family is {options.Family}, but a UNIX address was given: give addresses of one family.", nameof(options));
        }

        foreach (var (address, name) in new[] { (localAddress, "localAddress"), (remoteAddress, "remoteAddress") })
        {
            if (address is not null and not UnixDomainSocketEndPoint)
            {
                throw new ArgumentException(
                    $"A UNIX datagram socket needs UnixDomainSocketEndPoint addresses; {name} is {address} ({address.GetType().Name}).", name);
            }
        }

        if (options.ReusePort)
        {
            throw new ArgumentException("SO_REUSEPORT is for IP sockets: Linux refuses it on UNIX sockets. Leave DatagramOptions.ReusePort false.", nameof(options));
        }

        return true;
    }

    /// <summary>asyncio's stale-socket rule: a socket file at the local path (left by a dead endpoint) is removed; any other file is kept.</summary>
    private void RemoveStaleUnixSocket(EndPoint? localAddress)
    {
        if (localAddress is not UnixDomainSocketEndPoint unix)
        {
            return;
        }

        var raw = unix.Serialize();
        if (raw.Size <= 2 || raw.Buffer.Span[2] == 0)
        {
            return; // unnamed, or in the abstract namespace: no file
        }

        string path = unix.ToString()!;
        try
        {
            if (UnixSocketFile.IsSocket(path))
            {
                File.Delete(path);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The directory may allow creating the socket but not this check: bind says what is wrong.
            Log.StaleUnixSocketCheckFailed(Logger, ex, path);
        }
    }

    private static void CheckGivenDatagramSocket(Socket socket, EndPoint? localAddress, EndPoint? remoteAddress, DatagramOptions options)
    {
        if (socket.SocketType != SocketType.Dgram)
        {
            throw new ArgumentException($"A datagram socket is needed; got a {socket.SocketType} socket.", nameof(options));
        }

        var problems = new List<string>();
        if (localAddress is not null)
        {
            problems.Add($"localAddress={localAddress}");
        }

        if (remoteAddress is not null)
        {
            problems.Add($"remoteAddress={remoteAddress}");
        }

        if (options.Family != AddressFamily.Unspecified)
        {
            problems.Add($"Family={options.Family}");
        }

        if (options.Protocol != ProtocolType.Unspecified)
        {
            problems.Add($"Protocol={options.Protocol}");
        }

        if (options.Flags != AddressInfoFlags.None)
        {
            problems.Add($"Flags={options.Flags}");
        }

        if (options.ReusePort)
        {
            problems.Add("ReusePort=true");
        }

        if (options.AllowBroadcast)
        {
            problems.Add("AllowBroadcast=true");
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException(
                $"With DatagramOptions.Socket, configure the socket yourself: addresses and socket options cannot be given too ({string.Join(", ", problems)}).",
                nameof(options));
        }
    }
}
