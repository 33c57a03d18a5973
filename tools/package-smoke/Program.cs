// The package smoke test's application (tools/package-smoke/run): a fresh console app that gets Tulip
// and Tulip.Testing from their .nupkg files, not from project references, and is published with
// Native AOT. It echoes one line over TCP through Tulip's streams on the loop TULIP_LOOP names,
// and runs a virtual hour on Tulip.Testing's loop; it prints one line and exits 0 when both worked.
using System;
using System.Net;
using System.Text;
using Tulip;
using Tulip.Streams;
using Tulip.Testing;

// Tulip runs on Linux only for now and says so ([SupportedOSPlatform("linux")]): an app declares the
// same, or guards its calls with OperatingSystem.IsLinux(), or the platform analyzer (CA1416) warns.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

string kind = "";
string echoed = EventLoop.Run(async () =>
{
    kind = EventLoop.GetRunningLoop().GetType().Name;
    await using var server = await StreamConnections.StartServerAsync(async (reader, writer) =>
    {
        byte[] line = await reader.ReadLineAsync();
        writer.Write(line);
        await writer.DrainAsync();
        writer.Close();
    }, "127.0.0.1", 0);
    int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
    var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", port);
    writer.Write("hello through the packages\n"u8);
    byte[] reply = await reader.ReadLineAsync();
    writer.Close();
    await writer.WaitClosedAsync();
    return Encoding.UTF8.GetString(reply).TrimEnd('\n');
});

using var virtualClock = new TestEventLoop();
bool fired = false;
virtualClock.CallLater(3600, () => fired = true);
virtualClock.Advance(3600);

Console.WriteLine($"echo: {echoed}; virtual hour passed: {fired}; loop: {kind}");
return echoed == "hello through the packages" && fired ? 0 : 1;
