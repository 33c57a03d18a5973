using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Tulip;

public abstract partial class BaseEventLoop
{
    /// <inheritdoc/>
    public async LoopTask<IReadOnlyList<AddressInfo>> GetAddrInfoAsync(string? host, int port,
        AddressFamily family = AddressFamily.Unspecified, SocketType type = SocketType.Unknown,
        ProtocolType protocol = ProtocolType.Unknown, AddressInfoFlags flags = AddressInfoFlags.None,
        CancellationToken cancellationToken = default)
    {
        if (port is < 0 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(port), port, "A port is between 0 and 65535.");
        }

        if (family is not (AddressFamily.Unspecified or AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            throw new ArgumentException($"GetAddrInfoAsync resolves IPv4 and IPv6 names; {family} is not supported.", nameof(family));
        }

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

            var endPoint = new IPEndPoint(address, port);
            if (type is SocketType.Unknown or SocketType.Stream && protocol is ProtocolType.Unknown or ProtocolType.Unspecified or ProtocolType.Tcp)
            {
                results.Add(new AddressInfo(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp, canonical, endPoint));
            }

            if (type is SocketType.Unknown or SocketType.Dgram && protocol is ProtocolType.Unknown or ProtocolType.Unspecified or ProtocolType.Udp)
            {
                results.Add(new AddressInfo(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp, canonical, endPoint));
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
        string service = endPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
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
