using System;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Tulip;

namespace Tulip.Samples.UdpEchoServer;

/// <summary>
/// A UDP echo server on 127.0.0.1:PORT: each datagram goes back to its sender, whole. Usage:
/// UdpEchoServer PORT [epoll|poll|io_uring|proactor]. Run through scripts/udp-echo-server. Without the loop
/// argument it runs on the loop kind TULIP_LOOP names (epoll when unset).
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length is < 1 or > 2 || !int.TryParse(args[0], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            Console.Error.WriteLine("usage: UdpEchoServer PORT [epoll|poll|io_uring|proactor]");
            return 2;
        }

        if (!LoopChoice.TryChoose("udp-echo-server", args.Length > 1 ? args[1] : null, out var loopFactory))
        {
            return 2;
        }

        using var loop = loopFactory();
        try
        {
            loop.RunUntilComplete(async () =>
            {
                var (transport, protocol) = await loop.CreateDatagramEndpointAsync(static () => new EchoProtocol(),
                    new IPEndPoint(IPAddress.Loopback, port), null);
                Console.Error.WriteLine($"udp-echo-server: serving on 127.0.0.1:{port} ({KindOf(loop)})");
                await protocol.Closed;
            });
        }
        catch (SocketException ex)
        {
            Console.Error.WriteLine($"udp-echo-server: {ex.Message}");
            return 1;
        }

        return 0;
    }

    /// <summary>The loop's kind as it is named on the command line and in TULIP_LOOP.</summary>
    private static string KindOf(IEventLoop loop) => EventLoopKinds.NameOf(loop) ?? loop.GetType().Name;
}

/// <summary>
/// Sends every datagram back to its sender. What happens to one client (it went away, its port is
/// unreachable, its datagram was too large) is reported and the server goes on serving the others.
/// </summary>
internal sealed class EchoProtocol : DatagramProtocol
{
    private IDatagramTransport _transport = null!;

    /// <summary>Completes when the endpoint closes: the server runs until then.</summary>
    public Future<bool> Closed { get; } = EventLoop.GetRunningLoop().CreateFuture<bool>();

    public override void ConnectionMade(IBaseTransport transport) => _transport = (IDatagramTransport)transport;

    public override void DatagramReceived(ReadOnlySpan<byte> data, EndPoint address) => _transport.SendTo(data, address);

    public override void ErrorReceived(Exception exception) =>
        Console.Error.WriteLine($"udp-echo-server: {exception.Message} (still serving)");

    public override void ConnectionLost(Exception? exception) => Closed.TrySetResult(true);
}
