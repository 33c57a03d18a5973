using System.Net;
using System.Net.Sockets;
using Tulip;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// IAsyncDisposable on transports, on every loop: disposing closes (buffered data is still sent) and
/// completes once ConnectionLost has run; a wait the peer holds up can be cancelled.
/// </summary>
public abstract partial class TransportDisposeAsyncTests : LoopSuite
{
    protected TransportDisposeAsyncTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public void AwaitUsingAStreamTransport_FlushesThenCompletesAfterConnectionLost()
    {
        Run(Kind, async loop =>
        {
            RecordingProtocol? serverSide = null;
            await using var server = await loop.CreateServerAsync(() => serverSide = new RecordingProtocol(loop), ["127.0.0.1"], 0);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            var data = Pattern(1 << 20);
            await using (transport)
            {
                transport.Write(data);
            }

            Assert.True(client.Lost.Done, "DisposeAsync returned before ConnectionLost ran");
            Assert.Null(client.Lost.Result());
            Assert.True(transport.IsClosing);
            Assert.Null(await serverSide!.Lost);
            Assert.True(data.AsSpan().SequenceEqual(serverSide.Received), "the buffered data was sent before the close");

            // Again, on a closed transport: nothing to wait for.
            await transport.DisposeAsync();
        });
    }

    [Fact]
    public void DisposingADatagramTransport_CompletesAfterConnectionLost()
    {
        Run(Kind, async loop =>
        {
            var (transport, protocol) = await loop.CreateDatagramEndpointAsync(() => new RecordingDatagramProtocol(loop), new IPEndPoint(IPAddress.Loopback, 0), null);
            IAsyncDisposable disposable = transport;
            await disposable.DisposeAsync();
            Assert.True(protocol.Lost.Done);
            Assert.Null(protocol.Lost.Result());
        });
    }

    [Fact]
    public void AWaitThePeerHoldsUp_IsCancelledWithTheTask_AndAbortEndsIt()
    {
        Run(Kind, async loop =>
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            listener.Blocking = false;
            var accepting = loop.SockAcceptAsync(listener);
            var (transport, client) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port);
            using var peer = await accepting; // never reads
            transport.Write(new byte[64 << 20]);
            Assert.True(transport.GetWriteBufferSize() > 0);

            var disposer = await StartDisposing(loop, transport);
            Assert.False(client.Lost.Done);
            disposer.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await disposer);
            Assert.False(client.Lost.Done, "cancelling the wait does not end the connection");

            transport.Abort();
            await client.Lost;
        });
    }
}

public sealed class EpollTransportDisposeAsyncTests() : TransportDisposeAsyncTests(LoopKinds.Epoll);

public sealed class PollTransportDisposeAsyncTests() : TransportDisposeAsyncTests(LoopKinds.Poll);

public sealed class ProactorTransportDisposeAsyncTests() : TransportDisposeAsyncTests(LoopKinds.Proactor);
