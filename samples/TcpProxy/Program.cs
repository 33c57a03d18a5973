using System;
using System.Globalization;
using Tulip;

namespace Tulip.Samples.TcpProxy;

/// <summary>
/// scripts/tcp-proxy LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT: listens on 127.0.0.1:LISTEN_PORT and
/// relays each client to UPSTREAM_HOST:UPSTREAM_PORT (see <see cref="TcpProxy"/>), on the loop kind
/// TULIP_LOOP names (epoll when unset). Bad arguments or an unknown TULIP_LOOP: a message and exit 2.
/// </summary>
internal static class Program
{
    private const string Usage = "usage: tcp-proxy LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT";

    private static int Main(string[] args)
    {
        if (args.Length != 3 || !TryPort(args[0], out int listenPort) || string.IsNullOrEmpty(args[1]) || !TryPort(args[2], out int upstreamPort))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        if (!LoopChoice.TryChoose("tcp-proxy", null, out var loopFactory))
        {
            return 2;
        }

        string upstreamHost = args[1];
        using var loop = loopFactory();
        try
        {
            loop.RunUntilComplete(async () =>
            {
                await using var proxy = await TcpProxy.StartAsync(listenPort, upstreamHost, upstreamPort, log: Console.Error.WriteLine);
                Console.Error.WriteLine($"tcp-proxy: listening on 127.0.0.1:{proxy.Port}, relaying to {upstreamHost}:{upstreamPort} ({KindOf(loop)})");
                await proxy.Server.ServeForeverAsync();
            });
        }
        catch (System.Net.Sockets.SocketException e)
        {
            Console.Error.WriteLine($"tcp-proxy: cannot listen on 127.0.0.1:{listenPort}: {e.Message}");
            return 1;
        }

        return 0;
    }

    private static bool TryPort(string text, out int port) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is >= 1 and <= 65535;

    /// <summary>The loop's kind as TULIP_LOOP names it.</summary>
    private static string KindOf(IEventLoop loop) => EventLoopKinds.NameOf(loop) ?? loop.GetType().Name;
}
