using System;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;

namespace Tulip;

/// <summary>Options for <see cref="IEventLoop.CreateConnectionAsync{TProtocol}"/>.</summary>
public sealed record ConnectionOptions
{
    /// <summary>The address family to resolve to; <see cref="AddressFamily.Unspecified"/> (the default) takes any.</summary>
    public AddressFamily Family { get; init; } = AddressFamily.Unspecified;

    /// <summary>The local address to bind before connecting. Defaults to none.</summary>
    public EndPoint? LocalEndPoint { get; init; }

    /// <summary>
    /// A connected socket to wrap instead of connecting; host and port must then be null.
    /// The transport takes ownership of it.
    /// </summary>
    public Socket? Socket { get; init; }

    /// <summary>
    /// Enables RFC 8305 happy eyeballs: the delay in seconds before the next address is tried
    /// while earlier attempts are still pending. Defaults to null (addresses tried one at a time).
    /// </summary>
    public double? HappyEyeballsDelay { get; init; }

    /// <summary>Interleaves address families when resolving (RFC 8305). Defaults to 1 when happy eyeballs is on.</summary>
    public int? Interleave { get; init; }

    /// <summary>Sets TCP_NODELAY on the socket. Defaults to true.</summary>
    public bool NoDelay { get; init; } = true;

    /// <summary>
    /// TLS client options; null (the default) for a plain connection. The server's certificate is
    /// verified (the system's trust store, the name) unless these options say otherwise;
    /// <see cref="SslClientAuthenticationOptions.TargetHost"/> defaults to the host connected to (required
    /// for a UNIX connection). The object is not changed: a copy gets the default name.
    /// </summary>
    public SslClientAuthenticationOptions? Ssl { get; init; }

    /// <summary>Seconds the TLS handshake may take before the connection is aborted. Defaults to 60 (asyncio's); only with <see cref="Ssl"/>.</summary>
    public double SslHandshakeTimeout { get; init; } = SslProtocol.DefaultHandshakeTimeout;

    /// <summary>Seconds a TLS close waits for the peer's close_notify before aborting. Defaults to 30 (asyncio's); only with <see cref="Ssl"/>.</summary>
    public double SslShutdownTimeout { get; init; } = SslProtocol.DefaultShutdownTimeout;
}

/// <summary>Options for <see cref="IEventLoop.CreateServerAsync"/>.</summary>
public sealed record ServerOptions
{
    /// <summary>The address family to bind; any by default.</summary>
    public AddressFamily Family { get; init; } = AddressFamily.Unspecified;

    /// <summary>The listen backlog. Defaults to 100.</summary>
    public int Backlog { get; init; } = 100;

    /// <summary>Sets SO_REUSEADDR. Defaults to true.</summary>
    public bool ReuseAddress { get; init; } = true;

    /// <summary>Sets SO_REUSEPORT. Defaults to false.</summary>
    public bool ReusePort { get; init; }

    /// <summary>A listening (or bound) socket to serve instead of binding; host and port must then be null.</summary>
    public Socket? Socket { get; init; }

    /// <summary>Starts accepting at once. Defaults to true.</summary>
    public bool StartServing { get; init; } = true;

    /// <summary>Sets TCP_NODELAY on accepted sockets. Defaults to true.</summary>
    public bool NoDelay { get; init; } = true;

    /// <summary>
    /// TLS server options (a certificate or a selection callback, client-certificate policy, ALPN); null
    /// (the default) for plain connections. Each accepted connection handshakes before its protocol's
    /// ConnectionMade; one that fails is logged once and closed, and the server goes on.
    /// </summary>
    public SslServerAuthenticationOptions? Ssl { get; init; }

    /// <summary>Seconds the TLS handshake may take before the connection is aborted. Defaults to 60 (asyncio's); only with <see cref="Ssl"/>.</summary>
    public double SslHandshakeTimeout { get; init; } = SslProtocol.DefaultHandshakeTimeout;

    /// <summary>Seconds a TLS close waits for the peer's close_notify before aborting. Defaults to 30 (asyncio's); only with <see cref="Ssl"/>.</summary>
    public double SslShutdownTimeout { get; init; } = SslProtocol.DefaultShutdownTimeout;
}

