using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;

namespace Tulip;

/// <summary>
/// Where a datagram transport's sends go, written once for the selector's and the proactor's
/// datagram transports: the endpoint's remote address (connected, or kept as the default
/// destination when broadcasting), the checks of the address given to
/// <see cref="IDatagramTransport.SendTo"/> (its family, a name left unresolved, another address than
/// the remote one) with their messages, and a bounded cache of destinations serialized once.
/// </summary>
/// <remarks>Owned by the transport's loop thread, as the transport is.</remarks>
internal sealed class DatagramAddressing
{
    /// <summary>asyncio counts 8 bytes per buffered datagram on top of its payload, so empty datagrams count.</summary>
    internal const int PerDatagramOverhead = 8;

    /// <summary>
    /// The receive buffer for UNIX datagram sockets, whose datagrams may exceed 64 KiB (up to the
    /// sender's SO_SNDBUF, 208 KiB by default on Linux). asyncio's <c>max_size</c> is the same 256 KiB.
    /// </summary>
    internal const int MaxUnixDatagramSize = 256 * 1024;

    /// <summary>Destinations (and senders) remembered with their raw address; a cache is emptied when it reaches this size.</summary>
    internal const int AddressCacheLimit = 1024;

    private readonly Socket _socket;
    private readonly AddressFamily _family;
    // destination EndPoint (our own copy as key) -> its raw address and that copy.
    private readonly Dictionary<EndPoint, Destination> _destinations = new();

    /// <summary>Sets up the addressing of <paramref name="socket"/>.</summary>
    /// <param name="socket">The transport's socket.</param>
    /// <param name="peer">The socket's peer ("peername"), or null when it is not connected.</param>
    /// <param name="remote">The remote address given at creation, resolved; or null.</param>
    /// <param name="remoteAsGiven">The remote address as the caller gave it; or null.</param>
    public DatagramAddressing(Socket socket, EndPoint? peer, EndPoint? remote, EndPoint? remoteAsGiven)
    {
        _socket = socket;
        _family = socket.AddressFamily;
        Template = _family switch
        {
            AddressFamily.Unix => new UnixDomainSocketEndPoint("/"),
            AddressFamily.InterNetworkV6 => new IPEndPoint(IPAddress.IPv6Any, 0),
            _ => new IPEndPoint(IPAddress.Any, 0),
        };
        IsConnected = peer is not null;
        Remote = remote ?? peer;
        RemoteAsGiven = remoteAsGiven;
        if (Remote is not null && !IsConnected)
        {
            var raw = Serialize(Remote);
            RemoteDestination = new Destination(raw, Template.Create(raw));
        }
    }

    /// <summary>An <see cref="EndPoint"/> of the socket's family, for <see cref="EndPoint.Create"/>.</summary>
    public EndPoint Template { get; }

    /// <summary>True when the socket is connected: sends go out with send(2), without an address.</summary>
    public bool IsConnected { get; }

    /// <summary>The default destination: the remote address given at creation, or the connected peer; null for an open endpoint.</summary>
    public EndPoint? Remote { get; }

    /// <summary>The remote address as the caller gave it (a <see cref="DnsEndPoint"/>, say), or null.</summary>
    public EndPoint? RemoteAsGiven { get; }

    /// <summary>With a remote address on a socket that is not connected (broadcasting), where sends go by default.</summary>
    public Destination? RemoteDestination { get; }

    /// <summary>
    /// Checks <paramref name="address"/> against the endpoint and returns where to send, or null to
    /// send to the connected peer.
    /// </summary>
    /// <exception cref="ArgumentException">The address cannot be used here (another family, a name, not the remote address).</exception>
    /// <exception cref="ArgumentNullException">No address, and the endpoint has no remote address.</exception>
    public Destination? Resolve(EndPoint? address)
    {
        if (Remote is not null)
        {
            if (address is not null && !address.Equals(Remote) && !address.Equals(RemoteAsGiven))
            {
                ThrowOtherAddress(address);
            }

            return RemoteDestination; // null when connected: send(2)
        }

        if (address is null)
        {
            ThrowNoAddress();
        }

        if (_destinations.TryGetValue(address, out var known))
        {
            return known;
        }

        var raw = Serialize(address);
        if (_destinations.Count >= AddressCacheLimit)
        {
            _destinations.Clear();
        }

        // Key on our own copy: the caller may change its IPEndPoint after this call.
        var copy = Template.Create(raw);
        var destination = new Destination(raw, copy);
        _destinations[copy] = destination;
        return destination;
    }

    /// <summary>The raw address for <paramref name="address"/> on this socket, or an <see cref="ArgumentException"/> saying why it cannot be used.</summary>
    private SocketAddress Serialize(EndPoint address)
    {
        switch (address)
        {
            case DnsEndPoint dns:
                throw new ArgumentException(
                    $"SendTo needs a resolved address, not the name '{dns.Host}': resolve it with GetAddrInfoAsync, or give it as the remote address when creating the endpoint.",
                    nameof(address));
            case IPEndPoint ip when _family == AddressFamily.InterNetwork && ip.AddressFamily == AddressFamily.InterNetwork:
                return ip.Serialize();
            case IPEndPoint ip when _family == AddressFamily.InterNetworkV6 && ip.AddressFamily == AddressFamily.InterNetworkV6:
                return ip.Serialize();
            case IPEndPoint ip when _family == AddressFamily.InterNetworkV6 && _socket.DualMode:
                return new IPEndPoint(ip.Address.MapToIPv6(), ip.Port).Serialize();
            case UnixDomainSocketEndPoint unix when _family == AddressFamily.Unix:
                return unix.Serialize();
            default:
                throw new ArgumentException(
                    $"The address {address} ({address.AddressFamily}) cannot be used on this {_family} socket: give an address of the socket's family.",
                    nameof(address));
        }
    }

    /// <summary>An address for messages: the peer's when <paramref name="address"/> is null.</summary>
    public static string Describe(EndPoint? address) => address switch
    {
        null => "the connected peer",
        UnixDomainSocketEndPoint u when string.IsNullOrEmpty(u.ToString()) => "an unnamed UNIX socket",
        _ => address.ToString() ?? address.GetType().Name,
    };

    /// <summary>What <see cref="IDatagramTransport.SendTo"/> throws after Close or Abort.</summary>
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void ThrowClosed() =>
        throw new InvalidOperationException("SendTo() after Close() or Abort(): the datagram transport is closed. Create a new endpoint to send more.");

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowOtherAddress(EndPoint address) =>
        throw new ArgumentException(
            $"Invalid address {address}: this endpoint was created with the remote address {Remote}; pass null (or that address), or create an endpoint without a remote address to send anywhere.",
            nameof(address));

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowNoAddress() =>
        throw new ArgumentNullException("address",
            "This endpoint has no remote address: give the address to send to.");

    /// <summary>A destination: its raw address (for sendto) and an <see cref="EndPoint"/> of it that is the transport's own (for APIs that take one).</summary>
    internal sealed record Destination(SocketAddress Raw, EndPoint EndPoint);
}
