using System;
using System.Globalization;
using System.Net;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using Tulip;
using Tulip.Diagnostics;
using Tulip.Samples;
using Tulip.Streams;

namespace Tulip.Samples.Metrics;

/// <summary>
/// The Tulip meter through OpenTelemetry: <c>dotnet run --project samples/Metrics [SECONDS]</c> runs a
/// line echo server and ten clients on the loop TULIP_LOOP names for SECONDS (default 3) and prints
/// the loop's metrics with OpenTelemetry's console exporter, once a second and once at the end.
/// An application does the same with <c>AddMeter(TulipMetrics.MeterName)</c> on its own exporter (OTLP,
/// Prometheus), or watches a running process with <c>dotnet-counters monitor --counters Tulip</c>.
/// </summary>
internal static class Program
{
    private const int Clients = 10;

    private static int Main(string[] args)
    {
        double seconds = 3;
        if (args.Length > 1 || (args.Length == 1 && (!double.TryParse(args[0], NumberStyles.Float, CultureInfo.InvariantCulture, out seconds) || seconds <= 0)))
        {
            Console.Error.WriteLine("usage: Metrics [SECONDS]   (SECONDS > 0; default 3)");
            return 2;
        }

        if (!LoopChoice.TryChoose("metrics", null, out var loopFactory))
        {
            return 2;
        }

        using var meters = Sdk.CreateMeterProviderBuilder()
            .AddMeter(TulipMetrics.MeterName)
            .AddConsoleExporter((_, reader) => reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = 1000)
            .Build();

        long echoed = EventLoop.Run(async () =>
        {
            long n = await Traffic(seconds);
            // The last export, with the connections closed and the loop still open: a closed loop reports no more.
            meters.ForceFlush();
            return n;
        }, loopFactory: loopFactory);
        Console.WriteLine($"metrics: {echoed} lines echoed by {Clients} clients in {seconds.ToString(CultureInfo.InvariantCulture)} s");
        return 0;
    }

    /// <summary>A line echo server and <see cref="Clients"/> clients that echo through it until the time is up.</summary>
    private static async LoopTask<long> Traffic(double seconds)
    {
        var loop = EventLoop.GetRunningLoop();
        await using var server = await StreamConnections.StartServerAsync(static async (reader, writer) =>
        {
            while (true)
            {
                byte[] line = await reader.ReadLineAsync();
                if (line.Length == 0)
                {
                    break; // EOF
                }

                writer.Write(line);
                await writer.DrainAsync();
            }

            writer.Close();
        }, "127.0.0.1", 0);
        int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
        double end = loop.Time() + seconds;
        // A heartbeat timer every 10 ms, so tulip.loop.lag (how late timers run) has samples.
        TimerHandle? heartbeat = null;
        void Beat() => heartbeat = loop.CallLater(0.01, Beat);
        Beat();
        var clients = new LoopTask<long>[Clients];
        for (int i = 0; i < Clients; i++)
        {
            clients[i] = Client(port, end);
        }

        long total = 0;
        foreach (long n in await Tasks.Gather(clients))
        {
            total += n;
        }

        heartbeat!.Cancel();
        return total;
    }

    private static async LoopTask<long> Client(int port, double end)
    {
        var loop = EventLoop.GetRunningLoop();
        var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", port);
        long n = 0;
        // At least one line each, however late the connection came (on a loaded machine the time may
        // be up before the first echo): every instrument then has traffic to show.
        do
        {
            writer.Write("ping\n"u8);
            await reader.ReadLineAsync();
            n++;
        }
        while (loop.Time() < end);

        writer.Close();
        await writer.WaitClosedAsync();
        return n;
    }
}
