// The "portable" mode: the proactor on Linux with every Linux-specific path of Tulip forbidden, so a
// proactor (or shared code under it) that reaches the interop layer fails, here, on Linux, as it
// would fail on Windows or macOS. Two locks: the AppContext switch Tulip.ForbidLinuxInterop makes
// Tulip's shared code take the paths other platforms take (the proactor is then the only loop kind,
// the default), and a native-library resolver for the Tulip assembly refuses its native library,
// so any P/Invoke Tulip still makes fails and is counted (a first call binds through the resolver).
// Pipes are reached through a subprocess: without Linux interop a loop's subprocesses are the portable
// implementation's (ProcessSubprocessTransportFactory, on System.Diagnostics.Process), whose redirected
// streams are joined to the proactor's pipe transports. Prints what it reaches,
// one line each; exits 0 only if everything ran and nothing was refused.
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Tulip;
using Tulip.Streams;

namespace TulipTestProgram;

internal static class Portable
{
    private static int s_refused;

    public static int Run()
    {
        AppContext.SetSwitch("Tulip.ForbidLinuxInterop", true);
        NativeLibrary.SetDllImportResolver(typeof(EventLoop).Assembly, static (name, _, _) =>
        {
            Interlocked.Increment(ref s_refused);
            Console.Error.WriteLine($"refused: Tulip loaded its native library '{name}' at\n{Environment.StackTrace}");
            throw new DllNotFoundException($"Tulip's native library '{name}' is forbidden in the portable run.");
        });

        Console.WriteLine($"kinds: {string.Join(", ", EventLoopKinds.AvailableNames)}");
        try
        {
            EventLoopKinds.GetFactory("poll"); // known, but not here: as on Windows and macOS
            Console.WriteLine("poll: made");
        }
        catch (PlatformNotSupportedException e)
        {
            Console.WriteLine($"poll: {e.Message}");
        }

        try
        {
            EventLoop.Run(MainAsync); // no factory, no TULIP_LOOP: the default kind
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"failed: {e}");
            return 1;
        }

