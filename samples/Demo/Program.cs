// The main demonstration: the pieces of PEP 3156 that every Tulip program uses, in one run.
// Run it with: dotnet run --project samples/Demo
using System;
using System.IO.Pipes;
using System.Net;
using System.Text;
using System.Threading.Tasks;
using Tulip;
using Tulip.Queues;
using Tulip.Streams;
using Tulip.Synchronization;

namespace Tulip.Samples.Demo;

internal static class Program
{
    private static int Main()
    {
        int total = EventLoop.Run(MainAsync);
        Console.WriteLine($"done: total = {total}");
        return 0;
    }

    private static async LoopTask<int> MainAsync()
    {
        var loop = EventLoop.GetRunningLoop();

        // Callbacks run in the order scheduled; timers when they fall due.
        loop.CallSoon(() => Console.WriteLine("call_soon: first"));
        loop.CallSoon(static name => Console.WriteLine($"call_soon: {name}"), "second, with state and no closure");
        loop.CallLater(0.01, () => Console.WriteLine("call_later: 10 ms later"));

        // Coroutines are tasks; Gather waits for all of them.
        int[] squares = await Tasks.Gather(Square(2), Square(3), Square(4));
        Console.WriteLine($"gather: {string.Join(", ", squares)}");

        // Cancellation is delivered where the task awaits, and the task may handle it.
        var sleeper = Sleeper();
        await Tasks.Sleep(0.01);
        sleeper.Cancel("no more waiting");
        Console.WriteLine($"cancel: {await sleeper}");

        // Any .NET async API can be awaited; the task resumes on the loop thread.
        int threadBefore = Environment.CurrentManagedThreadId;
        await Task.Delay(5);
        Console.WriteLine($"await Task.Delay: back on the loop thread = {threadBefore == Environment.CurrentManagedThreadId}");

        // Blocking work goes to the executor (the thread pool) and comes back as a future.
        long sum = await loop.RunInExecutor(() => { long s = 0; for (int i = 1; i <= 1000; i++) s += i; return s; });
        Console.WriteLine($"run_in_executor: {sum}");

        // Name lookups never block the loop.
        var addresses = await loop.GetAddrInfoAsync("127.0.0.1", 8080, type: System.Net.Sockets.SocketType.Stream);
        Console.WriteLine($"getaddrinfo: {addresses[0].EndPoint} ({addresses[0].SocketType})");

        // Transports and protocols: a TCP echo server and a client, both protocols, on loopback.
        await using (var server = await loop.CreateServerAsync(() => new Echo(), ["127.0.0.1"], 0))
        {
            var port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
            var (transport, client) = await loop.CreateConnectionAsync(() => new Collector(loop), "127.0.0.1", port);
            transport.Write("hello, transports"u8);
            transport.WriteEof();                                 // the server echoes, then closes
            Console.WriteLine($"tcp echo: {await client.Done}");
        }

        // Datagrams: one SendTo is one DatagramReceived, with the sender's address.
        var (udp, udpProtocol) = await loop.CreateDatagramEndpointAsync(
            () => new DatagramEcho(), new IPEndPoint(IPAddress.Loopback, 0), null);
        var (peer, answers) = await loop.CreateDatagramEndpointAsync(
            () => new DatagramCollector(loop), null, (EndPoint)udp.GetExtraInfo("sockname")!);
        peer.SendTo("ping"u8);
        Console.WriteLine($"udp echo: {await answers.First}");
        peer.Close();
        udp.Close();

        // Pipes: any pollable fd becomes a read or write transport.
        using var pipeOut = new AnonymousPipeServerStream(PipeDirection.Out);
        using var pipeIn = new AnonymousPipeClientStream(PipeDirection.In, pipeOut.ClientSafePipeHandle);
        var (_, pipeReader) = await loop.ConnectReadPipeAsync(() => new Collector(loop), pipeIn);
        var (pipeWriter, _) = await loop.ConnectWritePipeAsync(() => new Collector(loop), pipeOut);
        pipeWriter.Write("through a pipe"u8);
        pipeWriter.Close();                                       // flushes, then the reader sees EOF
        Console.WriteLine($"pipe: {await pipeReader.Done}");

        // asyncio's high-level API: streams (open_connection / start_server), a queue and a lock.
        await using (var streamServer = await StreamConnections.StartServerAsync(EchoLines, "127.0.0.1", 0))
        {
            int streamPort = ((IPEndPoint)streamServer.Sockets[0].LocalEndPoint!).Port;
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", streamPort);
            writer.Write("a line, through streams\n"u8);
            writer.WriteEof();
            Console.WriteLine($"streams: {Encoding.UTF8.GetString(await reader.ReadLineAsync()).TrimEnd()}");
            writer.Close();
            await writer.WaitClosedAsync();
        }

        var jobs = new Queue<int>(maxsize: 2);                   // a put waits while two are queued
        var gate = new Lock();
        int handled = 0;
        async LoopTask Consumer()
        {
            await foreach (int job in jobs)                       // ends once the queue is shut down
            {
                using (await gate.AcquireAsync())
                {
                    handled += job;
                }
            }
        }

        var consumers = new[] { Consumer(), Consumer() };
        for (int job = 1; job <= 5; job++)
        {
            await jobs.PutAsync(job);
        }

        jobs.Shutdown();
        await Tasks.Gather(consumers);
        Console.WriteLine($"queue and lock: two consumers handled 1..5, sum {handled}");

        return squares[0] + squares[1] + squares[2];
    }

