using System;
using System.Globalization;
using System.IO;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Tulip;

namespace Tulip.Samples.TlsEchoServer;

/// <summary>
/// A TLS echo server on 127.0.0.1:PORT with a PEM certificate and key. Usage:
/// TlsEchoServer PORT CERT.pem KEY.pem [--handshake-timeout SECONDS]. Run through scripts/tls-echo-server.
/// It runs on the loop kind TULIP_LOOP names (epoll when unset).
/// </summary>
/// <remarks>
/// The echo is a protocol over the loop's own TLS layer (<see cref="ServerOptions.Ssl"/>), not streams:
/// every decrypted chunk is written back from the <c>DataReceived</c> call that carried it. The client's
/// close_notify makes the TLS layer call <c>EofReceived</c> and then answer with close_notify of its own
/// and close. A handshake not finished within the timeout (default 60 s, asyncio's) is dropped, and a
/// failed handshake is logged once and touches no other connection.
/// </remarks>
internal static class Program
{
    private const string Usage = "usage: tls-echo-server PORT CERT.pem KEY.pem [--handshake-timeout SECONDS]";

    // As the plain echo server (samples/EchoServer): the benchmark peers listen with a backlog of 1024.
    private const int Backlog = 1024;

    private static int Main(string[] args)
    {
        if (!TryParse(args, out int port, out string certPath, out string keyPath, out double handshakeTimeout))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        if (!TryLoad(certPath, keyPath, out var context))
        {
            return 2;
        }

        if (!LoopChoice.TryChoose("tls-echo-server", null, out var loopFactory))
        {
            return 2;
        }

        using var loop = loopFactory();
        try
        {
            loop.RunUntilComplete(async () =>
            {
                var options = new ServerOptions
                {
                    Backlog = Backlog,
                    Ssl = new SslServerAuthenticationOptions { ServerCertificateContext = context },
                    SslHandshakeTimeout = handshakeTimeout,
                };
                var server = await loop.CreateServerAsync(static () => new TlsEchoProtocol(), ["127.0.0.1"], port, options);
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"tls-echo-server: serving TLS on 127.0.0.1:{port} ({KindOf(loop)}, handshake timeout {handshakeTimeout} s)"));
                await server.ServeForeverAsync();
            });
        }
        catch (SocketException ex)
        {
            Console.Error.WriteLine($"tls-echo-server: cannot serve on 127.0.0.1:{port}: {ex.Message}");
            return 1;
        }

        return 0;
    }

    /// <summary>PORT CERT KEY, then optionally --handshake-timeout SECONDS (a positive number); false on anything else.</summary>
    private static bool TryParse(string[] args, out int port, out string certPath, out string keyPath, out double handshakeTimeout)
    {
        port = 0;
        certPath = keyPath = "";
        handshakeTimeout = SslProtocol.DefaultHandshakeTimeout;
        if (args.Length is not (3 or 5)
            || !int.TryParse(args[0], NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
        {
            return false;
        }

        certPath = args[1];
        keyPath = args[2];
        if (args.Length == 5)
        {
            if (args[3] != "--handshake-timeout"
                || !double.TryParse(args[4], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out handshakeTimeout)
                || !(handshakeTimeout > 0) || double.IsInfinity(handshakeTimeout))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Loads the certificate (the first PEM certificate in CERT; any after it are sent as the chain) and
    /// its private key (PKCS#8, PKCS#1 or SEC1 PEM) with the BCL's loaders, and makes the certificate
    /// context once for the server. False, after saying why on stderr, when they cannot be used.
    /// </summary>
    private static bool TryLoad(string certPath, string keyPath, out SslStreamCertificateContext context)
    {
        context = null!;
        try
        {
            X509Certificate2 certificate;
            using (var pem = X509Certificate2.CreateFromPemFile(certPath, keyPath))
            {
                // The key CreateFromPemFile attaches is ephemeral. OpenSSL on Linux signs with it, but a
                // PKCS#12 round trip makes the certificate self-contained as a loaded .pfx is, which
                // SslStream accepts on every platform.
                certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
            }

            var chain = new X509Certificate2Collection();
            chain.ImportFromPemFile(certPath);
            if (chain.Count > 0)
            {
                chain.RemoveAt(0); // the leaf itself
            }

            context = SslStreamCertificateContext.Create(certificate, chain, offline: true);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            Console.Error.WriteLine($"tls-echo-server: cannot load the certificate {certPath} with the key {keyPath}: {ex.Message}");
            return false;
        }
    }

    /// <summary>The loop's kind as it is named in TULIP_LOOP.</summary>
    private static string KindOf(IEventLoop loop) => loop switch { SelectorEventLoop selector => selector.SelectorName, ProactorEventLoop => "proactor", _ => loop.GetType().Name };
}

/// <summary>
/// Echoes every decrypted byte. Backpressure as the plain echo server's: while the TLS transport's
/// buffer is over its high-water mark it stops reading (the TLS layer then stops reading beneath), so
/// a client that never reads cannot make it buffer without bound. The client's close_notify: the TLS
/// layer answers with ours and closes after what is buffered has gone.
/// </summary>
internal sealed class TlsEchoProtocol : Protocol
{
    private ITransport _transport = null!;

    public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;

    public override void DataReceived(ReadOnlySpan<byte> data) => _transport.Write(data);

    public override bool EofReceived() => false;

    public override void PauseWriting() => _transport.PauseReading();

    public override void ResumeWriting() => _transport.ResumeReading();
}
