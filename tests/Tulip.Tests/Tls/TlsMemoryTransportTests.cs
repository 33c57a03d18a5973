using System.Security.Authentication;
using Tulip.Testing;

namespace Tulip.Tests.Tls;

/// <summary>
/// TLS protocols tested without sockets, step by step on the virtual clock: <see cref="ConnectedPair"/>
/// and <see cref="MemoryTransport"/> on a <see cref="TestEventLoop"/> (1-byte chunks, the handshake
/// timeout reached by <see cref="TestEventLoop.Advance(double)"/>), and <see cref="MemoryEventLoop"/>
/// servers and connections with Ssl. Handshakes run on the loop thread, so each RunUntilIdle is a whole,
/// deterministic step.
/// </summary>
public sealed class TlsMemoryTransportTests
{
    [Fact]
    public void ConnectedPair_OneByteChunks_HandshakeAndExchange_ByteExact()
    {
        using var loop = new TestEventLoop();
        var client = new RecordingProtocol();
        var server = new RecordingProtocol();
        var waiter = loop.CreateFuture<VoidResult>();
        var clientTls = new SslProtocol(loop, client, TestCertificates.ClientOptions(), waiter);
        var pair = new ConnectedPair(loop, clientTls, new SslProtocol(loop, server, TestCertificates.ServerOptions())) { Chunking = Chunking.OneByte };
        loop.RunUntilIdle();
        waiter.Result();
        var payload = Transports.TestUtil.Pattern(20_000);
        client.Transport!.Write(payload);
        loop.RunUntilIdle();
        Assert.Equal(payload, server.TakeReceived());
        server.Transport!.Write(payload.AsSpan(0, 777));
        loop.RunUntilIdle();
        Assert.Equal(payload.AsSpan(0, 777).ToArray(), client.TakeReceived());
        server.Transport.Close();
        loop.RunUntilIdle();
        Assert.True(client.GotEof);
        Assert.True(client.IsConnectionLost && server.IsConnectionLost);
        Assert.Null(client.LostException);
        Assert.Null(server.LostException);
        Assert.True(pair.ClientTransport.IsClosed && pair.ServerTransport.IsClosed);
        Assert.Empty(loop.UnhandledErrors);
    }

    [Fact]
    public void ConnectedPair_PeerNeverAnswers_HandshakeTimesOutOnTheVirtualClock()
    {
        using var loop = new TestEventLoop();
        var client = new RecordingProtocol();
        var silent = new RecordingProtocol();
        var waiter = loop.CreateFuture<VoidResult>();
        var pair = new ConnectedPair(loop, new SslProtocol(loop, client, TestCertificates.ClientOptions(), waiter, handshakeTimeout: 10), silent);
        loop.RunUntilIdle();
        Assert.NotEmpty(silent.Received); // the ClientHello
        loop.Advance(9.9);
        Assert.False(waiter.Done);
        loop.Advance(0.2);
        Assert.True(waiter.Done);
        var ex = Assert.Throws<AuthenticationException>(() => waiter.Result());
        Assert.Contains("did not finish within 10 seconds", ex.Message);
        Assert.True(pair.ClientTransport.WasAborted);
        Assert.True(pair.ClientTransport.IsClosed);
        Assert.True(silent.IsConnectionLost);
        Assert.Empty(client.Events); // the application protocol heard nothing
        Assert.Empty(loop.UnhandledErrors);
    }

    [Fact]
    public void ConnectedPair_StartTls_TimesOutOnTheVirtualClock_TransportClosed()
    {
        using var loop = new TestEventLoop();
        var client = new RecordingProtocol();
        var silent = new RecordingProtocol();
        var pair = new ConnectedPair(loop, client, silent);
        loop.RunUntilIdle();
        var upgrade = loop.CreateTask(async () => await loop.StartTlsAsync(client.Transport!, client, TestCertificates.ClientOptions(), handshakeTimeout: 5));
        loop.RunUntilIdle();
        Assert.False(upgrade.Done);
        Assert.NotEmpty(silent.Received);
        loop.Advance(5.1);
        Assert.True(upgrade.Done);
        Assert.IsType<AuthenticationException>(upgrade.Exception());
        Assert.True(pair.ClientTransport.IsClosed);
        Assert.True(silent.IsConnectionLost);
        Assert.Equal(["made"], client.Events); // ConnectionMade once, from the plain pair; nothing after
        Assert.Empty(loop.UnhandledErrors);
    }

