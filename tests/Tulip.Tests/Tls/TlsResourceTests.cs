using System.Security.Authentication;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Tls;

/// <summary>
/// TLS leaves nothing behind: after connections that succeed, fail verification, time out in the
/// handshake, are truncated or hit the shutdown timeout, the process holds no fd it did not hold
/// before and the loop no task beyond the test's own. They run alone (<see cref="NativeFdCollection"/>)
/// so no other test's fds disturb the counts.
/// </summary>
public abstract class TlsResourceTests : LoopSuite
{
    protected TlsResourceTests(LoopKind kind) : base(kind)
    {
    }

    private static readonly string[] s_loopback = ["127.0.0.1"];

    [Fact]
    public void EveryWayATlsConnectionEnds_LeavesNoFdAndNoTask()
    {
        Run(Kind, async loop =>
        {
            var taps = new List<TlsTap>();
            await using var good = await loop.CreateServerAsync(() =>
            {
                var tap = new TlsTap(new SslProtocol(loop, new EchoProtocol(), TestCertificates.ServerOptions()));
                taps.Add(tap);
                return tap;
            }, s_loopback, 0);
            await using var selfSigned = await loop.CreateServerAsync(static () => new EchoProtocol(), s_loopback, 0,
                new ServerOptions { Ssl = TestCertificates.ServerOptions(TestCertificates.SelfSigned) });
            await using var silent = await loop.CreateServerAsync(() => new RecordingProtocol(loop), s_loopback, 0);
            var options = new ConnectionOptions { Ssl = TestCertificates.ClientOptions(), SslHandshakeTimeout = 0.3, SslShutdownTimeout = 0.3 };

            // Warm up what .NET opens lazily on a first TLS connection, then count.
            await OneClean(loop, good, options);
            await Settle(good);
            var before = TakeFds();
            int tasksBefore = Tasks.AllTasks().Count;

            for (int round = 0; round < 3; round++)
            {
                await OneClean(loop, good, options);
                await Assert.ThrowsAsync<AuthenticationException>(async () =>
                    await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(selfSigned), options));
                await Assert.ThrowsAsync<AuthenticationException>(async () =>
                    await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(silent), options));

                // Truncated: the server's TCP stream ends without close_notify.
                var (t1, c1) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(good), options);
                t1.Write("x"u8);
                await c1.WaitBytes(loop, 1);
                taps[^1].Transport!.Beneath.Close();
                Assert.IsType<SslTruncationException>(await c1.Lost);

                // Shutdown timeout: the server never sees our close_notify.
                var (t2, c2) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(good), options);
                t2.Write("y"u8);
                await c2.WaitBytes(loop, 1);
                taps[^1].OnRead = static _ => [];
                t2.Close();
                Assert.IsType<TimeoutError>(await c2.Lost);
            }

            await Settle(good);
            Assert.True(await Eventually(() => Kind.ServerClients(selfSigned) == 0), "the server kept a refused connection");
            Assert.True(await Eventually(before.NoneAdded), "fds added: " + string.Join(", ", before.Added()));
            Assert.Equal(tasksBefore, Tasks.AllTasks().Count);
        }, errors: new List<ExceptionContext>());
    }

    private static async LoopTask OneClean(BaseEventLoop loop, Server server, ConnectionOptions options)
    {
        var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server), options);
        transport.Write("ping"u8);
        await client.WaitBytes(loop, 4);
        transport.Close();
        Assert.Null(await client.Lost);
    }

    private async LoopTask Settle(Server server) =>
        Assert.True(await Eventually(() => Kind.ServerClients(server) == 0), "the server kept a connection");
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollTlsResourceTests() : TlsResourceTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollTlsResourceTests() : TlsResourceTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorTlsResourceTests() : TlsResourceTests(LoopKinds.Proactor);
