using System;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using Tulip;

namespace Tulip.Samples.TlsEchoClient;

/// <summary>
/// A TLS echo client: connects to HOST:PORT verifying the server's certificate, writes all of its
/// standard input, reads back exactly as many bytes onto its standard output, closes with close_notify
/// and exits 0. Usage: TlsEchoClient HOST PORT [--cafile CA.pem] [--server-name NAME] [--timeout SECONDS].
/// Run through scripts/tls-echo-client. It runs on the loop kind TULIP_LOOP names (epoll when unset).
/// </summary>
/// <remarks>
/// <para>
/// Verification: the certificate must chain to the system trust store, or with --cafile to the
/// certificates of that file alone, and be for NAME (or HOST; an IP address is matched against the
/// certificate's IP addresses). A refusal exits 1 with a message that says what was wrong (untrusted
/// root, unknown issuer, expired or not yet valid, issued for other names, no certificate).
/// </para>
/// <para>
/// Never a hang: the handshake must finish within the timeout (default 30 s), no more than that may
/// pass without a byte while echoed bytes are still owed, and our close_notify waits that long for the
/// server's. A server that sends more than it was sent, closes early, or answers garbage is an error
/// (exit 1). Exit 2: bad arguments, an unreadable --cafile.
/// </para>
/// </remarks>
internal static class Program
{
    private const string Usage = "usage: tls-echo-client HOST PORT [--cafile CA.pem] [--server-name NAME] [--timeout SECONDS]";

    internal const double DefaultTimeout = 30;

    private static int Main(string[] args)
    {
        if (!TryParse(args, out string host, out int port, out string? caFile, out string? serverName, out double timeout))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        X509Certificate2Collection? roots = null;
        if (caFile is not null && !TryLoadRoots(caFile, out roots))
        {
            return 2;
        }

        if (!LoopChoice.TryChoose("tls-echo-client", null, out var loopFactory))
        {
            return 2;
        }

        var verifier = new Verifier(serverName ?? host, roots);
        using var stdout = Console.OpenStandardOutput();
        using var loop = loopFactory();
        try
        {
            return loop.RunUntilComplete(async () =>
            {
                var options = new ConnectionOptions
                {
                    Ssl = verifier.Options(),
                    SslHandshakeTimeout = timeout,
                    SslShutdownTimeout = timeout,
                };
                var (_, client) = await loop.CreateConnectionAsync(() => new EchoClientProtocol(loop, stdout, timeout), host, port, options);
                return await client.Done;
            });
        }
        catch (AuthenticationException ex) when (verifier.Refusal is { } reason)
        {
            Console.Error.WriteLine($"tls-echo-client: certificate verification failed for {verifier.Name}: {reason} ({ex.Message})");
            return 1;
        }
        catch (AuthenticationException ex)
        {
            // SslStream's own refusals (garbage, a protocol mismatch, an alert) do not always say it was the handshake.
            string message = ex.Message.StartsWith("TLS handshake", StringComparison.Ordinal) ? ex.Message : $"TLS handshake failed: {ex.Message}";
            Console.Error.WriteLine($"tls-echo-client: {message}");
            return 1;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Console.Error.WriteLine($"tls-echo-client: {ex.Message}");
            return 1;
        }
    }

    /// <summary>HOST PORT, then the options in any order, each at most once; false on anything else.</summary>
    private static bool TryParse(string[] args, out string host, out int port, out string? caFile, out string? serverName, out double timeout)
    {
        host = "";
        port = 0;
        caFile = serverName = null;
        timeout = DefaultTimeout;
        if (args.Length < 2 || args[0].Length == 0 || args[0].StartsWith('-')
            || !int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
        {
            return false;
        }

        host = args[0];
        bool timeoutSeen = false;
        for (int i = 2; i < args.Length; i += 2)
        {
            if (i + 1 >= args.Length || args[i + 1].Length == 0)
            {
                return false;
            }

            string value = args[i + 1];
            switch (args[i])
            {
                case "--cafile" when caFile is null:
                    caFile = value;
                    break;
                case "--server-name" when serverName is null:
                    serverName = value;
                    break;
                case "--timeout" when !timeoutSeen:
                    timeoutSeen = true;
                    if (!double.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out timeout)
                        || !(timeout > 0) || double.IsInfinity(timeout))
                    {
                        return false;
                    }

                    break;
                default:
                    return false;
            }
        }

        return true;
    }

