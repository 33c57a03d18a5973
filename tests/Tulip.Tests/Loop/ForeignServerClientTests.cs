using System.Runtime.CompilerServices;
using Tulip;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Loop;

/// <summary>
/// The base loop's server keeps the library's transports in a list threaded through them, and any
/// other transport (one a loop from outside the assembly makes in its <c>StartAccepting</c>) in a
/// set: those are counted, closed by <see cref="Server.CloseClients"/> and waited for by
/// <see cref="Server.WaitClosedAsync"/> the same way.
/// </summary>
/// <remarks>
/// Names <see cref="SelectorEventLoop"/> on purpose: it derives from it as an outside loop would
/// from <see cref="BaseEventLoop"/>, filling <c>StartAccepting</c> with transports of its own type.
/// </remarks>
[Collection(NativeFdCollection.Name)]
public sealed class ForeignServerClientTests
{
    [Theory]
    [InlineData("epoll")]
    [InlineData("poll")]
    public void ClientsOfAnotherType_AreCountedClosedAndWaitedFor(string selector)
    {
        var kind = new LoopKind("wrapping-" + selector, _ => new WrappingLoop(selector), readiness: true);
        Run(kind, loop => Body((WrappingLoop)loop));
    }

    private static async LoopTask Body(WrappingLoop loop)
    {
        var made = new List<RecordingProtocol>();
        var server = await loop.CreateServerAsync(() =>
        {
            var p = new RecordingProtocol(loop);
            made.Add(p);
            return p;
        }, ["127.0.0.1"], 0);
        var clients = new List<ITransport>();
        for (int i = 0; i < 3; i++)
        {
            var (client, _) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            clients.Add(client);
            Assert.True(await Eventually(() => made.Count == i + 1));
            await made[i].Made;
        }

        Assert.Equal(3, loop.Wrapped);
        Assert.Contains("clients=3", server.ToString());
        clients[1].Close();
        Assert.Null(await made[1].Lost);
        Assert.True(await Eventually(() => server.ToString()!.Contains("clients=2")));

        server.Close();
        Assert.Contains("clients=2", server.ToString());
        server.CloseClients();
        Assert.Null(await made[0].Lost);
        Assert.Null(await made[2].Lost);
        await server.WaitClosedAsync();
        Assert.Contains("clients=0", server.ToString());
        clients[0].Close();
        clients[2].Close();
    }

    /// <summary>A selector loop whose server connections are handed to the server in a wrapper of another type.</summary>
    private sealed class WrappingLoop(string selector) : SelectorEventLoop(selector)
    {
        private readonly ConditionalWeakTable<ITransport, Wrapper> _wrappers = new();

        public int Wrapped { get; private set; }

        protected override IDisposable StartAccepting(System.Net.Sockets.Socket listener, ServerOptions options, Func<IBaseProtocol> protocolFactory,
            Action<ITransport> accepted, Action<ITransport> connectionLost) =>
            base.StartAccepting(listener, options, protocolFactory, t => accepted(WrapperOf(t)), t => connectionLost(WrapperOf(t)));

        private Wrapper WrapperOf(ITransport transport) => _wrappers.GetValue(transport, t =>
        {
            Wrapped++;
            return new Wrapper(t);
        });
    }

    /// <summary>An <see cref="ITransport"/> of a type the library does not know, over a real one.</summary>
    private sealed class Wrapper(ITransport inner) : ITransport
    {
        public bool IsClosing => inner.IsClosing;
        public bool IsReading => inner.IsReading;
        public bool CanWriteEof => inner.CanWriteEof;
        public object? GetExtraInfo(string name, object? defaultValue = null) => inner.GetExtraInfo(name, defaultValue);
        public void Close() => inner.Close();
        public void Abort() => inner.Abort();
        public void SetProtocol(IBaseProtocol protocol) => inner.SetProtocol(protocol);
        public IBaseProtocol GetProtocol() => inner.GetProtocol();
        public void PauseReading() => inner.PauseReading();
        public void ResumeReading() => inner.ResumeReading();
        public void Write(ReadOnlySpan<byte> data) => inner.Write(data);
        public void WriteLines(IEnumerable<ReadOnlyMemory<byte>> data) => inner.WriteLines(data);
        public void WriteEof() => inner.WriteEof();
        public int GetWriteBufferSize() => inner.GetWriteBufferSize();
        public (int Low, int High) GetWriteBufferLimits() => inner.GetWriteBufferLimits();
        public void SetWriteBufferLimits(int? high = null, int? low = null) => inner.SetWriteBufferLimits(high, low);
    }
}
