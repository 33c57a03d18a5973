using System.Net;
using System.Net.Sockets;
using Tulip;

namespace Tulip.Tests.Transports;

/// <summary>What the suites of the <c>Sock*ValueAsync</c> methods share: a connected pair, and the allocation probe.</summary>
internal static class SockValueSupport
{
    /// <summary>A loopback listener (non-blocking, backlog <paramref name="backlog"/>).</summary>
    public static Socket Listener(int backlog = 1)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(backlog);
        listener.Blocking = false;
        return listener;
    }

    /// <summary>A non-blocking TCP socket with Nagle off, not connected.</summary>
    public static Socket Client() =>
        new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false, NoDelay = true };

    /// <summary>A listener and a connection to it, both ends non-blocking, made with the LoopTask forms.</summary>
    public static async LoopTask<(Socket Listener, Socket Client, Socket Server)> ConnectedPairAsync(BaseEventLoop loop)
    {
        var listener = Listener();
        var client = Client();
        var accepting = loop.SockAcceptAsync(listener);
        await loop.SockConnectAsync(client, listener.LocalEndPoint!);
        var server = await accepting;
        server.NoDelay = true;
        return (listener, client, server);
    }

    /// <summary>Runs <paramref name="body"/> with the two ends of a <see cref="ConnectedPairAsync"/> pair; the three sockets are disposed after it.</summary>
    public static async LoopTask WithConnectedPairAsync(BaseEventLoop loop, Func<Socket, Socket, LoopTask> body)
    {
        var (listener, client, server) = await ConnectedPairAsync(loop);
        using (listener)
        using (client)
        using (server)
        {
            await body(client, server);
        }
    }

    /// <summary>
    /// What one of <paramref name="trips"/>'s iterations allocates on the loop thread
    /// (GC.GetAllocatedBytesForCurrentThread around <paramref name="count"/> of them, after
    /// <paramref name="warmup"/> to fill the loop's pools and the JIT's tiers).
    /// </summary>
    public static async LoopTask<double> AllocatedPerIterationAsync(Func<int, LoopTask> trips, int warmup, int count)
    {
        await trips(warmup);
        long before = GC.GetAllocatedBytesForCurrentThread();
        await trips(count);
        return (GC.GetAllocatedBytesForCurrentThread() - before) / (double)count;
    }
}