/// <summary>Options for <see cref="IEventLoop.CreateDatagramEndpointAsync{TProtocol}"/>.</summary>
public sealed record DatagramOptions
{
    /// <summary>
    /// The address family: <see cref="AddressFamily.InterNetwork"/>, <see cref="AddressFamily.InterNetworkV6"/>
    /// or <see cref="AddressFamily.Unix"/>.
    /// </summary>
    /// <remarks>
    /// Defaults to <see cref="AddressFamily.Unspecified"/>: inferred from the addresses (every family a
    /// name resolves to is tried). Required when neither a local nor a remote address is given.
    /// </remarks>
    public AddressFamily Family { get; init; } = AddressFamily.Unspecified;

    /// <summary>The protocol number; <see cref="ProtocolType.Unspecified"/> (the default) for the family's usual one (UDP).</summary>
    public ProtocolType Protocol { get; init; } = ProtocolType.Unspecified;

    /// <summary>getaddrinfo flags used to resolve <see cref="DnsEndPoint"/> addresses. Defaults to none.</summary>
    public AddressInfoFlags Flags { get; init; } = AddressInfoFlags.None;

    /// <summary>Sets SO_REUSEPORT, so several endpoints can bind the same address and port. Defaults to false.</summary>
    /// <remarks>IP sockets only: Linux refuses SO_REUSEPORT on UNIX sockets, and asking for it there is an error.</remarks>
    public bool ReusePort { get; init; }

    /// <summary>Sets SO_BROADCAST, so datagrams may be sent to broadcast addresses. Defaults to false.</summary>
    /// <remarks>
    /// With a remote address the socket is then not connected (as asyncio: a socket connected to a
    /// broadcast address would receive only from that address); datagrams still go to the remote address by default.
    /// </remarks>
    public bool AllowBroadcast { get; init; }

    /// <summary>
    /// A datagram socket to use instead of creating one; the addresses must then be null and the other
    /// options left at their defaults. The transport takes ownership of it and makes it non-blocking.
    /// If it is connected, its peer is the endpoint's remote address.
    /// </summary>
    public Socket? Socket { get; init; }
}

/// <summary>One result of <see cref="IEventLoop.GetAddrInfoAsync(string?, int, AddressFamily, SocketType, ProtocolType, AddressInfoFlags, System.Threading.CancellationToken)"/>: getaddrinfo's 5-tuple.</summary>
/// <param name="Family">The address family.</param>
/// <param name="SocketType">The socket type.</param>
/// <param name="Protocol">The protocol.</param>
/// <param name="CanonicalName">The canonical host name, when asked for with <see cref="AddressInfoFlags.CanonicalName"/>; otherwise empty.</param>
/// <param name="EndPoint">The address and port.</param>
public sealed record AddressInfo(AddressFamily Family, SocketType SocketType, ProtocolType Protocol, string CanonicalName, IPEndPoint EndPoint);

/// <summary>Flags for <see cref="IEventLoop.GetAddrInfoAsync(string?, int, AddressFamily, SocketType, ProtocolType, AddressInfoFlags, System.Threading.CancellationToken)"/>, as getaddrinfo's.</summary>
[Flags]
public enum AddressInfoFlags
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>AI_PASSIVE: a null host means the wildcard address (to bind), not loopback.</summary>
    Passive = 1,
    /// <summary>AI_CANONNAME: fill <see cref="AddressInfo.CanonicalName"/>.</summary>
    CanonicalName = 2,
    /// <summary>AI_NUMERICHOST: the host must be a numeric address; no lookup is made.</summary>
    NumericHost = 4,
}

/// <summary>Flags for <see cref="IEventLoop.GetNameInfoAsync"/>, as getnameinfo's.</summary>
[Flags]
public enum NameInfoFlags
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>NI_NUMERICHOST: return the address, not a name.</summary>
    NumericHost = 1,
    /// <summary>NI_NAMEREQD: fail if the address has no name.</summary>
    NameRequired = 8,
    /// <summary>NI_NUMERICSERV: return the port number, not a service name.</summary>
    NumericService = 2,
}
