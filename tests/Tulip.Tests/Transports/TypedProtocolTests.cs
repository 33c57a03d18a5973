using System.Net;
using System.Text;
using Tulip;
using Tulip.Testing;

namespace Tulip.Tests.Transports;

/// <summary>Protocol&lt;TTransport&gt; and its datagram and subprocess siblings: ConnectionMade typed, no cast.</summary>
public class TypedProtocolTests
{
    private sealed class Echo : Protocol<ITransport>
    {
        public ITransport? Made { get; private set; }

        public override void ConnectionMade(ITransport transport) => Made = transport;

        public override void DataReceived(ReadOnlySpan<byte> data) => Transport.Write(data);
    }

    private sealed class WantsDatagrams : Protocol<IDatagramTransport>
    {
        public bool Called { get; private set; }

        public override void ConnectionMade(IDatagramTransport transport) => Called = true;
    }

    private sealed class Datagrams : DatagramProtocol<IDatagramTransport>
    {
        public IDatagramTransport? Made { get; private set; }

        public override void ConnectionMade(IDatagramTransport transport) => Made = transport;
    }

    [Fact]
    public void TheTypedTransportIsGivenAndKept()
    {
        using var loop = new TestEventLoop();
        var protocol = new Echo();
        var transport = new MemoryTransport(loop, protocol);
        loop.RunUntilIdle();
        Assert.Same(transport, protocol.Made);

        transport.DeliverData("ping");
        loop.RunUntilIdle();
        Assert.Equal("ping", transport.TakeWrittenText());
    }

    [Fact]
    public void AMemoryConnectionMadeByTheLoopIsTyped()
    {
        using var loop = new MemoryEventLoop();
        loop.RunUntilComplete(async () =>
        {
            await using var server = await loop.CreateServerAsync(() => new Echo(), ["typed.example"], 7);
            var (transport, client) = await loop.CreateConnectionAsync(() => new Echo(), "typed.example", 7);
            Assert.Same(transport, client.Made);
            transport.Close();
        });
    }

    [Fact]
    public void AWrongTransportIsRefusedNamingBothTypes()
    {
        using var loop = new TestEventLoop();
        var protocol = new WantsDatagrams();
        var transport = new MemoryTransport(loop, new RecordingProtocol(loop));
        var ex = Assert.Throws<ArgumentException>(() => ((IBaseProtocol)protocol).ConnectionMade(transport));
        Assert.Contains(nameof(WantsDatagrams), ex.Message);
        Assert.Contains(nameof(IDatagramTransport), ex.Message);
        Assert.Contains(nameof(MemoryTransport), ex.Message);
        Assert.Equal("transport", ex.ParamName);
        Assert.False(protocol.Called);
        Assert.Throws<ArgumentNullException>(() => protocol.ConnectionMade((IBaseTransport)null!));
        loop.RunUntilIdle();
        loop.ClearUnhandledErrors();
    }

    [Fact]
    public void TransportBeforeTheConnection_SaysSo()
    {
        var protocol = new Echo();
        var ex = Assert.Throws<InvalidOperationException>(() => protocol.DataReceived("x"u8));
        Assert.Contains("ConnectionMade", ex.Message);
    }

    [Fact]
    public void ADatagramEndpointIsTyped()
    {
        using var loop = new SelectorEventLoop();
        loop.RunUntilComplete(async () =>
        {
            var (transport, protocol) = await loop.CreateDatagramEndpointAsync(() => new Datagrams(), new IPEndPoint(IPAddress.Loopback, 0), null);
            Assert.Same(transport, protocol.Made);
            await transport.DisposeAsync();
        });
    }

    [Fact]
    public void AMismatchOnARealLoopFailsTheCreatingCall()
    {
        using var loop = new SelectorEventLoop();
        var errors = new List<ExceptionContext>();
        loop.SetExceptionHandler((_, context) => errors.Add(context));
        loop.RunUntilComplete(async () =>
        {
            var ex = await Assert.ThrowsAsync<ArgumentException>(async () =>
                await loop.CreateDatagramEndpointAsync(() => new WantsStream(), new IPEndPoint(IPAddress.Loopback, 0), null));
            Assert.Contains(nameof(ITransport), ex.Message);
        });
        Assert.Contains(errors, e => e.Exception is ArgumentException);
    }

    private sealed class WantsStream : DatagramProtocol<ITransport>
    {
    }
}
