using System.Net;
using System.Net.Sockets;
using System.Text;
using Tulip;

namespace Tulip.Tests.Loop;

/// <summary>What the EventLoopGroup suites share: blocking line clients on the test's thread, and the servers' protocols.</summary>
internal static class GroupTestPeers
{
    /// <summary>How long a client waits for an answer: a hang guard only.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    public static Socket Connect(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = (int)Patience.TotalMilliseconds };
        socket.Connect(IPAddress.Loopback, port);
        return socket;
    }

    public static bool CanConnect(int port)
    {
        try
        {
            using var socket = Connect(port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public static string Exchange(Socket socket, string line)
    {
        socket.Send(Encoding.UTF8.GetBytes(line + "\n"));
        return ReadLine(socket);
    }

    public static string ReadLine(Socket socket)
    {
        var line = new List<byte>();
        var one = new byte[1];
        while (socket.Receive(one) == 1 && one[0] != '\n')
        {
            line.Add(one[0]);
        }

        return Encoding.UTF8.GetString(line.ToArray());
    }

    /// <summary>Echoes each line; ends its side when the peer ends its own.</summary>
    public sealed class LineEcho : Protocol
    {
        private readonly List<byte> _line = [];
        private ITransport _transport = null!;

        public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;

        public override void DataReceived(ReadOnlySpan<byte> data)
        {
            foreach (byte b in data)
            {
                _line.Add(b);
                if (b == '\n')
                {
                    _transport.Write(_line.ToArray());
                    _line.Clear();
                }
            }
        }

        public override bool EofReceived() => false;
    }

    /// <summary>Answers a line "flood" with 64 MiB, written regardless of flow control (it stays buffered); echoes anything else.</summary>
    public sealed class Flooder : Protocol
    {
        private ITransport _transport = null!;

        public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;

        public override void DataReceived(ReadOnlySpan<byte> data)
        {
            if (data.SequenceEqual("flood\n"u8))
            {
                _transport.Write(new byte[64 << 20]);
            }
            else
            {
                _transport.Write(data);
            }
        }
    }
}
