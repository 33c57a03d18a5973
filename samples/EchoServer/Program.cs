using System;
using System.Globalization;
using System.Threading;
using System.Runtime.InteropServices;
using System.Net.Sockets;
using Tulip;
using Tulip.Streams;

namespace Tulip.Samples.EchoServer;

/// <summary>
/// A TCP echo server on 127.0.0.1:PORT: the server half of the benchmark contract in
/// scripts/echo-server (see ../shared/bench/README.md). Usage: EchoServer PORT [protocol|buffered|streams] [epoll|poll|io_uring|proactor].
/// Without the loop argument it runs on the loop kind TULIP_LOOP names (epoll when unset).
/// </summary>
/// <remarks>
/// TULIP_ECHO_STATS=1 makes it print, once a second to stderr, how many reads it echoed and how many
/// managed bytes were allocated meanwhile (see <see cref="EchoStats"/>), and on SIGUSR1 its open
/// connections and managed heap after a full collection: the evidence in docs/PERFORMANCE.md.
/// TULIP_ECHO_METRICS=1 listens to every instrument of the Tulip meter (<see cref="EchoMetrics"/>), as an
/// exporter would, to show what a listener costs beside the figures without one.
/// TULIP_ECHO_LOOPS=N (N &gt; 1; protocol and buffered modes) serves the port from an <see cref="EventLoopGroup"/>
/// of N loops on N threads, a SO_REUSEPORT listener each, or with TULIP_ECHO_DISTRIBUTION=roundrobin one
/// acceptor handing the connections out in turn: the loop-per-core figures of docs/PERFORMANCE.md.
/// </remarks>
internal static class Program
{
    // The peers (c_epoll_echo.c, asyncio_echo.py) listen with a backlog of 1024: the same here, so a
    // burst of connects (bench/echo/idle_conns.py) meets the same queue in every server.
    private const int Backlog = 1024;