    /// <summary>The certificates of a PEM file, the only roots trusted with --cafile; false (after saying why) when there are none.</summary>
    private static bool TryLoadRoots(string path, out X509Certificate2Collection roots)
    {
        roots = [];
        try
        {
            roots.ImportFromPemFile(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
        {
            Console.Error.WriteLine($"tls-echo-client: cannot read the CA file {path}: {ex.Message}");
            return false;
        }

        if (roots.Count == 0)
        {
            Console.Error.WriteLine($"tls-echo-client: the CA file {path} holds no PEM certificate.");
            return false;
        }

        return true;
    }
}

/// <summary>
/// The server certificate's check: the default one (chain and name, by <see cref="SslStream"/>), with
/// the trust anchors replaced by the --cafile certificates when there are some. It refuses exactly what
/// the default would and keeps the reason in words, because SslStream's own message says only which
/// class of error it was.
/// </summary>
internal sealed class Verifier
{
    private readonly X509Certificate2Collection? _roots;

    public Verifier(string name, X509Certificate2Collection? roots)
    {
        Name = name;
        _roots = roots;
    }

    /// <summary>The name the certificate must be for (SNI too, unless it is an IP address).</summary>
    public string Name { get; }

    /// <summary>Why the certificate was refused; null until one is.</summary>
    public string? Refusal { get; private set; }

    public SslClientAuthenticationOptions Options()
    {
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = Name,
            RemoteCertificateValidationCallback = Validate,
        };
        if (_roots is not null)
        {
            // A private CA: its chain alone, and no revocation check (such CAs seldom publish a CRL).
            var policy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
            };
            policy.CustomTrustStore.AddRange(_roots);
            options.CertificateChainPolicy = policy;
            options.CertificateRevocationCheckMode = X509RevocationMode.NoCheck;
        }

        return options;
    }

    private bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        var reasons = new StringBuilder();
        if ((errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            Append(reasons, "the server sent no certificate");
        }

        var leaf = certificate as X509Certificate2 ?? (certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
        if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
        {
            foreach (string reason in ChainReasons(leaf, chain))
            {
                Append(reasons, reason);
            }
        }

        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            Append(reasons, $"name mismatch: the certificate is for {NamesOf(leaf)}, not {Name}");
        }

        Refusal = reasons.Length > 0 ? reasons.ToString() : errors.ToString();
        return false;
    }

    private static void Append(StringBuilder reasons, string reason)
    {
        if (reasons.Length > 0)
        {
            reasons.Append("; ");
        }

        reasons.Append(reason);
    }

    private System.Collections.Generic.IEnumerable<string> ChainReasons(X509Certificate2? leaf, X509Chain? chain)
    {
        var statuses = chain?.ChainStatus ?? [];
        if (statuses.Length == 0)
        {
            yield return "the certificate chain is invalid";
            yield break;
        }

        string roots = _roots is null ? "the system trust store" : "the --cafile certificates";
        foreach (var status in statuses.DistinctBy(s => s.Status))
        {
            yield return status.Status switch
            {
                X509ChainStatusFlags.NotTimeValid when leaf is not null && leaf.NotAfter < DateTime.Now =>
                    string.Create(CultureInfo.InvariantCulture, $"expired: the certificate was valid until {leaf.NotAfter.ToUniversalTime():u}"),
                X509ChainStatusFlags.NotTimeValid when leaf is not null && leaf.NotBefore > DateTime.Now =>
                    string.Create(CultureInfo.InvariantCulture, $"not yet valid: the certificate is valid from {leaf.NotBefore.ToUniversalTime():u}"),
                X509ChainStatusFlags.NotTimeValid => "expired: a certificate of the chain is outside its validity period",
                X509ChainStatusFlags.UntrustedRoot when leaf is not null && leaf.SubjectName.RawData.AsSpan().SequenceEqual(leaf.IssuerName.RawData) =>
                    $"untrusted root: the certificate is self-signed ({leaf.Subject}) and not in {roots}",
                X509ChainStatusFlags.UntrustedRoot => $"untrusted root: the chain ends at a root not in {roots}",
                X509ChainStatusFlags.PartialChain =>
                    $"untrusted root: no chain to {roots} (the certificate is issued by {leaf?.Issuer ?? "an unknown issuer"})",
                X509ChainStatusFlags.Revoked => "revoked: the certificate has been revoked",
                X509ChainStatusFlags.NotValidForUsage => "the certificate is not valid for a TLS server",
                _ => $"{status.Status}: {status.StatusInformation.Trim()}",
            };
        }
    }

