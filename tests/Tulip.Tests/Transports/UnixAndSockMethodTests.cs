using System.Net;
using System.Net.Sockets;
using Tulip;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>UNIX stream sockets and the wrapped socket methods, on every backend.</summary>
public abstract class UnixAndSockMethodTests : LoopSuite
{
    protected UnixAndSockMethodTests(LoopKind kind) : base(kind)
    {
    }

    private static string TempSocketPath() => Path.Combine(Path.GetTempPath(), $"tulip-{Guid.NewGuid():N}.sock");

    [Fact]
    public void UnixServerAndConnection_EchoAndCleanUp()
    {
        string path = TempSocketPath();
        Run(Kind, async loop =>
        {
            var server = await loop.CreateUnixServerAsync(static () => new EchoProtocol(), path);
            Assert.True(File.Exists(path));
            var (transport, client) = await loop.CreateUnixConnectionAsync(() => new RecordingProtocol(loop), path);
            Assert.IsType<UnixDomainSocketEndPoint>(transport.GetExtraInfo("peername"));
            var data = Pattern(200_000);
            transport.Write(data);
            transport.WriteEof();
            Assert.Null(await client.Lost);
            Assert.True(data.AsSpan().SequenceEqual(client.Received));
            server.Close();
            await server.WaitClosedAsync();
            Assert.False(File.Exists(path), "closing the server removes its socket file");
        });
    }

    [Fact]
    public void UnixServer_ReplacesStaleSocketFile_ButNotARegularFile()
    {
        string path = TempSocketPath();
        // A socket file whose server died without unlinking it (.NET's Socket.Dispose unlinks, so bind it from another process).
        using (var python = System.Diagnostics.Process.Start("/usr/bin/python3", ["-c", $"import socket; socket.socket(socket.AF_UNIX).bind('{path}')"]))
        {
            python.WaitForExit();
        }

        string regular = TempSocketPath();
        File.WriteAllText(regular, "keep me");
        try
        {
            Run(Kind, async loop =>
            {
                Assert.True(File.Exists(path));
                await using (var server = await loop.CreateUnixServerAsync(static () => new EchoProtocol(), path))
                {
                    var (transport, client) = await loop.CreateUnixConnectionAsync(() => new RecordingProtocol(loop), path);
                    transport.Close();
                    await client.Lost;
                    server.Close();
                }

                await Assert.ThrowsAsync<SocketException>(async () => await loop.CreateUnixServerAsync(static () => new EchoProtocol(), regular));
                Assert.Equal("keep me", File.ReadAllText(regular));
            });
        }
        finally
        {
            File.Delete(regular);
            File.Delete(path);
        }
    }

    [Fact]
    public void UnixConnection_ListenerBacklogFull_WaitsUntilAcceptedInsteadOfReturningAnUnconnectedSocket()
    {
        // A non-blocking AF_UNIX connect to a listener whose backlog is full fails with EAGAIN and is not
        // in progress (unlike TCP's EINPROGRESS), yet the socket polls writable at once. Each connect must
        // finish connected, once the listener makes room, and carry data.
        const int clients = 6;
        string path = TempSocketPath();
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        listener.Blocking = false;
        try
        {
            Run(Kind, async loop =>
            {
                var connects = new List<LoopTask<(ITransport Transport, RecordingProtocol Protocol)>>();
                for (int i = 0; i < clients; i++)
                {
                    connects.Add(loop.CreateTask(() => loop.CreateUnixConnectionAsync(() => new RecordingProtocol(loop), path)));
                }

                var accepted = new List<Socket>();
                for (int i = 0; i < clients; i++)
                {
                    accepted.Add(await loop.SockAcceptAsync(listener));
                }

                var buffer = new byte[1];
                for (int i = 0; i < clients; i++)
                {
                    var (transport, _) = await connects[i];
                    transport.Write([(byte)i]);
                }

                var seen = new HashSet<int>();
                foreach (var s in accepted)
                {
                    s.Blocking = false;
                    Assert.Equal(1, await loop.SockRecvAsync(s, buffer));
                    seen.Add(buffer[0]);
                }

                Assert.Equal(Enumerable.Range(0, clients).ToHashSet(), seen);
                foreach (var c in connects)
                {
                    var (transport, protocol) = await c;
                    transport.Close();
                    await protocol.Lost;
                }

                foreach (var s in accepted)
                {
                    s.Dispose();
                }
            });
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void UnixConnection_NoServer_Throws()
    {
        Run(Kind, async loop =>
        {
            await Assert.ThrowsAsync<SocketException>(async () =>
                await loop.CreateUnixConnectionAsync(() => new RecordingProtocol(loop), TempSocketPath()));
        });
    }

    [Fact]
    public void SockMethods_ConnectAcceptSendAllRecv()
    {
        Run(Kind, async loop =>
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(10);
            listener.Blocking = false;
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            var accepting = loop.SockAcceptAsync(listener);
            await loop.SockConnectAsync(client, listener.LocalEndPoint!);
            using var server = await accepting;
            Assert.False(server.Blocking);
            var data = Pattern(3 << 20);
            var sending = loop.SockSendAllAsync(client, data);
            var received = new MemoryStream();
            var buffer = new byte[100_000];
            while (received.Length < data.Length)
            {
                int n = await loop.SockRecvAsync(server, buffer);
                Assert.NotEqual(0, n);
                received.Write(buffer, 0, n);
            }

            await sending;
            Assert.True(data.AsSpan().SequenceEqual(received.ToArray()));
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, await loop.SockRecvIntoAsync(server, buffer));
        });
    }

