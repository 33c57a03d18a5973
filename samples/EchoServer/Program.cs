using System;
using System.Globalization;
using Tulip;

namespace Tulip.Samples.EchoServer;

/// <summary>
/// A TCP echo server on 127.0.0.1:PORT: the server half of the benchmark contract in
/// scripts/echo-server (see ../shared/bench/README.md). Usage: EchoServer PORT [protocol|buffered|streams] [epoll|poll|proactor].
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length is < 1 or > 3 || !int.TryParse(args[0], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            Console.Error.WriteLine("usage: EchoServer PORT [protocol|buffered|streams] [epoll|poll|proactor]");
            return 2;
        }

        string mode = args.Length > 1 ? args[1] : "protocol";
        string backend = args.Length > 2 ? args[2] : "epoll";
        Func<IBaseProtocol> factory;
        switch (mode)
        {
            case "protocol":
                factory = static () => new EchoProtocol();
                break;
            case "buffered":
                factory = static () => new BufferedEchoProtocol();
                break;
            case "streams":
                Console.Error.WriteLine("echo-server: mode 'streams' is not implemented yet (the streams API is a later issue); use 'protocol' or 'buffered'.");
                return 2;
            default:
                Console.Error.WriteLine($"echo-server: unknown mode '{mode}'; expected protocol, buffered or streams.");
                return 2;
        }

        switch (backend)
        {
            case "epoll":
            case "poll":
                break;
            case "proactor":
                Console.Error.WriteLine("echo-server: backend 'proactor' is not implemented yet; use 'epoll' or 'poll'.");
                return 2;
            default:
                Console.Error.WriteLine($"echo-server: unknown backend '{backend}'; expected epoll, poll or proactor.");
                return 2;
        }

        using var loop = new SelectorEventLoop(backend);
        loop.RunUntilComplete(async () =>
        {
            var server = await loop.CreateServerAsync(factory, ["127.0.0.1"], port);
            Console.Error.WriteLine($"echo-server: serving on 127.0.0.1:{port} ({mode}, {loop.SelectorName})");
            await server.ServeForeverAsync();
        });
        return 0;
    }
}

/// <summary>
/// Echoes every byte. Backpressure: while the transport's write buffer is over its high-water mark
/// it stops reading, so a client that never reads cannot make it buffer without bound.
/// On EOF it returns false: the transport sends what is buffered, then closes.
/// </summary>
internal sealed class EchoProtocol : Protocol
{
    private ITransport _transport = null!;

    public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;

    public override void DataReceived(ReadOnlySpan<byte> data) => _transport.Write(data);

    public override bool EofReceived() => false;

    public override void PauseWriting() => _transport.PauseReading();

    public override void ResumeWriting() => _transport.ResumeReading();
}

/// <summary>As <see cref="EchoProtocol"/>, reading into its own buffer (<see cref="IBufferedProtocol"/>): no copy on the read side.</summary>
internal sealed class BufferedEchoProtocol : IBufferedProtocol
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private ITransport _transport = null!;

    public void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;

    public Memory<byte> GetBuffer(int sizeHint) => _buffer;

    public void BufferUpdated(int bytesWritten) => _transport.Write(_buffer.AsSpan(0, bytesWritten));

    public bool EofReceived() => false;

    public void ConnectionLost(Exception? exception)
    {
    }

    public void PauseWriting() => _transport.PauseReading();

    public void ResumeWriting() => _transport.ResumeReading();
}
