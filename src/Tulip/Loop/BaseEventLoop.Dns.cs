using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Tulip;

public abstract partial class BaseEventLoop
{
    /// <inheritdoc/>
    public LoopTask<IReadOnlyList<AddressInfo>> GetAddrInfoAsync(string? host, int port,
        AddressFamily family = AddressFamily.Unspecified, SocketType type = SocketType.Unknown,
        ProtocolType protocol = ProtocolType.Unknown, AddressInfoFlags flags = AddressInfoFlags.None,
        CancellationToken cancellationToken = default)
    {
        if (port is < 0 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(port), port, "A port is between 0 and 65535.");
        }

        CheckResolvableFamily(family);
        return ResolveAsync(host, port, port, family, type, protocol, flags, cancellationToken);
    }

    /// <inheritdoc/>
    public LoopTask<IReadOnlyList<AddressInfo>> GetAddrInfoAsync(string? host, string? service,
        AddressFamily family = AddressFamily.Unspecified, SocketType type = SocketType.Unknown,
        ProtocolType protocol = ProtocolType.Unknown, AddressInfoFlags flags = AddressInfoFlags.None,
        CancellationToken cancellationToken = default)
    {
        CheckResolvableFamily(family);
        if (host is null && string.IsNullOrEmpty(service))
        {
            throw new SocketException((int)SocketError.HostNotFound,
                "Neither a host nor a service was given (getaddrinfo's EAI_NONAME): give at least one.");
        }

        int? tcpPort;
        int? udpPort;
        if (string.IsNullOrEmpty(service))
        {
            tcpPort = udpPort = 0;
        }
        else if (int.TryParse(service, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int number))
        {
            if (number > 65535)
            {
                throw new SocketException((int)SocketError.TypeNotFound, $"The port '{service}' is out of range: a port is between 0 and 65535.");
            }

            tcpPort = udpPort = number;
        }
        else
        {
            tcpPort = ServiceNames.Lookup(service, "tcp");
            udpPort = ServiceNames.Lookup(service, "udp");
            bool wantsTcp = WantsStream(type, protocol);
            bool wantsUdp = WantsDatagram(type, protocol);
            if (!(wantsTcp && tcpPort is not null) && !(wantsUdp && udpPort is not null))
            {
                // glibc's EAI_SERVICE ("Servname not supported for ai_socktype"); SocketError has no
                // such code, and TypeNotFound is what Windows reports for it (WSATYPE_NOT_FOUND).
                throw new SocketException((int)SocketError.TypeNotFound,
                    $"The service '{service}' is not known for {(wantsTcp && wantsUdp ? "tcp or udp" : wantsTcp ? "tcp" : "udp")} in {ServiceNames.DefaultPath}: give a port number.");
            }
        }

        return ResolveAsync(host, tcpPort, udpPort, family, type, protocol, flags, cancellationToken);
    }

    /// <summary>
    /// Refuses what getaddrinfo refuses with EAI_FAMILY: it resolves IPv4 and IPv6 names only. An
    /// AF_UNIX address is a path, never resolved (asyncio passes it through to the socket as it is).
    /// </summary>
    private static void CheckResolvableFamily(AddressFamily family)
    {
        if (family is AddressFamily.Unspecified or AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
        {
            return;
        }

        string advice = family == AddressFamily.Unix
            ? " A UNIX socket's address is its path, which needs no resolution: use new UnixDomainSocketEndPoint(path)."
            : " Give AddressFamily.Unspecified, InterNetwork or InterNetworkV6.";
        throw new SocketException((int)SocketError.AddressFamilyNotSupported,
            $"getaddrinfo does not resolve names for {family} (EAI_FAMILY, ai_family not supported).{advice}");
    }

    private static bool WantsStream(SocketType type, ProtocolType protocol) =>
        type is SocketType.Unknown or SocketType.Stream && protocol is ProtocolType.Unknown or ProtocolType.Unspecified or ProtocolType.Tcp;

    private static bool WantsDatagram(SocketType type, ProtocolType protocol) =>
        type is SocketType.Unknown or SocketType.Dgram && protocol is ProtocolType.Unknown or ProtocolType.Unspecified or ProtocolType.Udp;

    /// <summary>Resolves <paramref name="host"/>; a null port leaves that protocol's results out (its service is not known for it).</summary>
    private async LoopTask<IReadOnlyList<AddressInfo>> ResolveAsync(string? host, int? tcpPort, int? udpPort,
        AddressFamily family, SocketType type, ProtocolType protocol, AddressInfoFlags flags, CancellationToken cancellationToken)
    {
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        IPAddress[] addresses;
        string canonical = string.Empty;
        if (host is null)
        {
            bool passive = (flags & AddressInfoFlags.Passive) != 0;
            addresses = family switch
            {
                AddressFamily.InterNetwork => [passive ? IPAddress.Any : IPAddress.Loopback],
                AddressFamily.InterNetworkV6 => [passive ? IPAddress.IPv6Any : IPAddress.IPv6Loopback],
                _ => passive ? [IPAddress.IPv6Any, IPAddress.Any] : [IPAddress.IPv6Loopback, IPAddress.Loopback],
            };
        }
        else if (IPAddress.TryParse(host.AsSpan().Trim('[').TrimEnd(']'), out var numeric))
        {
            if (family != AddressFamily.Unspecified && numeric.AddressFamily != family)
            {
                throw new SocketException((int)SocketError.AddressFamilyNotSupported);
            }

            addresses = [numeric];
            canonical = (flags & AddressInfoFlags.CanonicalName) != 0 ? host : string.Empty;
        }
        else if ((flags & AddressInfoFlags.NumericHost) != 0)
        {
            throw new SocketException((int)SocketError.HostNotFound);
        }
        else if ((flags & AddressInfoFlags.CanonicalName) != 0)
        {
            var entry = await Dns.GetHostEntryAsync(host, family, TaskCancellation.CurrentToken(cancellationToken));
            canonical = entry.HostName;
            addresses = entry.AddressList;
        }
        else
        {
            addresses = await Dns.GetHostAddressesAsync(host, family, TaskCancellation.CurrentToken(cancellationToken));
        }

        var results = new List<AddressInfo>(addresses.Length * 2);
        foreach (var address in addresses)
        {
            if (family != AddressFamily.Unspecified && address.AddressFamily != family)
            {
                continue;
            }

            if (tcpPort is int tcp && WantsStream(type, protocol))
            {
                results.Add(new AddressInfo(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp, canonical, new IPEndPoint(address, tcp)));
            }

            if (udpPort is int udp && WantsDatagram(type, protocol))
            {
                results.Add(new AddressInfo(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp, canonical, new IPEndPoint(address, udp)));
            }
        }

        if (results.Count == 0)
        {
            throw new SocketException((int)SocketError.HostNotFound);
        }

        return results;
    }

    /// <inheritdoc/>
    public async LoopTask<(string Host, string Service)> GetNameInfoAsync(IPEndPoint endPoint, NameInfoFlags flags = NameInfoFlags.None,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        string service = (flags & NameInfoFlags.NumericService) == 0 && ServiceNames.NameOf(endPoint.Port, "tcp") is { } name
            ? name
            : endPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if ((flags & NameInfoFlags.NumericHost) != 0)
        {
            return (endPoint.Address.ToString(), service);
        }

        try
        {
            var entry = await Dns.GetHostEntryAsync(endPoint.Address.ToString(), TaskCancellation.CurrentToken(cancellationToken));
            return (entry.HostName, service);
        }
        catch (SocketException) when ((flags & NameInfoFlags.NameRequired) == 0)
        {
            return (endPoint.Address.ToString(), service);
        }
    }
}
