using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Tulip.Tests.Tls;

/// <summary>
/// A child process the TLS tests talk to (openssl, Python, the scripts): its standard output is kept
/// as bytes and its standard error as text, both read on the thread pool as they come, so neither
/// pipe ever fills. Dispose kills it (and its children) if it still runs and waits for it: a test
/// leaves no process behind, whatever it asserted.
/// </summary>
internal sealed class PeerProcess : IDisposable
{
    private readonly Process _process;
    private readonly MemoryStream _stdout = new(); // guarded by itself
    private readonly StringBuilder _stderr = new(); // guarded by itself
    private readonly Task _stdoutPump;
    private readonly Task _stderrPump;

    private PeerProcess(Process process)
    {
        _process = process;
        _stdoutPump = Task.Run(async () =>
        {
            var buffer = new byte[64 * 1024];
            var stream = _process.StandardOutput.BaseStream;
            int n;
            while ((n = await stream.ReadAsync(buffer)) > 0)
            {
                lock (_stdout)
                {
                    _stdout.Write(buffer, 0, n);
                }
            }
        });
        _stderrPump = Task.Run(async () =>
        {
            var buffer = new char[4096];
            var reader = _process.StandardError;
            int n;
            while ((n = await reader.ReadAsync(buffer)) > 0)
            {
                lock (_stderr)
                {
                    _stderr.Append(buffer, 0, n);
                }
            }
        });
    }

    /// <summary>Starts <paramref name="file"/> with <paramref name="args"/>; <paramref name="tulipLoop"/> (when given) becomes its TULIP_LOOP.</summary>
    public static PeerProcess Start(string file, IEnumerable<string> args, string? tulipLoop = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        if (tulipLoop is not null)
        {
            psi.Environment["TULIP_LOOP"] = tulipLoop;
        }

        return new PeerProcess(Process.Start(psi)!);
    }

    /// <summary>Its standard input (binary).</summary>
    public Stream Stdin => _process.StandardInput.BaseStream;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public int Id => _process.Id;

    /// <summary>What it wrote to standard output so far.</summary>
    public byte[] Output
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToArray();
            }
        }
    }

    public long OutputLength
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.Length;
            }
        }
    }

    /// <summary>What it wrote to standard error so far.</summary>
    public string Error
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Its standard output as text, so far.</summary>
    public string OutputText => Encoding.UTF8.GetString(Output);

    /// <summary>Writes <paramref name="data"/> to its standard input, then closes it when <paramref name="close"/> (on the thread pool: a full pipe must not block the caller).</summary>
    public Task FeedAsync(byte[] data, bool close) => Task.Run(async () =>
    {
        try
        {
            await Stdin.WriteAsync(data);
            await Stdin.FlushAsync();
            if (close)
            {
                Stdin.Close();
            }
        }
        catch (IOException)
        {
            // it exited before reading everything: the test's assertions say what went wrong
        }
    });

    /// <summary>Waits (bounded: a hang guard) until <paramref name="condition"/> holds or it exits; true if the condition held.</summary>
    public async Task<bool> WaitUntilAsync(Func<PeerProcess, bool> condition, double seconds = TlsPeers.Patience)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition(this))
        {
            if (_process.HasExited)
            {
                await _stdoutPump.WaitAsync(TimeSpan.FromSeconds(10));
                return condition(this);
            }

            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(10);
        }

        return true;
    }

    /// <summary>Waits (bounded) for it to exit and for its output to be read; false if it still runs.</summary>
    public async Task<bool> WaitForExitAsync(double seconds = TlsPeers.Patience)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            return false;
        }

        await Task.WhenAll(_stdoutPump, _stderrPump).WaitAsync(TimeSpan.FromSeconds(10));
        return true;
    }

    /// <summary>The first line of its standard output (a Python peer prints the port it listens on).</summary>
    public async Task<int> ReadPortAsync()
    {
        Assert.True(await WaitUntilAsync(static p => p.OutputText.Contains('\n')), $"the peer printed no port; stderr: {Error}");
        return int.Parse(OutputText.Split('\n')[0].Trim(), CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // it exited meanwhile
        }

        _process.WaitForExit();
        Task.WhenAll(_stdoutPump, _stderrPump).Wait(TimeSpan.FromSeconds(10));
        _process.Dispose();
    }

    public override string ToString() => $"exit {(HasExited ? ExitCode.ToString(CultureInfo.InvariantCulture) : "(running)")}, stderr: {Error}";
}

/// <summary>The TLS peers outside .NET and the scripts, and the PEM files they read.</summary>
internal static class TlsPeers
{
    /// <summary>Seconds any wait on a peer may take before it is called a hang: the first script run builds its sample in Release, which can take minutes under load.</summary>
    public const double Patience = 400;

    public const string Openssl = "openssl";

    public const string Python = "/usr/bin/python3";

    public static string Script(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Tulip.slnx")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        return Path.Combine(dir!.FullName, "scripts", name);
    }