    [Fact]
    public void SockRecv_Cancelled_RemovesTheReader()
    {
        Run(Kind, async loop =>
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(10);
            listener.Blocking = false;
            int registrations = Kind.Registrations(loop);
            using var cts = new CancellationTokenSource();
            var accepting = loop.SockAcceptAsync(listener, cts.Token);
            await Tasks.Sleep(0);
            Assert.Equal(registrations + 1, Kind.Registrations(loop));
            cts.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await accepting);
            Assert.Equal(registrations, Kind.Registrations(loop));
        });
    }

    [Fact]
    public void SockRecv_Cancelled_TakesNoData_TheNextRecvGetsIt()
    {
        // A cancelled receive is really stopped: on a completion loop a receive left in flight would
        // swallow the bytes that arrive next, and the caller's next receive would never see them.
        Run(Kind, async loop =>
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            listener.Blocking = false;
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            var accepting = loop.SockAcceptAsync(listener);
            await loop.SockConnectAsync(client, listener.LocalEndPoint!);
            using var server = await accepting;
            int registrations = Kind.Registrations(loop);

            var buffer = new byte[16];
            var receiving = loop.SockRecvAsync(server, buffer);
            await Tasks.Sleep(0);
            Assert.Equal(registrations + 1, Kind.Registrations(loop));
            receiving.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await receiving);
            Assert.Equal(registrations, Kind.Registrations(loop));

            await loop.SockSendAllAsync(client, "after"u8.ToArray());
            Assert.Equal(5, await loop.SockRecvAsync(server, buffer));
            Assert.Equal("after"u8.ToArray(), buffer.AsSpan(0, 5).ToArray());
        });
    }

    [Fact]
    public void SockMethods_BadSockets_ClearErrors()
    {
        Run(Kind, async loop =>
        {
            using var blocking = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var ex = await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockRecvAsync(blocking, new byte[1]));
            Assert.Contains("non-blocking", ex.Message, StringComparison.Ordinal);
            await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockRecvIntoAsync(blocking, new byte[1]));
            await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockSendAllAsync(blocking, new byte[1]));
            await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockAcceptAsync(blocking));

            await Assert.ThrowsAsync<ArgumentNullException>(async () => await loop.SockRecvAsync(null!, new byte[1]));
            await Assert.ThrowsAsync<ArgumentNullException>(async () => await loop.SockSendAllAsync(null!, new byte[1]));
            await Assert.ThrowsAsync<ArgumentNullException>(async () => await loop.SockAcceptAsync(null!));

            var disposed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            disposed.Dispose();
            await Assert.ThrowsAsync<ObjectDisposedException>(async () => await loop.SockRecvAsync(disposed, new byte[1]));
            await Assert.ThrowsAsync<ObjectDisposedException>(async () => await loop.SockAcceptAsync(disposed));

            // Not connected: the OS's answer, as a SocketException.
            using var unconnected = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            await Assert.ThrowsAsync<SocketException>(async () => await loop.SockSendAllAsync(unconnected, new byte[1]));
        });
    }

    [Fact]
    public void SockConnect_Refused_Throws()
    {
        Run(Kind, async loop =>
        {
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            var ex = await Assert.ThrowsAsync<SocketException>(async () => await loop.SockConnectAsync(client, new IPEndPoint(IPAddress.Loopback, FreePort())));
            Assert.Equal(SocketError.ConnectionRefused, ex.SocketErrorCode);
            using var blocking = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockConnectAsync(blocking, new IPEndPoint(IPAddress.Loopback, 1)));
        });
    }

    [Fact]
    public void SockSendToRecvFrom_Udp()
    {
        Run(Kind, async loop =>
        {
            using var a = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { Blocking = false };
            using var b = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { Blocking = false };
            a.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            b.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var receiving = loop.SockRecvFromAsync(b, new byte[100]);
            Assert.Equal(5, await loop.SockSendToAsync(a, "hello"u8.ToArray(), b.LocalEndPoint!));
            var (count, from) = await receiving;
            Assert.Equal(5, count);
            Assert.Equal(a.LocalEndPoint, from);
        });
    }

    [Fact]
    public void SockSendFile_SendsTheRange()
    {
        string file = Path.GetTempFileName();
        var content = Pattern(300_000);
        File.WriteAllBytes(file, content);
        try
        {
            Run(Kind, async loop =>
            {
                using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                listener.Listen(10);
                listener.Blocking = false;
                using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
                var accepting = loop.SockAcceptAsync(listener);
                await loop.SockConnectAsync(client, listener.LocalEndPoint!);
                using var server = await accepting;
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read);
                var sending = loop.SockSendFileAsync(client, stream, 1000, 200_000);
                var received = new MemoryStream();
                var buffer = new byte[65536];
                while (received.Length < 200_000)
                {
                    received.Write(buffer, 0, await loop.SockRecvAsync(server, buffer));
                }

                Assert.Equal(200_000, await sending);
                Assert.Equal(201_000, stream.Position);
                Assert.True(content.AsSpan(1000, 200_000).SequenceEqual(received.ToArray()));
            });
        }
        finally
        {
            File.Delete(file);
        }
    }
}

public sealed class EpollUnixAndSockMethodTests() : UnixAndSockMethodTests(LoopKinds.Epoll);

public sealed class PollUnixAndSockMethodTests() : UnixAndSockMethodTests(LoopKinds.Poll);

public sealed class ProactorUnixAndSockMethodTests() : UnixAndSockMethodTests(LoopKinds.Proactor);
