// A line echo server in a .NET Generic Host: `dotnet run --project samples/HostedEcho [-- port]`.
// Started by systemd for a .socket unit (LISTEN_FDS), it serves the sockets systemd passed instead.
// Ctrl-C or SIGTERM stops it gracefully: the server stops accepting, a client that is being answered
// gets its answer, idle clients are let go, and the host exits 0.
// TULIP_LOOPS=N serves on N loops (TulipOptions.LoopCount), TULIP_DISTRIBUTION=RoundRobin|ReusePort says how
// TCP connections are spread over them (systemd's sockets are always handed out round robin).
using System;
using System.Globalization;
using System.Linq;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Tulip;
using Tulip.Hosting;
using Tulip.Streams;

var builder = Host.CreateApplicationBuilder(args);
bool systemd = Environment.GetEnvironmentVariable("LISTEN_FDS") is not null;
int port = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 7000;
int loops = Environment.GetEnvironmentVariable("TULIP_LOOPS") is { Length: > 0 } n ? int.Parse(n, CultureInfo.InvariantCulture) : 1;
var distribution = Environment.GetEnvironmentVariable("TULIP_DISTRIBUTION") is { Length: > 0 } d
    ? Enum.Parse<GroupDistribution>(d, ignoreCase: true) : GroupDistribution.ReusePort;
builder.Services.AddTulip(tulip =>
{
    tulip.LoopCount = loops;
    tulip.Distribution = distribution;
    var endpoint = systemd ? tulip.ListenSystemd() : tulip.ListenTcp("127.0.0.1", port);
    endpoint.UseStreams(EchoAsync);
    tulip.DrainTimeout = TimeSpan.FromSeconds(5);
});

using var host = builder.Build();
var tulip = host.Services.GetRequiredService<TulipLoopService>();
host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStarted.Register(() =>
    Console.WriteLine($"HostedEcho listening on {string.Join(", ", tulip.Listeners.SelectMany(l => l.LocalEndPoints))} " +
                      $"({(systemd ? "from systemd" : "bound here")}, " +
                      (loops == 1 ? $"{EventLoopKinds.NameOf(tulip.Loop)} loop)" : $"{loops} {EventLoopKinds.NameOf(tulip.Loop)} loops)")));
await host.RunAsync();
Console.WriteLine($"HostedEcho stopped: {tulip.ShutdownReport}");

// Echoes lines until the client ends, or until the host stops: an idle client's read is cancelled
// then, while a line already read is still answered.
static async LoopTask EchoAsync(LoopStreamReader reader, LoopStreamWriter writer, TulipServerContext context)
{
    try
    {
        while (!context.Stopping.IsCancellationRequested)
        {
            byte[] line;
            try
            {
                line = await reader.ReadLineAsync(context.Stopping);
            }
            catch (OperationCanceledException)
            {
                break; // the host is stopping and this client was idle
            }

            if (line.Length == 0)
            {
                break; // the client ended
            }

            writer.Write(line);
            await writer.DrainAsync();
        }
    }
    finally
    {
        writer.Close();
    }
}