    [Fact]
    public void MemoryTransport_ByHand_FeedsTheTlsLayer_AndTakesWhatItWrites()
    {
        // Two MemoryTransports joined by the test itself, moving bytes with TakeWritten/DeliverData.
        using var loop = new TestEventLoop();
        var client = new RecordingProtocol();
        var server = new RecordingProtocol();
        var waiter = loop.CreateFuture<VoidResult>();
        var c = new MemoryTransport(loop, new SslProtocol(loop, client, TestCertificates.ClientOptions(), waiter));
        var s = new MemoryTransport(loop, new SslProtocol(loop, server, TestCertificates.ServerOptions()));
        loop.RunUntilIdle();
        for (int i = 0; i < 20 && !waiter.Done; i++)
        {
            var toServer = c.TakeWritten();
            if (toServer.Length > 0) s.DeliverData(toServer);
            loop.RunUntilIdle();
            var toClient = s.TakeWritten();
            if (toClient.Length > 0) c.DeliverData(toClient);
            loop.RunUntilIdle();
        }

        waiter.Result();
        client.Transport!.Write("by hand"u8);
        loop.RunUntilIdle();
        var record = c.TakeWritten();
        Assert.DoesNotContain("by hand", System.Text.Encoding.ASCII.GetString(record)); // encrypted on the wire
        s.DeliverData(record);
        loop.RunUntilIdle();
        Assert.Equal("by hand", server.TakeReceivedText());
        c.DeliverEof(); // the wire ends with no close_notify
        loop.RunUntilIdle();
        Assert.True(client.IsConnectionLost);
        Assert.IsType<SslTruncationException>(client.LostException);
        Assert.False(client.GotEof);
    }

    [Fact]
    public void MemoryEventLoop_SslServerAndConnection_OneByteChunks()
    {
        using var loop = new MemoryEventLoop { Chunking = Chunking.OneByte };
        loop.RunUntilComplete(async () =>
        {
            Tulip.Tests.Transports.RecordingProtocol? accepted = null;
            var server = await loop.CreateServerAsync(() => accepted = new Tulip.Tests.Transports.RecordingProtocol(loop), ["localhost"], 443,
                new ServerOptions { Ssl = TestCertificates.ServerOptions() });
            var (t, p) = await loop.CreateConnectionAsync(() => new Tulip.Tests.Transports.RecordingProtocol(loop), "localhost", 443,
                new ConnectionOptions { Ssl = TestCertificates.ClientOptions(targetHost: null) });
            Assert.NotNull(t.GetExtraInfo("peercert"));
            t.Write("ping over one-byte chunks"u8);
            Assert.True(await accepted!.WaitBytes(loop, 25));
            accepted.Transport.Write("pong"u8);
            Assert.True(await p.WaitBytes(loop, 4));
            t.Close();
            Assert.Null(await p.Lost);
            Assert.Null(await accepted.Lost);
            Assert.Empty(p.Errors);
            Assert.Empty(accepted.Errors);
            server.Close();
            await server.WaitClosedAsync();
            Assert.All(loop.Connections, pair => Assert.True(pair.ClientTransport.IsClosed && pair.ServerTransport.IsClosed));
        });
        Assert.Empty(loop.UnhandledErrors);
    }

    [Fact]
    public void SslProtocol_BadTransports_GiveClearExceptions()
    {
        using var loop = new TestEventLoop();
        var tls = new SslProtocol(loop, new RecordingProtocol(), TestCertificates.ClientOptions());
        var notStream = Assert.Throws<InvalidOperationException>(() => tls.ConnectionMade(new DatagramOnly()));
        Assert.Contains("stream transport", notStream.Message);
        Assert.Throws<ArgumentNullException>(() => tls.ConnectionMade(null!));
        var pair = new ConnectedPair(loop, tls, new RecordingProtocol());
        loop.RunUntilIdle();
        var twice = Assert.Throws<InvalidOperationException>(() => tls.ConnectionMade(pair.ClientTransport));
        Assert.Contains("connected already", twice.Message);
        Assert.Throws<ArgumentNullException>(() => new SslProtocol(loop, new RecordingProtocol(), (System.Net.Security.SslClientAuthenticationOptions)null!));
        Assert.Throws<ArgumentNullException>(() => new SslProtocol(null!, new RecordingProtocol(), TestCertificates.ServerOptions()));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SslProtocol(loop, new RecordingProtocol(), TestCertificates.ServerOptions(), handshakeTimeout: 0));
        pair.ClientTransport.Abort();
        loop.RunUntilIdle();
    }

    /// <summary>A transport that is not a stream transport.</summary>
    private sealed class DatagramOnly : IBaseTransport
    {
        public object? GetExtraInfo(string name, object? defaultValue = null) => defaultValue;

        public bool IsClosing => false;

        public void Close()
        {
        }

        public void SetProtocol(IBaseProtocol protocol)
        {
        }

        public IBaseProtocol GetProtocol() => throw new NotSupportedException();
    }
}