        Console.WriteLine($"refused: {s_refused}");
        return s_refused == 0 ? 0 : 1;
    }

    private static async LoopTask MainAsync()
    {
        var loop = EventLoop.GetRunningLoop();
        Console.WriteLine($"loop: {EventLoopKinds.NameOf(loop) ?? loop.GetType().Name}");

        // Callbacks from another thread, the executor, the resolver.
        var fromThread = loop.CreateFuture<int>();
        var thread = new Thread(() => loop.CallSoonThreadSafe(() => fromThread.SetResult(1)));
        thread.Start();
        await fromThread;
        thread.Join();
        int executed = await loop.RunInExecutor(static () => 2);
        var addresses = await loop.GetAddrInfoAsync("localhost", 80, AddressFamily.InterNetwork, SocketType.Stream);
        Console.WriteLine($"threads: {fromThread.Result() + executed}, resolved: {addresses.Count > 0}");

        // A signal handler set and removed (.NET's PosixSignalRegistration, on every platform).
        loop.AddSignalHandler(PosixSignal.SIGTERM, static () => { });
        Console.WriteLine($"signal handler: {loop.RemoveSignalHandler(PosixSignal.SIGTERM)}");

        // TCP: streams echo.
        var tcp = await StreamConnections.StartServerAsync(EchoAsync, "127.0.0.1", 0);
        int port = ((IPEndPoint)tcp.Sockets[0].LocalEndPoint!).Port;
        var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", port);
        Console.WriteLine($"tcp: {await RoundTripAsync(reader, writer, "over tcp")}");
        await CloseAsync(tcp);

        // UNIX: streams echo, the socket file removed at close.
        string path = Path.Combine(Path.GetTempPath(), $"tulip-portable-{Environment.ProcessId}.sock");
        var unix = await StreamConnections.StartUnixServerAsync(EchoAsync, path);
        (reader, writer) = await StreamConnections.OpenUnixConnectionAsync(path);
        Console.WriteLine($"unix: {await RoundTripAsync(reader, writer, "over unix")}");
        await CloseAsync(unix);
        Console.WriteLine($"unix file left: {File.Exists(path)}");

        // UDP: a datagram endpoint that echoes, and the Sock* datagram calls as the peer.
        var (udp, _) = await loop.CreateDatagramEndpointAsync(static () => new DatagramEcho(), new IPEndPoint(IPAddress.Loopback, 0), null);
        var udpAddress = (IPEndPoint)((Socket)udp.GetExtraInfo("socket")!).LocalEndPoint!;
        using (var peer = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { Blocking = false })
        {
            peer.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            await loop.SockSendToAsync(peer, "over udp"u8.ToArray(), udpAddress);
            var buffer = new byte[64];
            var (n, from) = await loop.SockRecvFromAsync(peer, buffer);
            Console.WriteLine($"udp: {(Encoding.ASCII.GetString(buffer, 0, n) == "over udp" && from.Equals(udpAddress) ? "echoed" : "wrong")}");
        }

        udp.Close();

        // Stream Sock* calls and a file sent over a connection.
        using (var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen();
            listener.Blocking = false;
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
            var accepting = loop.SockAcceptAsync(listener);
            await loop.SockConnectAsync(client, listener.LocalEndPoint!);
            using var accepted = await accepting;
            accepted.Blocking = false;
            await loop.SockSendAllAsync(client, "over sock calls"u8.ToArray());
            string file = Path.Combine(Path.GetTempPath(), $"tulip-portable-{Environment.ProcessId}.txt");
            await File.WriteAllTextAsync(file, " and a file");
            long sent;
            await using (var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 4096, FileOptions.Asynchronous))
            {
                sent = await loop.SockSendFileAsync(client, stream);
            }

            File.Delete(file);
            client.Shutdown(SocketShutdown.Send);
            var received = new MemoryStream();
            var chunk = new byte[64];
            int got;
            while ((got = await loop.SockRecvAsync(accepted, chunk)) > 0)
            {
                received.Write(chunk, 0, got);
            }

            Console.WriteLine($"sock calls: {(Encoding.ASCII.GetString(received.ToArray()) == "over sock calls and a file" && sent == 11 ? "sent" : "wrong")}");
        }

        // TLS: a server with a fresh self-signed certificate, a client that trusts it.
        using var certificate = SelfSigned();
        var tls = await StreamConnections.StartServerAsync(EchoAsync, "127.0.0.1", 0,
            new ServerOptions { Ssl = new SslServerAuthenticationOptions { ServerCertificate = certificate } });
        port = ((IPEndPoint)tls.Sockets[0].LocalEndPoint!).Port;
        (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", port, new ConnectionOptions
        {
            Ssl = new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert?.GetCertHashString() == certificate.GetCertHashString(),
            },
        });
        Console.WriteLine($"tls: {await RoundTripAsync(reader, writer, "over tls")}");
        await CloseAsync(tls);

        // A subprocess: stdin to stdout through cat and back, stderr apart, its exit code, and a kill.
        await using (var cat = await LoopProcess.CreateShellAsync("cat; echo to-stderr >&2; exit 3"))
        {
            var (output, error) = await cat.CommunicateAsync("over a subprocess\n"u8.ToArray());
            bool right = Encoding.ASCII.GetString(output!) == "over a subprocess\n" && Encoding.ASCII.GetString(error!) == "to-stderr\n" && cat.ReturnCode == 3;
            Console.WriteLine($"subprocess: {cat.Transport.GetType().Name} {(right ? "echoed" : $"wrong: exit {cat.ReturnCode}")}");
        }

        await using (var sleeper = await LoopProcess.CreateExecAsync("sleep", ["100"]))
        {
            sleeper.Kill();
            Console.WriteLine($"killed: {await sleeper.WaitAsync()}"); // 128 + 9: Process keeps no wait status
        }
    }

    private static async LoopTask EchoAsync(LoopStreamReader reader, LoopStreamWriter writer)
    {
        byte[] line = await reader.ReadLineAsync();
        writer.Write(line);
        await writer.DrainAsync();
        writer.Close();
        await writer.WaitClosedAsync();
    }

    private static async LoopTask<string> RoundTripAsync(LoopStreamReader reader, LoopStreamWriter writer, string text)
    {
        writer.Write(Encoding.ASCII.GetBytes(text + "\n"));
        await writer.DrainAsync();
        string echoed = Encoding.ASCII.GetString(await reader.ReadLineAsync()).TrimEnd('\n');
        bool eof = (await reader.ReadAsync()).Length == 0;
        writer.Close();
        await writer.WaitClosedAsync();
        return echoed == text && eof ? "echoed" : $"wrong: '{echoed}', eof {eof}";
    }

    private static async LoopTask CloseAsync(Server server)
    {
        server.Close();
        await server.WaitClosedAsync();
    }

    /// <summary>Sends each datagram back to its sender.</summary>
    private sealed class DatagramEcho : DatagramProtocol
    {
        private IDatagramTransport? _transport;

        public override void ConnectionMade(IBaseTransport transport) => _transport = (IDatagramTransport)transport;

        public override void DatagramReceived(ReadOnlySpan<byte> data, EndPoint address) => _transport!.SendTo(data, address);
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        using var ephemeral = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pfx), null);
    }
}
