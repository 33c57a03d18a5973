using System;
using System.Globalization;
using System.Text;
using Tulip;

namespace Tulip.Samples.EchoClient;

/// <summary>
/// Sends a line to an echo server, prints what comes back, and half-closes.
/// Usage: EchoClient PORT [message] [host]. The loop kind is the one TULIP_LOOP names (epoll when unset).
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length is < 1 or > 3 || !int.TryParse(args[0], NumberStyles.None, CultureInfo.InvariantCulture, out int port))
        {
            Console.Error.WriteLine("usage: EchoClient PORT [message] [host]");
            return 2;
        }

        string message = args.Length > 1 ? args[1] : "hello, tulip";
        string host = args.Length > 2 ? args[2] : "127.0.0.1";
        string echoed = EventLoop.Run(async () => // on the loop kind TULIP_LOOP names
        {
            var loop = EventLoop.GetRunningLoop();
            var (transport, client) = await loop.CreateConnectionAsync(() => new EchoClientProtocol(loop), host, port);
            transport.Write(Encoding.UTF8.GetBytes(message));
            transport.WriteEof();
            return await client.Done;
        });
        Console.WriteLine(echoed);
        return echoed == message ? 0 : 1;
    }
}

/// <summary>Collects what the server sends until it closes; <see cref="Done"/> gives it as text.</summary>
internal sealed class EchoClientProtocol : Protocol
{
    private readonly StringBuilder _received = new();
    private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();

    public EchoClientProtocol(IEventLoop loop) => Done = loop.CreateFuture<string>();

    public Future<string> Done { get; }

    public override void DataReceived(ReadOnlySpan<byte> data)
    {
        Span<char> chars = stackalloc char[Encoding.UTF8.GetMaxCharCount(Math.Min(data.Length, 1024))];
        while (!data.IsEmpty)
        {
            var chunk = data[..Math.Min(data.Length, 1024)];
            int n = _decoder.GetChars(chunk, chars, flush: false);
            _received.Append(chars[..n]);
            data = data[chunk.Length..];
        }
    }

    public override void ConnectionLost(Exception? exception)
    {
        if (exception is null)
        {
            Done.TrySetResult(_received.ToString());
        }
        else
        {
            Done.TrySetException(exception);
        }
    }
}