    private static string NamesOf(X509Certificate2? leaf)
    {
        if (leaf is null)
        {
            return "(no certificate)";
        }

        var names = leaf.Extensions.OfType<X509SubjectAlternativeNameExtension>()
            .SelectMany(san => san.EnumerateDnsNames().Concat(san.EnumerateIPAddresses().Select(static ip => ip.ToString())))
            .ToList();
        return names.Count > 0 ? string.Join(", ", names) : leaf.GetNameInfo(X509NameType.SimpleName, false);
    }
}

/// <summary>
/// Sends standard input and counts the echo back. A thread reads standard input (a blocking read must
/// not hold up the loop) and hands each chunk to the loop, waiting while the transport's writes are
/// paused; the loop writes it. What comes back goes to standard output as it arrives. Once standard
/// input has ended and every byte sent has come back, it closes: close_notify, and the server's.
/// </summary>
internal sealed class EchoClientProtocol : Protocol
{
    private const int ChunkSize = 64 * 1024;

    private readonly IEventLoop _loop;
    private readonly Stream _stdout;
    private readonly double _timeout;

    // Set while the transport takes writes: the stdin thread waits on it before each read, so a server
    // that stops reading makes this client stop reading its input, not buffer all of it.
    private readonly WriteGate _writable = new();

    // Loop thread only.
    private ITransport _transport = null!;
    private long _sent;
    private long _received;
    private bool _inputDone;
    private bool _closing;
    private double _lastProgress;
    private TimerHandle? _watch;
    private string? _failure;

    public EchoClientProtocol(IEventLoop loop, Stream stdout, double timeout)
    {
        _loop = loop;
        _stdout = stdout;
        _timeout = timeout;
        Done = loop.CreateFuture<int>();
    }

    /// <summary>The exit status: 0 once every byte came back and the connection closed, or an error.</summary>
    public Future<int> Done { get; }

    public override void ConnectionMade(IBaseTransport transport)
    {
        _transport = (ITransport)transport;
        _lastProgress = _loop.Time();
        _watch = _loop.CallLater(_timeout, static self => self.Watch(), this);
        var reader = new Thread(ReadInput) { IsBackground = true, Name = "stdin" };
        reader.Start();
    }

    public override void DataReceived(ReadOnlySpan<byte> data)
    {
        if (_failure is not null)
        {
            return;
        }

        if (_received + data.Length > _sent)
        {
            Fail($"the server sent more than it was sent ({_received + data.Length} bytes back of {_sent} sent)");
            return;
        }

        _received += data.Length;
        _lastProgress = _loop.Time();
        try
        {
            _stdout.Write(data);
        }
        catch (IOException ex)
        {
            Fail($"cannot write to standard output: {ex.Message}");
            return;
        }

        CloseWhenDone();
    }

    public override bool EofReceived()
    {
        // The server's close_notify: the TLS layer closes next; ConnectionLost says whether all came back.
        return false;
    }

    public override void PauseWriting() => _writable.Close();

    public override void ResumeWriting() => _writable.Open();

