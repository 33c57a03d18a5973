// .NET TLS peers for bench/tls: what a C# programmer would use instead of Tulip.
//   kestrel:   ASP.NET Core's Kestrel with ListenOptions.UseHttps and a ConnectionHandler
//              (System.IO.Pipelines over SslStream), the TLS twin of the plain Kestrel peer.
//   sslstream: System.Net.Sockets + SslStream with async/await, one task per connection.
// usage: dotnet_tls_echo PORT CERT.pem KEY.pem kestrel|sslstream
using System;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

if (args.Length != 4 || (args[3] != "kestrel" && args[3] != "sslstream"))
{
    Console.Error.WriteLine("usage: dotnet_tls_echo PORT CERT.pem KEY.pem kestrel|sslstream");
    return 2;
}

int port = int.Parse(args[0], CultureInfo.InvariantCulture);
using var certificate = X509Certificate2.CreateFromPemFile(args[1], args[2]);

if (args[3] == "kestrel")
{
    var builder = WebApplication.CreateSlimBuilder();
    builder.Logging.ClearProviders();
    builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, l =>
    {
        l.UseHttps(certificate);
        l.UseConnectionHandler<EchoHandler>();
    }));
    await builder.Build().RunAsync();
    return 0;
}

using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
listener.Listen(1024);
var options = new SslServerAuthenticationOptions { ServerCertificate = certificate };
while (true)
{
    var s = await listener.AcceptAsync();
    s.NoDelay = true;
    _ = Task.Run(async () =>
    {
        using var ssl = new SslStream(new NetworkStream(s, ownsSocket: true));
        try
        {
            await ssl.AuthenticateAsServerAsync(options);
            var buf = new byte[16 * 1024];
            while (true)
            {
                int n = await ssl.ReadAsync(buf);
                if (n == 0)
                {
                    break;
                }

                await ssl.WriteAsync(buf.AsMemory(0, n));
            }

            await ssl.ShutdownAsync();
        }
        catch (Exception e) when (e is IOException or SocketException or AuthenticationException)
        {
            // the client went away: nothing to echo
        }
    });
}

/// <summary>Echoes every byte through Kestrel's pipes (the plain peer's handler, under UseHttps).</summary>
internal sealed class EchoHandler : ConnectionHandler
{
    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        while (true)
        {
            var result = await input.ReadAsync();
            foreach (var segment in result.Buffer)
            {
                await output.WriteAsync(segment);
            }

            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                break;
            }
        }
    }
}
