using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Tulip.Tests.IoUring;

/// <summary>
/// scripts/echo-server PORT MODE io_uring serves and echoes in each mode on the io_uring loop kind (the
/// selector loop over io_uring poll requests). The UDP script runs on every kind in
/// <c>UdpEchoServerScriptTests</c>, io_uring included. The first run builds the sample in Release, which
/// may take minutes under load. In the fd collection: child processes.
/// </summary>
[Collection(NativeFdCollection.Name)]
public sealed class IoUringEchoServerScriptTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(400);

    [Theory]
    [InlineData("protocol")]
    [InlineData("buffered")]
    [InlineData("streams")]
    public void Echo_server_on_io_uring_echoes_what_it_is_sent(string mode)
    {
        int port = FreePort();
        var psi = new ProcessStartInfo(ScriptPath("echo-server")) { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add(port.ToString(CultureInfo.InvariantCulture));
        psi.ArgumentList.Add(mode);
        psi.ArgumentList.Add("io_uring");
        psi.Environment["TULIP_LOOP"] = null;
        var stderr = new BlockingCollection<string>();
        using var server = Process.Start(psi)!;
        server.OutputDataReceived += (_, _) => { };
        server.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                stderr.CompleteAdding();
            }
            else
            {
                stderr.Add(e.Data);
            }
        };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        try
        {
            string? serving = null;
            using (var cts = new CancellationTokenSource(Patience))
            {
                foreach (string line in stderr.GetConsumingEnumerable(cts.Token))
                {
                    if (line.StartsWith("echo-server: serving", StringComparison.Ordinal))
                    {
                        serving = line;
                        break;
                    }
                }
            }

            Assert.Equal($"echo-server: serving on 127.0.0.1:{port} ({mode}, io_uring)", serving);

            var payload = new byte[64 * 1024];
            new Random(port).NextBytes(payload);
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            client.ReceiveTimeout = (int)Patience.TotalMilliseconds; // a hang guard
            client.Connect(new IPEndPoint(IPAddress.Loopback, port));
            // Written from another thread while this one reads, so neither side's buffers need to hold it all.
            var writer = Task.Run(() => client.Send(payload));
            var echoed = new byte[payload.Length];
            int got = 0;
            while (got < echoed.Length)
            {
                int n = client.Receive(echoed, got, echoed.Length - got, SocketFlags.None);
                Assert.True(n > 0, $"the server closed after {got} bytes");
                got += n;
            }

            Assert.Equal(payload.Length, writer.GetAwaiter().GetResult());
            Assert.Equal(payload, echoed);
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
            }

            server.WaitForExit();
            stderr.Dispose();
        }
    }

    private static int FreePort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    private static string ScriptPath(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Tulip.slnx")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        return Path.Combine(dir!.FullName, "scripts", name);
    }
}
