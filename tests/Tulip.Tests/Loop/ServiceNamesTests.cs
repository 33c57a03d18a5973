namespace Tulip.Tests.Loop;

/// <summary>The services(5) parser behind GetAddrInfoAsync's service names.</summary>
public sealed class ServiceNamesTests
{
    [Fact]
    public void Parse_reads_names_aliases_and_protocols_and_keeps_the_first_entry()
    {
        var table = ServiceNames.Table.Parse(
        [
            "# comment line",
            "",
            "http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP",
            "domain 53/tcp",
            "domain 53/udp",
            "dup 7/tcp",
            "dup 8/tcp",
            "broken notaport/tcp",
            "huge 70000/tcp",
            "lonely",
        ]);
        Assert.Equal(80, table.Lookup("http", "tcp"));
        Assert.Equal(80, table.Lookup("www", "tcp"));
        Assert.Null(table.Lookup("http", "udp"));
        Assert.Equal(53, table.Lookup("domain", "udp"));
        Assert.Equal(7, table.Lookup("dup", "tcp"));
        Assert.Null(table.Lookup("broken", "tcp"));
        Assert.Null(table.Lookup("huge", "tcp"));
        Assert.Null(table.Lookup("lonely", "tcp"));
        Assert.Equal("http", table.NameOf(80, "tcp"));
        Assert.Null(table.NameOf(80, "udp"));
    }

    [Fact]
    public void Load_of_a_missing_file_knows_no_names()
    {
        var table = ServiceNames.Table.Load("/nonexistent/tulip/services");
        Assert.Null(table.Lookup("http", "tcp"));
    }
}

/// <summary>A loop without a multiplexer refuses the new socket method as it refuses the others.</summary>
public sealed class SockRecvFromIntoRefusalTests
{
    [Fact]
    public void The_virtual_clock_loop_refuses_SockRecvFromInto_naming_the_loop_that_has_it()
    {
        using var loop = new Tulip.Testing.TestEventLoop();
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork,
            System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp) { Blocking = false };
        var refused = Assert.Throws<NotSupportedException>(() => loop.SockRecvFromIntoAsync(socket, new byte[4]));
        var recvFrom = Assert.Throws<NotSupportedException>(() => loop.SockRecvFromAsync(socket, new byte[4]));
        Assert.Equal(recvFrom.Message.Replace("SockRecvFromAsync", "X"), refused.Message.Replace("SockRecvFromIntoAsync", "X"));
    }
}
