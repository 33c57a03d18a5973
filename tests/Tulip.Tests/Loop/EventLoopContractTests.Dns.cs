using System.Net;
using System.Net.Sockets;

namespace Tulip.Tests.Loop;

public abstract partial class EventLoopContractTests
{
    [Fact]
    public void GetAddrInfo_of_a_numeric_address_gives_a_stream_and_a_datagram_entry()
    {
        using var h = NewLoop();
        var infos = h.Run(() => h.Loop.GetAddrInfoAsync("127.0.0.1", 80));
        Assert.Equal(2, infos.Count);
        Assert.All(infos, i =>
        {
            Assert.Equal(AddressFamily.InterNetwork, i.Family);
            Assert.Equal(new IPEndPoint(IPAddress.Loopback, 80), i.EndPoint);
        });
        Assert.Contains(infos, i => i.SocketType == SocketType.Stream && i.Protocol == ProtocolType.Tcp);
        Assert.Contains(infos, i => i.SocketType == SocketType.Dgram && i.Protocol == ProtocolType.Udp);

        var streamOnly = h.Run(() => h.Loop.GetAddrInfoAsync("127.0.0.1", 80, type: SocketType.Stream));
        Assert.Equal(SocketType.Stream, Assert.Single(streamOnly).SocketType);
    }

    [Fact]
    public void GetAddrInfo_of_localhost_gives_loopback_addresses()
    {
        using var h = NewLoop();
        var infos = h.Run(() => h.Loop.GetAddrInfoAsync("localhost", 8080, type: SocketType.Stream));
        Assert.NotEmpty(infos);
        Assert.All(infos, i =>
        {
            var ep = Assert.IsType<IPEndPoint>(i.EndPoint);
            Assert.True(IPAddress.IsLoopback(ep.Address), ep.ToString());
            Assert.Equal(8080, ep.Port);
        });
    }

    [Fact]
    public void GetAddrInfo_of_no_host_is_the_wildcard_when_passive_and_loopback_otherwise()
    {
        using var h = NewLoop();
        var passive = h.Run(() => h.Loop.GetAddrInfoAsync(null, 0, AddressFamily.InterNetwork, SocketType.Stream, flags: AddressInfoFlags.Passive));
        Assert.Equal(IPAddress.Any, Assert.IsType<IPEndPoint>(Assert.Single(passive).EndPoint).Address);
        var active = h.Run(() => h.Loop.GetAddrInfoAsync(null, 0, AddressFamily.InterNetwork, SocketType.Stream));
        Assert.Equal(IPAddress.Loopback, Assert.IsType<IPEndPoint>(Assert.Single(active).EndPoint).Address);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(65536)]
    public void GetAddrInfo_refuses_a_bad_port(int port)
    {
        using var h = NewLoop();
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Run(() => h.Loop.GetAddrInfoAsync("127.0.0.1", port)));
    }

    [Fact]
    public void GetNameInfo_numeric_gives_the_address_and_port()
    {
        using var h = NewLoop();
        var (host, service) = h.Run(() => h.Loop.GetNameInfoAsync(new IPEndPoint(IPAddress.Loopback, 443), NameInfoFlags.NumericHost | NameInfoFlags.NumericService));
        Assert.Equal("127.0.0.1", host);
        Assert.Equal("443", service);
    }
}