    private static int Main(string[] args)
    {
        if (args.Length is < 1 or > 3 || !int.TryParse(args[0], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            Console.Error.WriteLine("usage: EchoServer PORT [protocol|buffered|streams] [epoll|poll|io_uring|proactor]");
            return 2;
        }

        string mode = args.Length > 1 ? args[1] : "protocol";
        Func<IBaseProtocol>? factory = null;
        switch (mode)
        {
            case "protocol":
                factory = static () => new EchoProtocol();
                break;
            case "buffered":
                factory = static () => new BufferedEchoProtocol();
                break;
            case "streams":
                break;
            default:
                Console.Error.WriteLine($"echo-server: unknown mode '{mode}'; expected protocol, buffered or streams.");
                return 2;
        }

        if (!LoopChoice.TryChoose("echo-server", args.Length > 2 ? args[2] : null, out var loopFactory))
        {
            return 2;
        }

        string? loops = Environment.GetEnvironmentVariable("TULIP_ECHO_LOOPS");
        if (loops is not null && loops != "1")
        {
            if (!int.TryParse(loops, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1 || factory is null)
            {
                Console.Error.WriteLine($"echo-server: TULIP_ECHO_LOOPS='{loops}' must be a number of loops, 1 or more, in protocol or buffered mode.");
                return 2;
            }

            return ServeFromGroup(n, factory, loopFactory, port, mode);
        }

        bool stats = Environment.GetEnvironmentVariable("TULIP_ECHO_STATS") == "1";
        using var metrics = Environment.GetEnvironmentVariable("TULIP_ECHO_METRICS") == "1" ? new EchoMetrics() : null;
        using var loop = loopFactory();
        loop.RunUntilComplete(async () =>
        {
            var options = new ServerOptions { Backlog = Backlog };
            var server = factory is null
                ? await StreamConnections.StartServerAsync(StreamsEcho.HandleAsync, "127.0.0.1", port, options)
                : await loop.CreateServerAsync(factory, ["127.0.0.1"], port, options);
            Console.Error.WriteLine($"echo-server: serving on 127.0.0.1:{port} ({mode}, {KindOf(loop)})");
            if (stats)
            {
                EchoStats.Start(loop);
            }

            await server.ServeForeverAsync();
        });
        return 0;
    }

    /// <summary>Serves the port from <paramref name="loops"/> loops (TULIP_ECHO_LOOPS) until the process is ended.</summary>
    private static int ServeFromGroup(int loops, Func<IBaseProtocol> factory, Func<IEventLoop> loopFactory, int port, string mode)
    {
        string? given = Environment.GetEnvironmentVariable("TULIP_ECHO_DISTRIBUTION");
        if (!Enum.TryParse<GroupDistribution>(given ?? nameof(GroupDistribution.ReusePort), ignoreCase: true, out var distribution)
            || !Enum.IsDefined(distribution))
        {
            Console.Error.WriteLine($"echo-server: TULIP_ECHO_DISTRIBUTION='{given}' must be reuseport or roundrobin.");
            return 2;
        }

        var group = new EventLoopGroup(loops, loopFactory);
        group.StartServerAsync(factory, "127.0.0.1", port, distribution, new ServerOptions { Backlog = Backlog }).GetAwaiter().GetResult();
        Console.Error.WriteLine($"echo-server: serving on 127.0.0.1:{port} ({mode}, {loops} loops of {KindOf(group.Loops[0])}, {distribution})");
        Thread.Sleep(Timeout.Infinite); // ended by a signal, as the single-loop server is
        return 0;
    }

    /// <summary>The loop's kind as it is named on the command line and in TULIP_LOOP.</summary>
    private static string KindOf(IEventLoop loop) => EventLoopKinds.NameOf(loop) ?? loop.GetType().Name;
}

/// <summary>
/// Echoes every byte. Backpressure: while the transport's write buffer is over its high-water mark
/// it stops reading, so a client that never reads cannot make it buffer without bound.
/// On EOF it returns false: the transport sends what is buffered, then closes.
/// </summary>
internal sealed class EchoProtocol : Protocol
{
    private ITransport _transport = null!;

    public override void ConnectionMade(IBaseTransport transport)
    {
        _transport = (ITransport)transport;
        EchoStats.Connections++;
    }

    public override void DataReceived(ReadOnlySpan<byte> data)
    {
        EchoStats.Reads++;
        _transport.Write(data);
    }

    public override bool EofReceived() => false;

    public override void ConnectionLost(Exception? exception) => EchoStats.Connections--;

    public override void PauseWriting() => _transport.PauseReading();

    public override void ResumeWriting() => _transport.ResumeReading();
}

/// <summary>As <see cref="EchoProtocol"/>, reading into a buffer it provides (<see cref="IBufferedProtocol"/>).</summary>
/// <remarks>
/// Every connection on the loop's thread reads into the same buffer: <see cref="BufferUpdated"/> writes
/// the bytes out before it returns (the transport sends them or copies what the socket refuses), so no
/// connection's bytes outlive the call. One 64 KiB buffer per connection instead cost 64 KiB of memory
/// each, and at 10 x 64 KiB echoes made the reads and writes walk 640 KiB, past the L2 cache: buffered
/// ran at 0.67x protocol there (docs/PERFORMANCE.md).
/// </remarks>
internal sealed class BufferedEchoProtocol : IBufferedProtocol
{
    [ThreadStatic]
    private static byte[]? t_buffer;

    private readonly byte[] _buffer = t_buffer ??= new byte[64 * 1024];
    private ITransport _transport = null!;

    public void ConnectionMade(IBaseTransport transport)
    {
        _transport = (ITransport)transport;
        EchoStats.Connections++;
    }

    public Memory<byte> GetBuffer(int sizeHint) => _buffer;

    public void BufferUpdated(int bytesWritten)
    {
        EchoStats.Reads++;
        _transport.Write(_buffer.AsSpan(0, bytesWritten));
    }

    public bool EofReceived() => false;

    public void ConnectionLost(Exception? exception) => EchoStats.Connections--;

    public void PauseWriting() => _transport.PauseReading();

    public void ResumeWriting() => _transport.ResumeReading();
}

/// <summary>
/// The streams echo: each connection reads up to 64 KiB at a time into its own reused buffer with
/// <see cref="LoopStreamReader.ReadAsync(Memory{byte}, System.Threading.CancellationToken)"/>, writes it
/// back and drains (so a client that never reads makes it wait, not buffer without bound), until
/// EOF; then it closes, which sends what is buffered first, as the protocol mode does on EOF.
/// </summary>
internal static class StreamsEcho
{
    // The buffer starts small and doubles up to ReadSize while reads fill it, so an idle connection
    // (bench/echo/idle_conns.py) holds 4 KiB, not 64; once grown it is reused, allocating nothing.
    private const int FirstReadSize = 4 * 1024;
    private const int ReadSize = 64 * 1024;

    internal static async LoopTask HandleAsync(LoopStreamReader reader, LoopStreamWriter writer)
    {
        EchoStats.Connections++;
        var buffer = new byte[FirstReadSize];
        try
        {
            while (true)
            {
                int n = await reader.ReadAsync(buffer);
                if (n == 0)
                {
                    break;
                }

                EchoStats.Reads++;
                writer.Write(buffer.AsSpan(0, n));
                await writer.DrainAsync();
                if (n == buffer.Length && buffer.Length < ReadSize)
                {
                    buffer = new byte[buffer.Length * 2];
                }
            }
        }
        catch (Exception e) when (e is SocketException or System.IO.IOException)
        {
            // The client reset the connection (a load generator that stops does): nothing to echo.
        }
        finally
        {
            EchoStats.Connections--;
            writer.Close();
        }
    }
}

/// <summary>
/// The allocation evidence (TULIP_ECHO_STATS=1). Once a second it prints the reads echoed in the
/// window and the managed bytes allocated meanwhile, on the loop thread
/// (<see cref="GC.GetAllocatedBytesForCurrentThread"/>) and in the whole process
/// (<see cref="GC.GetTotalAllocatedBytes"/>, precise), with the gen0 collections. Each window runs
/// from the end of one report to the start of the next, so what the report itself allocates (its
/// strings, the next timer) is outside every window: a steady-state line reads 0 B when the echo
/// path allocates nothing. On SIGUSR1 it prints the open connections and the managed heap after a
/// full, compacting collection (for bench/echo/idle_conns.py).
/// </summary>
internal static class EchoStats
{
    /// <summary>DataReceived/BufferUpdated calls so far. Loop thread only, like the protocols.</summary>
    internal static long Reads;

    /// <summary>Connections made and not yet lost. Loop thread only.</summary>
    internal static int Connections;

    private const double Interval = 1.0;

    private static long s_reads;
    private static long s_threadBytes;
    private static long s_processBytes;
    private static int s_gen0;
    private static double s_time;

    internal static void Start(IEventLoop loop)
    {
        // SIGUSR1 is 10 on Linux; PosixSignal names only the portable signals.
        loop.AddSignalHandler((PosixSignal)10, static () =>
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            long heap = GC.GetTotalMemory(forceFullCollection: false);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"echo-memory: connections {Connections}, managed heap {heap} B, GC committed {GC.GetGCMemoryInfo().TotalCommittedBytes} B"));
        });
        Mark(loop);
        loop.CallLater(Interval, Report, loop);
    }

    private static void Report(IEventLoop loop)
    {
        // Read the counters first: everything below allocates, and belongs to no window.
        long threadBytes = GC.GetAllocatedBytesForCurrentThread();
        long processBytes = GC.GetTotalAllocatedBytes(precise: true);
        int gen0 = GC.CollectionCount(0);
        long reads = Reads;
        double now = loop.Time();

        long windowReads = reads - s_reads;
        long windowThread = threadBytes - s_threadBytes;
        long windowProcess = processBytes - s_processBytes;
        double perRead = windowReads > 0 ? (double)windowThread / windowReads : 0;
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"echo-stats: {now - s_time:F2} s, {windowReads} reads, {Connections} connections, loop thread allocated {windowThread} B ({perRead:F3} B/read), process allocated {windowProcess} B, gen0 GCs {gen0 - s_gen0}"));
        loop.CallLater(Interval, Report, loop);
        Mark(loop);
    }

    private static void Mark(IEventLoop loop)
    {
        s_reads = Reads;
        s_gen0 = GC.CollectionCount(0);
        s_time = loop.Time();
        s_processBytes = GC.GetTotalAllocatedBytes(precise: true);
        s_threadBytes = GC.GetAllocatedBytesForCurrentThread();
    }
}

/// <summary>
/// A listener on every instrument of the Tulip meter (TULIP_ECHO_METRICS=1), as an OpenTelemetry
/// exporter would be: it takes each measurement, and collects the observable ones once a second.
/// With it the loop also times every callback (slow callbacks, loop lag are listened to).
/// </summary>
internal sealed class EchoMetrics : IDisposable
{
    private readonly System.Diagnostics.Metrics.MeterListener _listener = new();
    private readonly System.Threading.Timer _collect;
    private long _measurements;

    public EchoMetrics()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == Tulip.Diagnostics.TulipMetrics.MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, _, _, _) => System.Threading.Interlocked.Increment(ref _measurements));
        _listener.SetMeasurementEventCallback<double>((_, _, _, _) => System.Threading.Interlocked.Increment(ref _measurements));
        _listener.Start();
        _collect = new System.Threading.Timer(_ => _listener.RecordObservableInstruments(), null, 1000, 1000);
    }

    public void Dispose()
    {
        _collect.Dispose();
        _listener.Dispose();
    }
}