    public override void ConnectionLost(Exception? exception)
    {
        _watch?.Cancel();
        _writable.Open(); // let the stdin thread run to its end (it is a background thread)
        try
        {
            _stdout.Flush();
        }
        catch (IOException)
        {
            // reported below if it matters: the bytes counted are what reached the stream
        }

        if (_failure is not null)
        {
            Done.TrySetException(new IOException(_failure, exception));
        }
        else if (!_closing)
        {
            Done.TrySetException(new IOException(
                $"the connection ended after {_received} of {_sent} bytes came back{(_inputDone ? "" : " (standard input not finished)")}"
                + (exception is null ? "" : $": {exception.Message}"), exception));
        }
        else
        {
            if (exception is not null)
            {
                // Every byte came back and our close_notify went: the echo is complete. The server's
                // close_notify did not come (or the close failed): say so, but the exchange succeeded.
                Console.Error.WriteLine($"tls-echo-client: note: the close did not end cleanly: {exception.Message}");
            }

            Done.TrySetResult(0);
        }
    }

    /// <summary>On the stdin thread: reads standard input to its end, handing each chunk to the loop.</summary>
    private void ReadInput()
    {
        try
        {
            using var stdin = Console.OpenStandardInput();
            while (true)
            {
                _writable.Wait();
                var chunk = new byte[ChunkSize];
                int n = stdin.Read(chunk, 0, chunk.Length);
                if (n == 0)
                {
                    break;
                }

                _loop.CallSoonThreadSafe(static s => s.Self.Send(s.Chunk, s.Length), (Self: this, Chunk: chunk, Length: n));
            }

            _loop.CallSoonThreadSafe(static self => self.InputEnded(), this);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // InvalidOperationException: the loop closed first (the connection failed); nothing to do.
            try
            {
                _loop.CallSoonThreadSafe(static s => s.Self.Fail($"cannot read standard input: {s.Message}"), (Self: this, ex.Message));
            }
            catch (InvalidOperationException)
            {
                // the loop is closed
            }
        }
    }

    private void Send(byte[] chunk, int length)
    {
        if (_failure is not null || _transport.IsClosing)
        {
            return;
        }

        if (_sent == _received)
        {
            _lastProgress = _loop.Time(); // nothing was owed until now: the wait for an echo starts here
        }

        _sent += length;
        _transport.Write(chunk.AsSpan(0, length));
    }

    private void InputEnded()
    {
        _inputDone = true;
        CloseWhenDone();
    }

    private void CloseWhenDone()
    {
        if (_inputDone && _received == _sent && !_closing && _failure is null)
        {
            _closing = true;
            _watch?.Cancel();
            _transport.Close(); // close_notify, then the server's (up to the shutdown timeout)
        }
    }

    /// <summary>The read timeout: echoed bytes are owed and none came for the timeout.</summary>
    private void Watch()
    {
        if (_failure is not null || _closing)
        {
            return;
        }

        double idle = _loop.Time() - _lastProgress;
        if (_received < _sent && idle >= _timeout)
        {
            Fail(string.Create(CultureInfo.InvariantCulture,
                $"timed out: no data from the server for {_timeout} s ({_received} of {_sent} bytes came back)"));
            return;
        }

        double wait = _received < _sent ? Math.Max(_timeout - idle, 0.01) : _timeout;
        _watch = _loop.CallLater(wait, static self => self.Watch(), this);
    }

    private void Fail(string message)
    {
        if (_failure is not null)
        {
            return;
        }

        _failure = message;
        _writable.Open();
        _transport.Abort();
    }
}

/// <summary>
/// Open while the transport takes writes: the stdin thread waits in <see cref="Wait"/> before each read;
/// the loop thread opens and closes it (PauseWriting/ResumeWriting). Shared by those two threads; the
/// lock guards <c>_open</c>.
/// </summary>
internal sealed class WriteGate
{
    private readonly object _lock = new(); // a Monitor, for Wait and PulseAll
    private bool _open = true;

    public void Open()
    {
        lock (_lock)
        {
            _open = true;
            Monitor.PulseAll(_lock);
        }
    }

    public void Close()
    {
        lock (_lock)
        {
            _open = false;
        }
    }

    public void Wait()
    {
        lock (_lock)
        {
            while (!_open)
            {
                Monitor.Wait(_lock);
            }
        }
    }
}
