using static Tulip.Tests.Tls.TlsPeers;

namespace Tulip.Tests.Tls;

/// <summary>
/// The command lines of scripts/tls-echo-server and scripts/tls-echo-client: bad arguments print the
/// usage and exit 2, an unusable certificate, key or CA file says which and exits 2, an unknown
/// TULIP_LOOP exits 2 with the known kinds. No loop of this process is involved. In the fd
/// collection: child processes.
/// </summary>
[Collection(NativeFdCollection.Name)]
public sealed class TlsEchoScriptArgumentTests : IDisposable
{
    private readonly PemDirectory _pem = new();

    public void Dispose() => _pem.Dispose();

    private static async Task<PeerProcess> RunAsync(string script, string? tulipLoop, params string[] args)
    {
        var p = PeerProcess.Start(Script(script), args, tulipLoop);
        try
        {
            p.Stdin.Close();
            Assert.True(await p.WaitForExitAsync(), $"{script} did not exit: {p}");
            return p;
        }
        catch
        {
            p.Dispose();
            throw;
        }
    }

    public static TheoryData<string[]> BadServerArguments => new()
    {
        Array.Empty<string>(),
        new[] { "8443" },
        new[] { "8443", "cert.pem" },
        new[] { "port", "cert.pem", "key.pem" },
        new[] { "0", "cert.pem", "key.pem" },
        new[] { "70000", "cert.pem", "key.pem" },
        new[] { "8443", "cert.pem", "key.pem", "--handshake-timeout" },
        new[] { "8443", "cert.pem", "key.pem", "--handshake-timeout", "0" },
        new[] { "8443", "cert.pem", "key.pem", "--handshake-timeout", "-1" },
        new[] { "8443", "cert.pem", "key.pem", "--handshake-timeout", "soon" },
        new[] { "8443", "cert.pem", "key.pem", "--timeout", "5" },
        new[] { "8443", "cert.pem", "key.pem", "extra" },
    };

    [Theory]
    [MemberData(nameof(BadServerArguments))]
    public async Task Server_BadArguments_PrintTheUsage_AndExit2(string[] args)
    {
        using var p = await RunAsync("tls-echo-server", null, args);
        Assert.Equal(2, p.ExitCode);
        Assert.Contains("usage: ", p.Error, StringComparison.Ordinal);
        Assert.Contains("PORT CERT.pem KEY.pem [--handshake-timeout SECONDS]", p.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_UnusableCertificateOrKey_SaysWhich_AndExits2()
    {
        var pem = _pem.Files;
        string missing = Path.Combine(_pem.Path, "missing.pem");
        foreach (var (cert, key) in new[] { (missing, pem.LocalhostKey), (pem.LocalhostCert, missing), (pem.LocalhostKey, pem.LocalhostKey), (pem.LocalhostCert, pem.ClientKey) })
        {
            using var p = await RunAsync("tls-echo-server", null, Text(FreePort()), cert, key);
            Assert.True(p.ExitCode == 2, p.ToString());
            Assert.Contains($"tls-echo-server: cannot load the certificate {cert} with the key {key}: ", p.Error, StringComparison.Ordinal);
        }
    }

    public static TheoryData<string[]> BadClientArguments => new()
    {
        Array.Empty<string>(),
        new[] { "localhost" },
        new[] { "localhost", "port" },
        new[] { "localhost", "0" },
        new[] { "--cafile", "443" },
        new[] { "localhost", "443", "--cafile" },
        new[] { "localhost", "443", "--server-name" },
        new[] { "localhost", "443", "--server-name", "a", "--server-name", "b" },
        new[] { "localhost", "443", "--timeout", "0" },
        new[] { "localhost", "443", "--insecure", "yes" },
        new[] { "localhost", "443", "extra" },
    };

    [Theory]
    [MemberData(nameof(BadClientArguments))]
    public async Task Client_BadArguments_PrintTheUsage_AndExit2(string[] args)
    {
        using var p = await RunAsync("tls-echo-client", null, args);
        Assert.Equal(2, p.ExitCode);
        Assert.Contains("usage: tls-echo-client HOST PORT [--cafile CA.pem] [--server-name NAME]", p.Error, StringComparison.Ordinal);
        Assert.Empty(p.Output);
    }

    [Fact]
    public async Task Client_UnreadableOrEmptyCaFile_SaysWhich_AndExits2()
    {
        string missing = Path.Combine(_pem.Path, "missing.pem");
        using (var p = await RunAsync("tls-echo-client", null, "localhost", "443", "--cafile", missing))
        {
            Assert.True(p.ExitCode == 2, p.ToString());
            Assert.Contains($"tls-echo-client: cannot read the CA file {missing}: ", p.Error, StringComparison.Ordinal);
        }

        using (var p = await RunAsync("tls-echo-client", null, "localhost", "443", "--cafile", _pem.Files.LocalhostKey))
        {
            Assert.True(p.ExitCode == 2, p.ToString());
            Assert.Contains($"tls-echo-client: the CA file {_pem.Files.LocalhostKey} holds no PEM certificate.", p.Error, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("tls-echo-server")]
    [InlineData("tls-echo-client")]
    public async Task UnknownTulipLoop_Exits2_WithTheKnownKinds(string script)
    {
        var pem = _pem.Files;
        string[] args = script == "tls-echo-server" ? [Text(FreePort()), pem.LocalhostCert, pem.LocalhostKey] : ["localhost", Text(FreePort())];
        using var p = await RunAsync(script, "foo", args);
        Assert.True(p.ExitCode == 2, p.ToString());
        Assert.Contains($"{script}: TULIP_LOOP='foo' is not a known loop kind; known: epoll, poll", p.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Client_NothingListening_ExitsWithAnError()
    {
        using var p = await RunAsync("tls-echo-client", null, "127.0.0.1", Text(FreePort()), "--cafile", _pem.Files.CaCert);
        Assert.True(p.ExitCode == 1, p.ToString());
        Assert.Contains("tls-echo-client: ", p.Error, StringComparison.Ordinal);
        Assert.Empty(p.Output);
    }

    private static int FreePort() => Transports.TestUtil.FreePort();
}
