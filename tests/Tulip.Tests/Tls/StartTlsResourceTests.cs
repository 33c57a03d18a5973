using System.Security.Authentication;
using Tulip.Streams;
using Tulip.Tests.Transports;
using static Tulip.Tests.Tls.TlsTestSupport;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Tls;

/// <summary>
/// start_tls that does not finish: a peer that never answers the handshake, the upgrade cancelled by a
/// token or by cancelling the task, or ended by the handshake timeout, and a peer refused by
/// verification. Each fails the call with a clear error, closes the transport, calls nothing more on the
/// application protocol (asyncio's: a connection lost during the handshake is not the application's),
/// and leaves no fd. They count fds, so they run alone (<see cref="NativeFdCollection"/>).
/// </summary>
public abstract class StartTlsResourceTests : LoopSuite
{
    protected StartTlsResourceTests(LoopKind kind) : base(kind)
    {
    }

    private static readonly string[] s_loopback = ["127.0.0.1"];

    /// <summary>A plain server (one connection's protocol recorded) and a client connected to it.</summary>
    private static async LoopTask<(Server Server, RecordingProtocol Client, RecordingProtocol Accepted)> ConnectAsync(BaseEventLoop loop)
    {
        RecordingProtocol? accepted = null;
        var server = await loop.CreateServerAsync(() => accepted = new RecordingProtocol(loop), s_loopback, 0);
        var (_, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
        Assert.True(await Until(loop, () => accepted is not null), "the server never accepted");
        await accepted!.Made;
        return (server, client, accepted);
    }

    /// <summary>
    /// One whole upgrade and close first, so what TLS opens once per process (OpenSSL's configuration,
    /// its random source) is open before the fds are taken; then the fds.
    /// </summary>
    private static async LoopTask<FdSnapshot> WarmUpAsync(BaseEventLoop loop)
    {
        var (server, client, accepted) = await ConnectAsync(loop);
        var serverTls = loop.StartTlsAsync(accepted.Transport, accepted, TestCertificates.ServerOptions());
        var tls = await loop.StartTlsAsync(client.Transport, client, TestCertificates.ClientOptions());
        await serverTls;
        tls.Close();
        await client.Lost;
        await accepted.Lost;
        server.Close();
        await server.WaitClosedAsync();
        await Until(loop, () => false, 5);
        return TakeFds();
    }

    /// <summary>What every failed upgrade must leave: the transport closed on both ends, the protocol told nothing more, no fd.</summary>
    private static async LoopTask AssertUpgradeUndone(BaseEventLoop loop, ITransport plain, RecordingProtocol app, RecordingProtocol peer, FdSnapshot before, Server server)
    {
        Assert.True(plain.IsClosing, "the transport under the failed upgrade is still open");
        await Tasks.WaitFor(peer.Lost, 30); // a TimeoutError here: the peer never lost the connection
        Assert.Empty(app.Errors); // no second ConnectionMade, no data after loss
        Assert.Empty(peer.Errors);
        Assert.False(app.Lost.Done, "ConnectionLost reached the application protocol for a connection lost during the handshake");
        server.Close();
        await server.WaitClosedAsync();
        Assert.True(await Until(loop, before.NoneAdded), before.Describe());
    }

    [Fact]
    public void SlowStartTls_CancelledByToken_ClosesTheTransport_LeavesNoFd()
    {
        TlsRun(Kind, async loop =>
        {
            var before = await WarmUpAsync(loop);
            var (server, client, accepted) = await ConnectAsync(loop);
            var plain = client.Transport;
            using var cts = new CancellationTokenSource();
            var upgrade = loop.StartTlsAsync(plain, client, TestCertificates.ClientOptions(), cancellationToken: cts.Token);
            Assert.True(await accepted.WaitBytes(loop, 1)); // the ClientHello is out; the peer never answers
            Assert.False(upgrade.Done);
            cts.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await upgrade);
            await AssertUpgradeUndone(loop, plain, client, accepted, before, server);
        });
    }