    /// <summary>A streams handler: each line back, until EOF.</summary>
    private static async LoopTask EchoLines(LoopStreamReader reader, LoopStreamWriter writer)
    {
        await foreach (byte[] line in reader)
        {
            writer.Write(line);
            await writer.DrainAsync();
        }

        writer.Close();
    }

    /// <summary>Echoes what it receives; on EOF, closes once the echo is written.</summary>
    private sealed class Echo : Protocol
    {
        private ITransport? _transport;

        public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;

        public override void DataReceived(ReadOnlySpan<byte> data) => _transport!.Write(data);
    }

    /// <summary>Collects what it receives; Done completes with it when the connection is lost.</summary>
    private sealed class Collector(IEventLoop loop) : Protocol
    {
        private readonly StringBuilder _text = new();

        public Future<string> Done { get; } = loop.CreateFuture<string>();

        public override void DataReceived(ReadOnlySpan<byte> data) => _text.Append(Encoding.UTF8.GetString(data));

        public override void ConnectionLost(Exception? exception) => Done.SetResult(_text.ToString());
    }

    /// <summary>Sends every datagram back to its sender.</summary>
    private sealed class DatagramEcho : DatagramProtocol
    {
        private IDatagramTransport? _transport;

        public override void ConnectionMade(IBaseTransport transport) => _transport = (IDatagramTransport)transport;

        public override void DatagramReceived(ReadOnlySpan<byte> data, EndPoint address) => _transport!.SendTo(data, address);
    }

    /// <summary>First completes with the first datagram received.</summary>
    private sealed class DatagramCollector(IEventLoop loop) : DatagramProtocol
    {
        public Future<string> First { get; } = loop.CreateFuture<string>();

        public override void DatagramReceived(ReadOnlySpan<byte> data, EndPoint address)
        {
            if (!First.Done)
            {
                First.SetResult($"{Encoding.UTF8.GetString(data)} back from {address}");
            }
        }
    }

    private static async LoopTask<int> Square(int x)
    {
        await Tasks.Sleep(0.001 * x);
        return x * x;
    }

    private static async LoopTask<string> Sleeper()
    {
        try
        {
            await Tasks.Sleep(3600);
            return "slept an hour";
        }
        catch (CancelledError e)
        {
            return $"caught CancelledError(\"{e.Message}\") and returned";
        }
    }
}