    public static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Whether something listens on 127.0.0.1:<paramref name="port"/>, from /proc/net/tcp (no probe connection, which a one-client peer would take for its client).</summary>
    public static bool IsListening(int port)
    {
        string local = $"0100007F:{port:X4}";
        return File.ReadLines("/proc/net/tcp").Skip(1)
            .Select(static line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Any(f => f.Length > 3 && f[1] == local && f[3] == "0A");
    }

    /// <summary>Waits (bounded) until <paramref name="peer"/> listens on <paramref name="port"/>; fails the test if it exits or never does.</summary>
    public static async Task WaitListeningAsync(PeerProcess peer, int port, double seconds = 60)
    {
        Assert.True(await peer.WaitUntilAsync(_ => IsListening(port), seconds) && IsListening(port), $"nothing listens on 127.0.0.1:{port}: {peer}");
    }

    /// <summary>openssl s_server on <paramref name="port"/> with the PEM certificate and key, plus <paramref name="extra"/>.</summary>
    public static PeerProcess SServer(int port, string cert, string key, params string[] extra) =>
        PeerProcess.Start(Openssl, ["s_server", "-accept", $"127.0.0.1:{Text(port)}", "-cert", cert, "-key", key, .. extra]);

    /// <summary>openssl s_client to 127.0.0.1:<paramref name="port"/> verifying against <paramref name="caFile"/> for localhost, plus <paramref name="extra"/>.</summary>
    public static PeerProcess SClient(int port, string caFile, params string[] extra) =>
        PeerProcess.Start(Openssl, ["s_client", "-connect", $"127.0.0.1:{Text(port)}", "-CAfile", caFile, "-verify_return_error",
            "-verify_hostname", "localhost", "-servername", "localhost", .. extra]);

    public static PeerProcess PythonPeer(string script, params string[] args) => PeerProcess.Start(Python, ["-c", script, .. args]);

    /// <summary>
    /// asyncio with ssl as a TLS server on 127.0.0.1 (a port of its own, printed first): argv cert key mode.
    /// echo: echoes; mute: reads and never answers; close-early: answers the first byte, then closes (close_notify).
    /// </summary>
    public const string PythonServer = """
        import asyncio, ssl, sys
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[1], sys.argv[2])
        mode = sys.argv[3]
        class P(asyncio.Protocol):
            def connection_made(self, t): self.t = t
            def data_received(self, d):
                if mode == 'echo':
                    self.t.write(d)
                elif mode == 'close-early':
                    self.t.write(d[:1]); self.t.close()
            def eof_received(self): return False
        async def main():
            srv = await asyncio.get_running_loop().create_server(P, '127.0.0.1', 0, ssl=ctx)
            print(srv.sockets[0].getsockname()[1], flush=True)
            await asyncio.sleep(600)
        asyncio.run(main())
        """;

    /// <summary>
    /// asyncio with ssl as a TLS client: argv port cafile size. Sends size random bytes, reads them back,
    /// closes (close_notify, and waits for the peer's); exit 0 when the echo was exact.
    /// </summary>
    public const string PythonClient = """
        import asyncio, os, ssl, sys
        async def main():
            ctx = ssl.create_default_context(cafile=sys.argv[2])
            r, w = await asyncio.open_connection('127.0.0.1', int(sys.argv[1]), ssl=ctx, server_hostname='localhost')
            data = os.urandom(int(sys.argv[3]))
            w.write(data); await w.drain()
            got = await r.readexactly(len(data))
            w.close(); await w.wait_closed()
            print(w.get_extra_info('ssl_object') is None, flush=True)
            return 0 if got == data else 1
        sys.exit(asyncio.run(main()))
        """;

    /// <summary>
    /// A blocking ssl client that checks the server answers close_notify: argv port cafile size. It
    /// echoes size bytes 16 KiB at a time, then unwrap()s: sends close_notify and waits for the
    /// server's, which fails if the server only closes the socket. Prints "closed cleanly", exit 0.
    /// </summary>
    public const string PythonUnwrapClient = """
        import os, socket, ssl, sys
        ctx = ssl.create_default_context(cafile=sys.argv[2])
        s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1]))), server_hostname='localhost')
        s.settimeout(60)
        data = os.urandom(int(sys.argv[3]))
        for i in range(0, len(data), 16384):
            chunk = data[i:i+16384]
            s.sendall(chunk)
            got = b''
            while len(got) < len(chunk):
                d = s.recv(len(chunk) - len(got))
                if not d: sys.exit('the server closed mid-echo')
                got += d
            if got != chunk: sys.exit('the echo differs')
        s.unwrap()
        print('closed cleanly', flush=True)
        """;

    /// <summary>A plain TCP server (a port of its own, printed first): argv mode. garbage: answers any bytes with an HTTP error; silent: accepts and never answers.</summary>
    public const string PlainServer = """
        import socket, sys
        s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(16)
        print(s.getsockname()[1], flush=True)
        held = []
        while True:
            c, _ = s.accept()
            held.append(c)
            if sys.argv[1] == 'garbage':
                c.recv(4096); c.sendall(b'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n' * 8)
        """;
}

/// <summary>The test set's PEM files in a directory of their own, removed by Dispose.</summary>
internal sealed class PemDirectory : IDisposable
{
    public PemDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "tulip-tls-" + Guid.NewGuid().ToString("N"));
        Files = TestCertificates.WritePem(Path);
    }

    public string Path { get; }

    public TestCertificates.PemFiles Files { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
            // gone already (a second Dispose)
        }
    }
}
