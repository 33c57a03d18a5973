using System.Net;
using System.Net.Sockets;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Proactor;

/// <summary>
/// A connect the peer resets before .NET reads its result (SO_ERROR, which the read clears): the
/// proactor's connect succeeds, as the selector loop's does when it reads SO_ERROR first, and the
/// reset reaches the protocol as the first read's error. The race itself cannot be forced, so the
/// test makes its outcome: a connected socket whose peer reset it and whose SO_ERROR was read.
/// </summary>
public sealed class ProactorConnectResetTests
{
    /// <summary>A client socket connected to a peer that then reset it, with the pending error already read (as .NET's connect completion reads it).</summary>
    private static Task<(Socket Client, EndPoint Peer)> ResetAndErrorRead()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        using (var accepted = listener.Accept())
        {
            accepted.LingerState = new LingerOption(true, 0);
        }

        // The RST's arrival makes the socket readable (with the error pending): wait for that event, with a hang guard;
        // SO_ERROR then reads ECONNRESET once, and 0 afterwards.
        if (client.Poll(TimeSpan.FromSeconds(30), SelectMode.SelectRead) &&
            (int)client.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)! == (int)SocketError.ConnectionReset)
        {
            return Task.FromResult((client, listener.LocalEndPoint!));
        }

        client.Dispose();
        throw new InvalidOperationException("the peer's reset never arrived");
    }

    [Fact]
    public async Task Without_the_note_the_reset_would_read_as_a_clean_EOF()
    {
        // Why the loop keeps the note: once SO_ERROR is read, the socket reads as if the peer had closed.
        var (client, _) = await ResetAndErrorRead();
        using (client)
        {
            Assert.Equal(0, client.Receive(new byte[16]));
        }
    }

    [Fact]
    public async Task A_connect_reset_before_its_completion_ran_succeeds_and_the_first_read_reports_the_reset()
    {
        var (client, peer) = await ResetAndErrorRead();
        Run(LoopKinds.Proactor, async loop =>
        {
            ((ProactorEventLoop)loop).NoteResetAtConnect(client, peer);
            var (transport, protocol) = await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), null, 0, new ConnectionOptions { Socket = client });
            Assert.True(protocol.Made.Done);
            Assert.NotNull(transport.GetExtraInfo("peername"));
            var ex = Assert.IsType<SocketException>(await protocol.Lost);
            Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
            Assert.False(protocol.Eof.Done);
            Assert.Equal(0, protocol.ReceivedCount);
            Assert.Empty(protocol.Errors);
        });
    }

    [Fact]
    public async Task The_reset_waits_while_reading_is_paused_and_comes_once_resumed()
    {
        var (client, peer) = await ResetAndErrorRead();
        Run(LoopKinds.Proactor, async loop =>
        {
            ((ProactorEventLoop)loop).NoteResetAtConnect(client, peer);
            PeerProtocol? protocol = null;
            var made = loop.CreateConnectionAsync(() => protocol = new PeerProtocol(loop, pauseReading: true), null, 0, new ConnectionOptions { Socket = client });
            var (transport, _) = await made;
            for (int i = 0; i < 10; i++)
            {
                await Tasks.Sleep(0);
            }

            Assert.False(protocol!.Lost.Done);
            transport.ResumeReading();
            var ex = Assert.IsType<SocketException>(await protocol.Lost);
            Assert.Equal(SocketError.ConnectionReset, ex.SocketErrorCode);
            Assert.Empty(protocol.Errors);
        });
    }
}
