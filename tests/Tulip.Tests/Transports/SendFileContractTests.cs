using System.Net;
using System.Net.Sockets;
using Microsoft.Win32.SafeHandles;
using Tulip;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// SockSendFileAsync and SendFileAsync (asyncio's sock_sendfile and loop.sendfile) on every
/// backend: byte-exact ranges through sendfile(2) and through the fallback, the fallback
/// parameter, bad input, cancellation, and a transport's writes before and after a file.
/// </summary>
public abstract class SendFileContractTests : LoopSuite
{
    protected SendFileContractTests(LoopKind kind) : base(kind)
    {
    }

    private static readonly string[] s_loopback = ["127.0.0.1"];

    /// <summary>A temp file of <see cref="Pattern"/>(size), deleted on dispose.</summary>
    private sealed class TempFile : IDisposable
    {
        public TempFile(int size)
        {
            Path = System.IO.Path.GetTempFileName();
            Content = Pattern(size);
            File.WriteAllBytes(Path, Content);
        }

        public string Path { get; }

        public byte[] Content { get; }

        public FileStream OpenRead() => new(Path, FileMode.Open, FileAccess.Read);

        public void Dispose() => File.Delete(Path);
    }

    /// <summary>A connected pair of non-blocking TCP sockets on loopback.</summary>
    private static async LoopTask<(Socket Client, Socket Server)> ConnectedSockets(BaseEventLoop loop, int? bufferSize = null)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        listener.Blocking = false;
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
        if (bufferSize is { } size)
        {
            // Small buffers make a never-reading peer stop a send early (set before connecting, so the window follows).
            client.SendBufferSize = size;
            listener.ReceiveBufferSize = size;
        }