    [Fact]
    public void SlowStartTls_TaskCancelled_ClosesTheTransport_LeavesNoFd()
    {
        TlsRun(Kind, async loop =>
        {
            var before = await WarmUpAsync(loop);
            var (server, client, accepted) = await ConnectAsync(loop);
            var plain = client.Transport;
            var upgrade = loop.CreateTask(async () => await loop.StartTlsAsync(plain, client, TestCertificates.ClientOptions()));
            Assert.True(await accepted.WaitBytes(loop, 1));
            upgrade.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await upgrade);
            await AssertUpgradeUndone(loop, plain, client, accepted, before, server);
        });
    }

    [Fact]
    public void SlowStartTls_HandshakeTimeout_FailsClearly_ClosesTheTransport_LeavesNoFd()
    {
        TlsRun(Kind, async loop =>
        {
            var before = await WarmUpAsync(loop);
            var (server, client, accepted) = await ConnectAsync(loop);
            var plain = client.Transport;
            var ex = await Assert.ThrowsAsync<AuthenticationException>(async () =>
                await loop.StartTlsAsync(plain, client, TestCertificates.ClientOptions(), handshakeTimeout: 0.2));
            Assert.Contains("did not finish within 0.2 seconds", ex.Message);
            Assert.IsAssignableFrom<TimeoutException>(ex.InnerException);
            Assert.True(accepted.ReceivedCount > 0, "the ClientHello was sent");
            await AssertUpgradeUndone(loop, plain, client, accepted, before, server);
        });
    }

    [Fact]
    public void SlowStartTls_ServerSide_ClientNeverSpeaks_TimesOut_LeavesNoFd()
    {
        TlsRun(Kind, async loop =>
        {
            var before = await WarmUpAsync(loop);
            var (server, client, accepted) = await ConnectAsync(loop);
            var plain = accepted.Transport;
            var ex = await Assert.ThrowsAsync<AuthenticationException>(async () =>
                await loop.StartTlsAsync(plain, accepted, TestCertificates.ServerOptions(), handshakeTimeout: 0.2));
            Assert.Contains("did not finish within", ex.Message);
            Assert.Equal(0, client.ReceivedCount); // a TLS server says nothing first
            await AssertUpgradeUndone(loop, plain, accepted, client, before, server);
        });
    }

    [Fact]
    public void StartTls_PeerRefusedByVerification_FailsClearly_ClosesBothEnds_LeavesNoFd()
    {
        TlsRun(Kind, async loop =>
        {
            var before = await WarmUpAsync(loop);
            var (server, client, accepted) = await ConnectAsync(loop);
            var plain = client.Transport;
            var serverTls = loop.StartTlsAsync(accepted.Transport, accepted, TestCertificates.ServerOptions());
            // The server presents localhost's certificate; the client wants example.org.
            var ex = await Assert.ThrowsAsync<AuthenticationException>(async () =>
                await loop.StartTlsAsync(plain, client, TestCertificates.ClientOptions(targetHost: "example.org")));
            Assert.False(string.IsNullOrEmpty(ex.Message));
            // TLS 1.3: the server may have finished its side before the client judged the certificate;
            // then the client's alert ends the connection the server had. Either way it ends.
            bool serverUp;
            try
            {
                await serverTls;
                serverUp = true;
            }
            catch (AuthenticationException)
            {
                serverUp = false;
            }

            Assert.True(accepted.Transport.IsClosing);
            if (serverUp)
            {
                await Tasks.WaitFor(accepted.Lost, 30);
            }
            else
            {
                Assert.False(accepted.Lost.Done);
            }

            Assert.True(plain.IsClosing);
            Assert.Empty(client.Errors);
            Assert.Empty(accepted.Errors);
            server.Close();
            await server.WaitClosedAsync();
            Assert.True(await Until(loop, before.NoneAdded), before.Describe());
        });
    }

    /// <summary>
    /// The stream writer's upgrade, timed out: the call fails clearly, the connection is closed, and the
    /// reader and <see cref="LoopStreamWriter.WaitClosedAsync"/> do not wait forever for a connection that is gone.
    /// </summary>
    [Fact]
    public void Writer_SlowStartTls_TimesOut_ReaderAndWaitClosedEnd_LeavesNoFd()
    {
        TlsRun(Kind, async loop =>
        {
            var before = await WarmUpAsync(loop);
            RecordingProtocol? accepted = null;
            var server = await loop.CreateServerAsync(() => accepted = new RecordingProtocol(loop), s_loopback, 0);
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
            Assert.True(await Until(loop, () => accepted is not null));
            var plain = writer.Transport;
            var ex = await Assert.ThrowsAsync<AuthenticationException>(async () =>
                await writer.StartTlsAsync(TestCertificates.ClientOptions(), handshakeTimeout: 0.2));
            Assert.Contains("did not finish within", ex.Message);
            Assert.True(plain.IsClosing);
            await Tasks.WaitFor(accepted!.Lost, 30);
            // A TimeoutError here: the writer and the reader wait for a loss they are never told of.
            Assert.Same(ex, await Assert.ThrowsAsync<AuthenticationException>(async () => await Tasks.WaitFor(writer.WaitClosedAsync(), 30)));
            Assert.Same(ex, await Assert.ThrowsAsync<AuthenticationException>(async () => await Tasks.WaitFor(reader.ReadAsync(), 30)));
            await writer.DisposeAsync();
            server.Close();
            await server.WaitClosedAsync();
            Assert.True(await Until(loop, before.NoneAdded), before.Describe());
        });
    }

    [Fact]
    public void Writer_SlowStartTls_Cancelled_ReaderAndWaitClosedEnd_LeavesNoFd()
    {
        TlsRun(Kind, async loop =>
        {
            var before = await WarmUpAsync(loop);
            RecordingProtocol? accepted = null;
            var server = await loop.CreateServerAsync(() => accepted = new RecordingProtocol(loop), s_loopback, 0);
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", PortOf(server));
            Assert.True(await Until(loop, () => accepted is not null));
            using var cts = new CancellationTokenSource();
            var upgrade = writer.StartTlsAsync(TestCertificates.ClientOptions(), cancellationToken: cts.Token);
            Assert.True(await accepted!.WaitBytes(loop, 1));
            cts.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await upgrade);
            await Tasks.WaitFor(accepted.Lost, 30);
            var lost = await Assert.ThrowsAsync<IOException>(async () => await Tasks.WaitFor(reader.ReadAsync(), 30));
            Assert.Contains("cancelled", lost.Message);
            await Assert.ThrowsAsync<IOException>(async () => await Tasks.WaitFor(writer.WaitClosedAsync(), 30));
            await writer.DisposeAsync();
            server.Close();
            await server.WaitClosedAsync();
            Assert.True(await Until(loop, before.NoneAdded), before.Describe());
        });
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollStartTlsResourceTests() : StartTlsResourceTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollStartTlsResourceTests() : StartTlsResourceTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorStartTlsResourceTests() : StartTlsResourceTests(LoopKinds.Proactor);

[Collection(NativeFdCollection.Name)]
public sealed class MemoryStartTlsResourceTests() : StartTlsResourceTests(LoopKinds.Memory);
