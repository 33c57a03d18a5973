using System.Net;
using System.Net.Sockets;

namespace Tulip.Tests.Loop;

/// <summary>getaddrinfo with service names and families as asyncio's, and <c>sock_recvfrom_into</c>.</summary>
public abstract partial class EventLoopContractTests
{
    [Fact]
    public void GetAddrInfo_takes_a_service_name_and_gives_only_the_protocols_it_is_listed_for()
    {
        // /etc/services: "http 80/tcp" (no udp entry), "domain 53/tcp" and "domain 53/udp".
        Assert.Equal(80, ServiceNames.Lookup("http", "tcp"));
        Assert.Null(ServiceNames.Lookup("http", "udp"));
        using var h = NewLoop();
        var http = h.Run(() => h.Loop.GetAddrInfoAsync("127.0.0.1", "http"));
        var only = Assert.Single(http);
        Assert.Equal(SocketType.Stream, only.SocketType);
        Assert.Equal(80, only.EndPoint.Port);
        var domain = h.Run(() => h.Loop.GetAddrInfoAsync("127.0.0.1", "domain"));
        Assert.Equal([SocketType.Stream, SocketType.Dgram], domain.Select(i => i.SocketType));
        Assert.All(domain, i => Assert.Equal(53, i.EndPoint.Port));
        var numeric = h.Run(() => h.Loop.GetAddrInfoAsync("127.0.0.1", "8080", type: SocketType.Dgram));
        Assert.Equal(8080, Assert.Single(numeric).EndPoint.Port);
        var none = h.Run(() => h.Loop.GetAddrInfoAsync("127.0.0.1", (string?)null, AddressFamily.InterNetwork, SocketType.Stream));
        Assert.Equal(0, Assert.Single(none).EndPoint.Port);
    }

    [Fact]
    public void GetAddrInfo_refuses_an_unknown_service_as_EAI_SERVICE()
    {
        using var h = NewLoop();
        var unknown = Assert.Throws<SocketException>(() => h.Run(() => h.Loop.GetAddrInfoAsync("127.0.0.1", "no-such-service-tulip")));
        Assert.Equal(SocketError.TypeNotFound, unknown.SocketErrorCode);
        Assert.Contains("no-such-service-tulip", unknown.Message);
        // "http" is a tcp service: asking for datagrams is EAI_SERVICE too, as glibc says.
        var wrongType = Assert.Throws<SocketException>(() => h.Run(() => h.Loop.GetAddrInfoAsync("127.0.0.1", "http", type: SocketType.Dgram)));
        Assert.Equal(SocketError.TypeNotFound, wrongType.SocketErrorCode);
        var outOfRange = Assert.Throws<SocketException>(() => h.Run(() => h.Loop.GetAddrInfoAsync("127.0.0.1", "70000")));
        Assert.Equal(SocketError.TypeNotFound, outOfRange.SocketErrorCode);
        var nothing = Assert.Throws<SocketException>(() => h.Run(() => h.Loop.GetAddrInfoAsync(null, (string?)null)));
        Assert.Equal(SocketError.HostNotFound, nothing.SocketErrorCode);
    }

    [Fact]
    public void GetAddrInfo_with_AF_UNSPEC_gives_both_families_and_refuses_AF_UNIX_as_getaddrinfo_does()
    {
        using var h = NewLoop();
        var both = h.Run(() => h.Loop.GetAddrInfoAsync(null, 9, AddressFamily.Unspecified, SocketType.Stream));
        Assert.Equal([AddressFamily.InterNetworkV6, AddressFamily.InterNetwork], both.Select(i => i.Family));
        var unix = Assert.Throws<SocketException>(() => h.Run(() => h.Loop.GetAddrInfoAsync("/tmp/x.sock", 0, AddressFamily.Unix)));
        Assert.Equal(SocketError.AddressFamilyNotSupported, unix.SocketErrorCode);
        Assert.Contains("UnixDomainSocketEndPoint", unix.Message);
        var unixByService = Assert.Throws<SocketException>(() => h.Run(() => h.Loop.GetAddrInfoAsync("/tmp/x.sock", "http", AddressFamily.Unix)));
        Assert.Equal(SocketError.AddressFamilyNotSupported, unixByService.SocketErrorCode);
    }

    [Fact]
    public void GetNameInfo_names_the_service_unless_asked_for_the_number()
    {
        using var h = NewLoop();
        var (_, named) = h.Run(() => h.Loop.GetNameInfoAsync(new IPEndPoint(IPAddress.Loopback, 80), NameInfoFlags.NumericHost));
        Assert.Equal("http", named);
        var (_, numeric) = h.Run(() => h.Loop.GetNameInfoAsync(new IPEndPoint(IPAddress.Loopback, 80), NameInfoFlags.NumericHost | NameInfoFlags.NumericService));
        Assert.Equal("80", numeric);
    }

    [Fact]
    public void SockRecvFromInto_receives_a_datagram_into_the_callers_buffer_with_its_sender()
    {
        using var h = NewLoop();
        using var a = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { Blocking = false };
        using var b = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { Blocking = false };
        a.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        b.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var buffer = new byte[16];
        var (count, from, cut) = h.Run(async () =>
        {
            var receiving = h.Loop.SockRecvFromIntoAsync(b, buffer);
            Assert.False(receiving.Done);
            Assert.Equal(5, await h.Loop.SockSendToAsync(a, "hello"u8.ToArray(), b.LocalEndPoint!));
            var (n, sender) = await receiving;
            // nbytes: only the first 3 bytes of the buffer are used; the rest of the datagram is cut.
            await h.Loop.SockSendToAsync(a, "world"u8.ToArray(), b.LocalEndPoint!);
            var (m, _) = await h.Loop.SockRecvFromIntoAsync(b, buffer.AsMemory(8), 3);
            return (n, sender, m);
        });
        Assert.Equal(5, count);
        Assert.Equal(a.LocalEndPoint, from);
        Assert.Equal("hello"u8.ToArray(), buffer[..5]);
        Assert.Equal(3, cut);
        Assert.Equal("wor"u8.ToArray(), buffer[8..11]);
        Assert.Equal(0, buffer[11]);
    }

    [Fact]
    public void SockRecvFromInto_refuses_a_count_beyond_the_buffer()
    {
        using var h = NewLoop();
        using var b = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { Blocking = false };
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Loop.SockRecvFromIntoAsync(b, new byte[4], 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Loop.SockRecvFromIntoAsync(b, new byte[4], -1));
    }
}
