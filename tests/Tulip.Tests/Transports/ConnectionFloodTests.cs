using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Tulip;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// "Accepting keeps up under a connection flood" (issue 3): thousands of clients connect as fast as
/// one thread can make them while the loop accepts, and every one is accepted and served. Nothing
/// here waits for time to pass: the clients block until the loop has served them, and the test
/// waits for the server to see every connection gone.
/// </summary>
public abstract class ConnectionFloodTests : LoopSuite
{
    private const int Clients = 5000;

    protected ConnectionFloodTests(LoopKind kind) : base(kind)
    {
    }

    private static readonly string[] s_loopback = ["127.0.0.1"];

    [Fact]
    public void AcceptingKeepsUpUnderAConnectionFlood()
    {
        // Two fds per client in this process (its socket and the accepted one), and room for the rest.
        const ulong needed = 2 * Clients + 2000;
        Assert.Equal(0, Interop.GetRLimit(Interop.RLIMIT_NOFILE, out var saved));
        Assert.True(saved.Maximum >= needed, $"RLIMIT_NOFILE's hard limit {saved.Maximum} is below the {needed} fds this test needs");
        if (saved.Current < needed)
        {
            Assert.Equal(0, Interop.SetRLimit(Interop.RLIMIT_NOFILE, new Interop.RLimit { Current = needed, Maximum = saved.Maximum }));
        }

        try
        {
            Run(Kind, async loop =>
            {
                int accepted = 0;
                var server = await loop.CreateServerAsync(() => new CountingEcho(() => accepted++), s_loopback, 0,
                    new ServerOptions { Backlog = 4096 });
                var endPoint = server.Sockets[0].LocalEndPoint!;

                // The flood: one thread connects every client back to back and sends its number; only then
                // reads the echoes, so all the connections are open at once.
                var flood = Task.Run(() => Flood(endPoint));
                int served = await flood;
                Assert.Equal(Clients, served);
                Assert.Equal(Clients, accepted);

                // The clients have closed: every server transport sees EOF and goes away.
                server.Close();
                await server.WaitClosedAsync();
                Assert.Equal(0, Kind.ServerClients(server));
            }, timeoutSeconds: 600);
        }
        finally
        {
            Interop.SetRLimit(Interop.RLIMIT_NOFILE, saved);
        }
    }

    /// <summary>Connects <see cref="Clients"/> blocking clients, each sending its number; returns how many got it echoed.</summary>
    private static int Flood(EndPoint endPoint)
    {
        var sockets = new List<Socket>(Clients);
        try
        {
            var id = new byte[4];
            for (int i = 0; i < Clients; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
                {
                    // A safety net only: the echo comes when the loop gets to it, however long that takes.
                    ReceiveTimeout = 120_000,
                };
                sockets.Add(socket);
                socket.Connect(endPoint);
                BinaryPrimitives.WriteInt32LittleEndian(id, i);
                socket.Send(id);
            }

            int served = 0;
            var echo = new byte[4];
            for (int i = 0; i < Clients; i++)
            {
                int got = 0;
                while (got < 4)
                {
                    int n = sockets[i].Receive(echo, got, 4 - got, SocketFlags.None);
                    Assert.True(n > 0, $"client {i}: the server closed before echoing");
                    got += n;
                }

                Assert.Equal(i, BinaryPrimitives.ReadInt32LittleEndian(echo));
                served++;
            }

            return served;
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    private sealed class CountingEcho(Action onMade) : Protocol
    {
        private ITransport _transport = null!;

        public override void ConnectionMade(IBaseTransport transport)
        {
            _transport = (ITransport)transport;
            onMade();
        }

        public override void DataReceived(ReadOnlySpan<byte> data) => _transport.Write(data);

        public override bool EofReceived() => false;
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollConnectionFloodTests() : ConnectionFloodTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollConnectionFloodTests() : ConnectionFloodTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorConnectionFloodTests() : ConnectionFloodTests(LoopKinds.Proactor);