        var accepting = loop.SockAcceptAsync(listener);
        await loop.SockConnectAsync(client, listener.LocalEndPoint!);
        return (client, await accepting);
    }

    /// <summary>Reads <paramref name="socket"/> until EOF.</summary>
    private static async LoopTask<byte[]> ReadToEnd(BaseEventLoop loop, Socket socket)
    {
        var received = new MemoryStream();
        var buffer = new byte[65536];
        while (true)
        {
            int n = await loop.SockRecvAsync(socket, buffer);
            if (n == 0)
            {
                return received.ToArray();
            }

            received.Write(buffer, 0, n);
        }
    }

    private static void AssertSameBytes(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        if (!expected.SequenceEqual(actual))
        {
            int i = 0;
            while (expected[i] == actual[i])
            {
                i++;
            }

            Assert.Fail($"the bytes differ first at {i}");
        }
    }

    // ---- SockSendFileAsync ---------------------------------------------------------------------

    [Theory]
    [InlineData(0, true)]
    [InlineData(0, false)]
    [InlineData(1, true)]
    [InlineData(1, false)]
    [InlineData(4095, true)]
    [InlineData(4097, false)]
    [InlineData(65535, true)]
    [InlineData(65537, true)]
    [InlineData(65537, false)]
    [InlineData((1 << 20) + 1, true)]
    [InlineData((1 << 20) - 1, false)]
    [InlineData((16 << 20) - 1, true)]
    [InlineData((16 << 20) + 1, true)]
    [InlineData((16 << 20) + 1, false)]
    public void SockSendFile_WholeFile_IsByteExact(int size, bool native)
    {
        using var file = new TempFile(size);
        Run(Kind, async loop =>
        {
            Kind.UseNativeSendFile(loop, native);
            var (client, server) = await ConnectedSockets(loop);
            using (client)
            using (server)
            using (var stream = file.OpenRead())
            {
                var receiving = ReadToEnd(loop, server);
                Assert.Equal(size, await loop.SockSendFileAsync(client, stream));
                client.Shutdown(SocketShutdown.Send);
                var got = await receiving;
                AssertSameBytes(file.Content, got);
                Assert.Equal(size, stream.Position);
            }
        });
    }

    [Theory]
    [InlineData(1000, 200_000, true)]
    [InlineData(1000, 200_000, false)]
    [InlineData(4097, null, true)]
    [InlineData(4097, null, false)]
    [InlineData(65535, 1, true)]
    [InlineData(0, (1 << 20) + 100, true)]       // more than the file holds: what there is
    [InlineData(0, (1 << 20) + 100, false)]
    [InlineData((1 << 20) + 5, 10, true)]        // past the end: nothing
    [InlineData((1 << 20) + 5, null, false)]
    public void SockSendFile_Range_IsByteExact_AndPositionEndsAfterIt(int offset, int? count, bool native)
    {
        const int size = 1 << 20;
        using var file = new TempFile(size);
        int start = Math.Min(offset, size);
        int expected = Math.Min(count ?? int.MaxValue, size - start);
        Run(Kind, async loop =>
        {
            Kind.UseNativeSendFile(loop, native);
            var (client, server) = await ConnectedSockets(loop);
            using (client)
            using (server)
            using (var stream = file.OpenRead())
            {
                stream.Position = 12345; // ignored: the offset says where to start
                var receiving = ReadToEnd(loop, server);
                Assert.Equal(expected, await loop.SockSendFileAsync(client, stream, offset, count));
                client.Shutdown(SocketShutdown.Send);
                var got = await receiving;
                AssertSameBytes(file.Content.AsSpan(start, expected), got);
                Assert.Equal(offset + expected, stream.Position);
            }
        });
    }

    [Fact]
    public void SockSendFile_KernelRefusesTheFile_FallbackDecides()
    {
        // sendfile(2) from a /proc file fails with EINVAL (no splice_read): the kernel refuses the file, not the socket.
        Run(Kind, async loop =>
        {
            var (client, server) = await ConnectedSockets(loop);
            using (client)
            using (server)
            {
                using (var proc = new FileStream("/proc/self/status", FileMode.Open, FileAccess.Read))
                {
                    var ex = await Assert.ThrowsAsync<SendfileNotAvailableError>(async () =>
                        await loop.SockSendFileAsync(client, proc, fallback: false));
                    Assert.Contains("fallback: true", ex.Message);
                    // Why: the kernel's EINVAL (sendfile(2) tried), or the file's length that its data belies
                    // (a completion loop sizes the ranges it hands the runtime by it, so it looks first).
                    Assert.Matches("EINVAL|length its data does not have", ex.Message);
                    Assert.Equal(0, proc.Position);
                }

                using (var proc = new FileStream("/proc/self/status", FileMode.Open, FileAccess.Read))
                {
                    var receiving = ReadToEnd(loop, server);
                    long sent = await loop.SockSendFileAsync(client, proc);
                    client.Shutdown(SocketShutdown.Send);
                    var text = System.Text.Encoding.ASCII.GetString(await receiving);
                    Assert.StartsWith("Name:", text);
                    Assert.Equal(sent, text.Length);
                    Assert.Equal(sent, proc.Position);
                }
            }
        });
    }

    [Fact]
    public void SockSendFile_NonSeekableFile_NeedsTheFallback()
    {
        var data = Pattern(300_000);
        Run(Kind, async loop =>
        {
            var (client, server) = await ConnectedSockets(loop);
            using (client)
            using (server)
            {
                using (var pipe = PipeWith(data, out var writer))
                {
                    await Assert.ThrowsAsync<SendfileNotAvailableError>(async () => await loop.SockSendFileAsync(client, pipe, fallback: false));
                    await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockSendFileAsync(client, pipe, offset: 1));
                    var receiving = ReadToEnd(loop, server);
                    // The pipe's writer runs on another thread; the fallback's blocking reads of the pipe wait for it.
                    Assert.Equal(data.Length, await loop.SockSendFileAsync(client, pipe));
                    client.Shutdown(SocketShutdown.Send);
                    var got = await receiving;
                    AssertSameBytes(data, got);
                    await writer;
                }
            }
        });
    }

    /// <summary>A read-only FileStream over a pipe that another thread fills with <paramref name="data"/> and closes.</summary>
    private static unsafe FileStream PipeWith(byte[] data, out Task writer)
    {
        int* fds = stackalloc int[2];
        Assert.Equal(0, Interop.Pipe2(fds, Interop.O_CLOEXEC));
        var readEnd = new FileStream(new SafeFileHandle(fds[0], ownsHandle: true), FileAccess.Read, 1);
        var writeEnd = new FileStream(new SafeFileHandle(fds[1], ownsHandle: true), FileAccess.Write, 1);
        writer = Task.Run(() =>
        {
            using (writeEnd)
            {
                writeEnd.Write(data);
            }
        });
        return readEnd;
    }

    [Fact]
    public void SockSendFile_BadInput_ClearErrors_LoopGoesOn()
    {
        using var file = new TempFile(1000);
        Run(Kind, async loop =>
        {
            var (client, server) = await ConnectedSockets(loop);
            using (client)
            using (server)
            {
                int registrations = Kind.Registrations(loop);
                using var stream = file.OpenRead();
                await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await loop.SockSendFileAsync(client, stream, offset: -1));
                await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await loop.SockSendFileAsync(client, stream, count: 0));
                await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await loop.SockSendFileAsync(client, stream, count: -5));
                await Assert.ThrowsAsync<ArgumentNullException>(async () => await loop.SockSendFileAsync(client, null!));

                using (var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { Blocking = false })
                {
                    var ex = await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockSendFileAsync(udp, stream));
                    Assert.Contains("stream", ex.Message);
                }

                using (var blocking = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
                {
                    var ex = await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockSendFileAsync(blocking, stream));
                    Assert.Contains("non-blocking", ex.Message);
                }

                var closed = file.OpenRead();
                closed.Dispose();
                await Assert.ThrowsAsync<ObjectDisposedException>(async () => await loop.SockSendFileAsync(client, closed));

                using (var writeOnly = new FileStream(file.Path, FileMode.Open, FileAccess.Write))
                {
                    var ex = await Assert.ThrowsAsync<ArgumentException>(async () => await loop.SockSendFileAsync(client, writeOnly));
                    Assert.Contains("FileAccess.Read", ex.Message);
                }

                using (var unconnected = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false })
                {
                    // A connection problem is not "sendfile unavailable": it is reported as itself, with no fallback.
                    var ex = await Assert.ThrowsAsync<SocketException>(async () => await loop.SockSendFileAsync(unconnected, stream, fallback: false));
                    Assert.Contains("sendfile", ex.Message);
                }

                Assert.Equal(registrations, Kind.Registrations(loop));
                // Still works after all that.
                var receiving = ReadToEnd(loop, server);
                Assert.Equal(1000, await loop.SockSendFileAsync(client, stream));
                client.Shutdown(SocketShutdown.Send);
                var got = await receiving;
                AssertSameBytes(file.Content, got);
            }
        });
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SockSendFile_Cancelled_PositionMatchesWhatWasSent_SocketStaysUsable(bool native)
    {
        using var file = new TempFile(16 << 20);
        const int offset = 777;
        Run(Kind, async loop =>
        {
            Kind.UseNativeSendFile(loop, native);
            var (client, server) = await ConnectedSockets(loop, bufferSize: 64 * 1024);
            using (client)
            using (server)
            using (var stream = file.OpenRead())
            {
                int registrations = Kind.Registrations(loop);
                using var cts = new CancellationTokenSource();
                var sending = loop.SockSendFileAsync(client, stream, offset, cancellationToken: cts.Token);
                // The peer does not read: the send fills the socket and waits (for writability, or for the
                // runtime to take more of what it was handed).
                Assert.True(await Eventually(() => Kind.Registrations(loop) == registrations + 1));
                Assert.False(sending.Done);
                cts.Cancel();
                // The peer reads from now on. A readiness loop stops at once; a completion loop's native file
                // send takes no cancellation, so the range in flight finishes first, and is counted.
                var receiving = ReadToEnd(loop, server);
                await Assert.ThrowsAsync<CancelledError>(async () => await sending);
                long sent = stream.Position - offset;
                Assert.InRange(sent, 1, (16 << 20) - offset - 1);

                // The socket goes on where the file stopped: a marker follows the sent bytes exactly.
                var marker = "-- after the cancelled send --"u8.ToArray();
                await loop.SockSendAllAsync(client, marker);
                client.Shutdown(SocketShutdown.Send);
                var received = await receiving;
                Assert.Equal(registrations, Kind.Registrations(loop));
                AssertSameBytes(file.Content.AsSpan(offset, (int)sent), received.AsSpan(0, received.Length - marker.Length));
                AssertSameBytes(marker, received.AsSpan(received.Length - marker.Length));
            }
        });
    }

    // ---- SendFileAsync on a transport ----------------------------------------------------------

    /// <summary>A server whose first connection's protocol is returned once it is made.</summary>
    private static async LoopTask<(Server Server, Future<RecordingProtocol> Peer)> RecordingServer(BaseEventLoop loop, bool pauseReading = false)
    {
        var peer = loop.CreateFuture<RecordingProtocol>();
        var server = await loop.CreateServerAsync(() =>
        {
            var p = new PeerProtocol(loop, pauseReading);
            peer.TrySetResult(p);
            return p;
        }, s_loopback, 0);
        if (pauseReading)
        {
            // Accepted sockets inherit it: with a small window a peer that does not read stops a send early.
            server.Sockets[0].ReceiveBufferSize = 64 * 1024;
        }

        return (server, peer);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SendFile_WritesBeforeAndAfter_KeepTheirOrder(bool native)
    {
        using var file = new TempFile((4 << 20) + 3);
        Run(Kind, async loop =>
        {
            Kind.UseNativeSendFile(loop, native);
            var (server, peerFuture) = await RecordingServer(loop);
            await using (server)
            {
                var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
                var peer = await peerFuture;
                var before = Pattern(6 << 20);
                var after = "after the file"u8.ToArray();
                transport.Write(before);
                Assert.True(transport.GetWriteBufferSize() > 0, "the write before should still be buffered, so the send waits for it");
                using var stream = file.OpenRead();
                var sending = loop.SendFileAsync(transport, stream, 100, (3 << 20) + 1);
                Assert.False(transport.IsReading);
                Assert.Throws<InvalidOperationException>(() => transport.Write("x"u8));
                Assert.Throws<InvalidOperationException>(() => transport.WriteLines(["x"u8.ToArray()]));
                Assert.Equal((3 << 20) + 1, await sending);
                Assert.True(transport.IsReading);
                Assert.Equal(100 + (3 << 20) + 1, stream.Position);

                // Reading resumed: the peer's reply arrives.
                peer.Transport.Write("reply"u8);
                Assert.True(await client.WaitBytes(loop, 5));
                transport.Write(after);
                transport.WriteEof();
                Assert.True(await peer.Eof);
                var expected = before.Concat(file.Content.Skip(100).Take((3 << 20) + 1)).Concat(after).ToArray();
                AssertSameBytes(expected, peer.Received);
                transport.Close();
                Assert.Null(await client.Lost);
                Assert.Empty(client.Errors);
                Assert.Empty(peer.Errors);
            }
        });
    }

    [Fact]
    public void SendFile_CloseDuringTheSend_FinishesThenCloses()
    {
        using var file = new TempFile(8 << 20);
        Run(Kind, async loop =>
        {
            var (server, peerFuture) = await RecordingServer(loop);
            await using (server)
            {
                var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
                var peer = await peerFuture;
                using var stream = file.OpenRead();
                var sending = loop.SendFileAsync(transport, stream);
                transport.Close();
                Assert.True(transport.IsClosing);
                Assert.Equal(8 << 20, await sending);
                Assert.Null(await client.Lost);
                Assert.True(await peer.Eof);
                AssertSameBytes(file.Content, peer.Received);
                Assert.Empty(client.Errors);
            }
        });
    }

    [Fact]
    public void SendFile_WriteEofDuringTheSend_ShutsDownAfterTheFile()
    {
        using var file = new TempFile(4 << 20);
        Run(Kind, async loop =>
        {
            var (server, peerFuture) = await RecordingServer(loop, pauseReading: true);
            await using (server)
            {
                var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
                client.KeepOpenOnEof = true;
                var peer = await peerFuture;
                peer.KeepOpenOnEof = true;
                using var stream = file.OpenRead();
                var sending = loop.SendFileAsync(transport, stream);
                Assert.False(sending.Done);
                transport.WriteEof(); // a FIN now would cut the file short: it waits for the send
                Assert.Throws<InvalidOperationException>(() => transport.Write("x"u8));
                peer.Transport.ResumeReading();
                Assert.Equal(4 << 20, await sending);
                Assert.True(await peer.Eof);
                AssertSameBytes(file.Content, peer.Received);
                // Half-closed, still reading: the peer's reply arrives.
                peer.Transport.Write("bye"u8);
                peer.Transport.Close();
                Assert.True(await client.Eof);
                Assert.Equal("bye"u8.ToArray(), client.Received);
                transport.Close();
                Assert.Null(await client.Lost);
            }
        });
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SendFile_AbortDuringTheSend_StopsIt(bool native)
    {
        using var file = new TempFile(16 << 20);
        Run(Kind, async loop =>
        {
            Kind.UseNativeSendFile(loop, native);
            var (server, peerFuture) = await RecordingServer(loop, pauseReading: true);
            await using (server)
            {
                int registrations = Kind.Registrations(loop);
                var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
                var peer = await peerFuture;
                using var stream = file.OpenRead();
                var sending = loop.SendFileAsync(transport, stream);
                // The first sendfile(2) ran at once; now the send waits for writability (its writer is on, the
                // transport's reader paused), and the peer, not reading, will not let it finish. (A completion
                // loop counts the send in flight and the transport's receive, which a pause does not take back.
                // The io_uring loop counts the writer's poll, and the two transports' receives until the
                // cancels their pauses queued reach the kernel with the next wait.)
                var socket = (Socket)transport.GetExtraInfo("socket")!;
                Assert.False(transport.IsReading);
                Assert.InRange(Kind.Registrations(loop), registrations + 1,
                    Kind.Readiness ? (Kind.CompletionWrites ? registrations + 3 : registrations + 1) : registrations + 2);
                Assert.False(sending.Done);
                transport.Abort();
                var ex = await Assert.ThrowsAsync<SocketException>(async () => await sending);
                Assert.Equal(SocketError.ConnectionAborted, ex.SocketErrorCode);
                Assert.Null(await client.Lost);
                Assert.True(stream.Position > 0);
                peer.Transport.ResumeReading();
                await peer.Lost; // the reset reaches the peer (whether it reads the queued bytes first is the kernel's business)
                Assert.True(await Eventually(() => Kind.Registrations(loop) == registrations), "only the listener should be left");
                Assert.Throws<ObjectDisposedException>(() => socket.Available);
                Assert.Empty(client.Errors);
            }
        });
    }

    [Fact]
    public void SendFile_Cancelled_TransportGoesOn()
    {
        using var file = new TempFile(16 << 20);
        Run(Kind, async loop =>
        {
            var (server, peerFuture) = await RecordingServer(loop, pauseReading: true);
            await using (server)
            {
                var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
                var peer = await peerFuture;
                using var stream = file.OpenRead();
                var sending = loop.SendFileAsync(transport, stream, 5);
                Assert.False(transport.IsReading);
                Assert.False(sending.Done);
                sending.Cancel();
                // The peer reads from now on: a completion loop's native file send takes no cancellation,
                // so the range in flight finishes (and is counted) before the cancellation is taken.
                peer.Transport.ResumeReading();
                await Assert.ThrowsAsync<CancelledError>(async () => await sending);
                long sent = stream.Position - 5;
                Assert.True(sent > 0);
                Assert.True(transport.IsReading);
                var after = "after"u8.ToArray();
                transport.Write(after);
                transport.WriteEof();
                Assert.True(await peer.Eof);
                var expected = file.Content.Skip(5).Take((int)sent).Concat(after).ToArray();
                AssertSameBytes(expected, peer.Received);
                transport.Close();
                await client.Lost;
            }
        });
    }

    [Fact]
    public void SendFile_BadInput_ClearErrors_TransportGoesOn()
    {
        using var file = new TempFile(1000);
        Run(Kind, async loop =>
        {
            var (server, peerFuture) = await RecordingServer(loop, pauseReading: true);
            await using (server)
            {
                var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
                var peer = await peerFuture;
                using var stream = file.OpenRead();
                await Assert.ThrowsAsync<ArgumentNullException>(async () => await loop.SendFileAsync(null!, stream));
                await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await loop.SendFileAsync(transport, stream, -1));
                await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await loop.SendFileAsync(transport, stream, 0, 0));
                using (var testLoop = new Tulip.Testing.TestEventLoop())
                {
                    var memory = new Tulip.Testing.MemoryTransport(testLoop, new RecordingProtocol(testLoop));
                    var ex = await Assert.ThrowsAsync<NotSupportedException>(async () => await loop.SendFileAsync(memory, stream));
                    Assert.Contains("MemoryTransport", ex.Message);
                }

                // The kernel refuses /proc files: with fallback false nothing is sent and the transport goes on.
                using (var proc = new FileStream("/proc/self/status", FileMode.Open, FileAccess.Read))
                {
                    await Assert.ThrowsAsync<SendfileNotAvailableError>(async () => await loop.SendFileAsync(transport, proc, fallback: false));
                }

                Assert.True(transport.IsReading);

                // Two at once: the second is refused, the first goes on.
                var first = loop.SendFileAsync(transport, stream);
                await Assert.ThrowsAsync<InvalidOperationException>(async () => await loop.SendFileAsync(transport, stream));
                peer.Transport.ResumeReading();
                Assert.Equal(1000, await first);
                transport.WriteEof();
                Assert.True(await peer.Eof);
                AssertSameBytes(file.Content, peer.Received);

                await Assert.ThrowsAsync<InvalidOperationException>(async () => await loop.SendFileAsync(transport, stream));
                transport.Close();
                var closing = await Assert.ThrowsAsync<InvalidOperationException>(async () => await loop.SendFileAsync(transport, stream));
                Assert.Contains("closing", closing.Message);
                await client.Lost;
                closing = await Assert.ThrowsAsync<InvalidOperationException>(async () => await loop.SendFileAsync(transport, stream));
                Assert.Contains("closing", closing.Message);
            }
        });
    }
}

public sealed class EpollSendFileContractTests() : SendFileContractTests(LoopKinds.Epoll);

public sealed class PollSendFileContractTests() : SendFileContractTests(LoopKinds.Poll);

public sealed class ProactorSendFileContractTests() : SendFileContractTests(LoopKinds.Proactor);
