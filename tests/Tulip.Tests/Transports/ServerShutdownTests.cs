using System.Net.Sockets;
using Tulip;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// Ending a server while clients stay connected: cancelling ServeForeverAsync stops serving at once
/// (before the fix it waited for every client, so one idle client kept it from returning), and the
/// caller then chooses how to end the connections, within a limit.
/// </summary>
public abstract class ServerShutdownTests : LoopSuite
{
    private static readonly string[] s_loopback = ["127.0.0.1"];

    protected ServerShutdownTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public void ServeForever_CancelledByToken_WithAnIdleClient_ReturnsAtOnce()
    {
        Run(Kind, async loop =>
        {
            var accepted = new List<RecordingProtocol>();
            var server = await loop.CreateServerAsync(() => Track(accepted, new RecordingProtocol(loop)), s_loopback, 0);
            using var cts = new CancellationTokenSource();
            var serving = server.ServeForeverAsync(cts.Token);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            Assert.True(await Eventually(() => accepted.Count == 1 && accepted[0].Made.Done), "the server never accepted the client");

            cts.Cancel();
            // The event itself: the task ends; a generous bound only keeps a regression from hanging the run.
            var (done, _) = await Tasks.Wait([serving], timeout: 30);
            Assert.True(done.Count == 1, "ServeForeverAsync did not return while an idle client stayed connected");
            Assert.True(serving.Cancelled);
            Assert.False(server.IsServing);
            Assert.Empty(server.Sockets);

            // The client is the caller's to end: still connected on both sides.
            Assert.False(client.Lost.Done);
            Assert.False(accepted[0].Lost.Done);
            Assert.False(server.WaitClosedAsync().Done);

            Assert.True(await server.ShutdownAsync(30), "an idle client should end by itself when closed");
            Assert.Null(await accepted[0].Lost);
            Assert.True(await client.Eof);
            await client.Lost;
            Assert.True(transport.IsClosing);
            Assert.Empty(client.Errors);
            Assert.Empty(accepted[0].Errors);
        });
    }

    [Fact]
    public void ServeForever_TaskCancelled_WithAnIdleClient_ReturnsAtOnce()
    {
        Run(Kind, async loop =>
        {
            var accepted = new List<RecordingProtocol>();
            var server = await loop.CreateServerAsync(() => Track(accepted, new RecordingProtocol(loop)), s_loopback, 0);
            var serving = server.ServeForeverAsync();
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            Assert.True(await Eventually(() => accepted.Count == 1 && accepted[0].Made.Done), "the server never accepted the client");

            serving.Cancel();
            var (done, _) = await Tasks.Wait([serving], timeout: 30);
            Assert.True(done.Count == 1, "ServeForeverAsync did not return while an idle client stayed connected");
            Assert.True(serving.Cancelled);
            Assert.False(client.Lost.Done);

            // The caller may also wait with its own limit, and then abort.
            var (closed, _) = await Tasks.Wait([server.WaitClosedAsync()], timeout: 0.01);
            Assert.Empty(closed);
            server.AbortClients();
            await server.WaitClosedAsync();
            Assert.Null(await accepted[0].Lost);
            await client.Lost;
            transport.Close();
        });
    }

    [Fact]
    public void Shutdown_AbortsAClientThatWillNotTakeItsData()
    {
        Run(Kind, async loop =>
        {
            var accepted = new List<RecordingProtocol>();
            var server = await loop.CreateServerAsync(() => Track(accepted, new RecordingProtocol(loop)), s_loopback, 0);
            // A peer that never reads: the server's writes stay buffered, so a graceful close cannot finish.
            var (transport, client) = await loop.CreateConnectionAsync(() => new PeerProtocol(loop, pauseReading: true), "127.0.0.1", PortOf(server));
            Assert.True(await Eventually(() => accepted.Count == 1 && accepted[0].Made.Done), "the server never accepted the client");
            var serverTransport = accepted[0].Transport;
            // Buffered well past what the peer's window can still open by (a little room appears as
            // TCP's window grows, and a loop whose send is armed takes it at once): 8 MiB more than the
            // kernel holds cannot drain, while a few KiB could, and the close would then end by itself.
            var chunk = new byte[1 << 20];
            while (serverTransport.GetWriteBufferSize() < 8 << 20)
            {
                serverTransport.Write(chunk);
            }

            Assert.False(await server.ShutdownAsync(0.05), "the connection cannot have ended by itself: its peer reads nothing");
            Assert.True(accepted[0].Lost.Done);
            Assert.True(server.WaitClosedAsync().Done);
            transport.Abort();
            await client.Lost;
        });
    }

    [Fact]
    public void Shutdown_RejectsANegativeTimeout()
    {
        Run(Kind, async loop =>
        {
            var server = await loop.CreateServerAsync(static () => new EchoProtocol(), s_loopback, 0);
            var ex = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await server.ShutdownAsync(-1));
            Assert.Equal("timeout", ex.ParamName);
            Assert.True(server.IsServing);
            await server.ShutdownAsync(double.PositiveInfinity);
            Assert.False(server.IsServing);
        });
    }

    [Fact]
    public void Dispose_WithAnIdleClient_DoesNotWaitForIt()
    {
        Run(Kind, async loop =>
        {
            var accepted = new List<RecordingProtocol>();
            var server = await loop.CreateServerAsync(() => Track(accepted, new RecordingProtocol(loop)), s_loopback, 0);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            Assert.True(await Eventually(() => accepted.Count == 1 && accepted[0].Made.Done), "the server never accepted the client");

            var disposing = loop.CreateTask(async () => await server.DisposeAsync());
            var (done, _) = await Tasks.Wait([disposing], timeout: 30);
            Assert.True(done.Count == 1, "DisposeAsync waited on an idle client");
            Assert.Null(await accepted[0].Lost);
            var lost = await client.Lost;
            Assert.True(lost is null or SocketException, $"the client saw {lost}");
            transport.Close();
        });
    }

    private static RecordingProtocol Track(List<RecordingProtocol> list, RecordingProtocol protocol)
    {
        list.Add(protocol);
        return protocol;
    }
}

public sealed class EpollServerShutdownTests() : ServerShutdownTests(LoopKinds.Epoll);

public sealed class PollServerShutdownTests() : ServerShutdownTests(LoopKinds.Poll);

public sealed class ProactorServerShutdownTests() : ServerShutdownTests(LoopKinds.Proactor);
