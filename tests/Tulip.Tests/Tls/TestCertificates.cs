using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Tulip.Tests.Tls;

/// <summary>
/// Certificates made at test time, once per test run (nothing installed, nothing read from disk): a
/// CA and leaves it signs, plus the bad ones each verification test needs. Every leaf is an ECDSA
/// P-256 key (fast to make and to use) with the server or client EKU it plays.
/// </summary>
/// <remarks>
/// The system trust store knows none of them, so a client with default options refuses them all;
/// <see cref="ClientOptions"/> trusts <see cref="Ca"/> alone, as a <c>--cafile</c> would.
/// </remarks>
public static class TestCertificates
{
    private static readonly Lazy<Set> s_set = new(Make, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The test CA (self-signed root, CN=Tulip Test CA).</summary>
    public static X509Certificate2 Ca => s_set.Value.Ca;

    /// <summary>A server leaf signed by <see cref="Ca"/> for DNS localhost and IPs 127.0.0.1 and ::1, with its key.</summary>
    public static X509Certificate2 Localhost => s_set.Value.Localhost;

    /// <summary>A server leaf signed by <see cref="Ca"/> for DNS example.org only (for SNI selection and wrong-host cases), with its key.</summary>
    public static X509Certificate2 ExampleOrg => s_set.Value.ExampleOrg;

    /// <summary>A self-signed server certificate for localhost and 127.0.0.1 (no CA), with its key.</summary>
    public static X509Certificate2 SelfSigned => s_set.Value.SelfSigned;

    /// <summary>A server leaf signed by <see cref="Ca"/> for localhost and 127.0.0.1 that expired a year ago, with its key.</summary>
    public static X509Certificate2 Expired => s_set.Value.Expired;

    /// <summary>Another CA, which no client here trusts.</summary>
    public static X509Certificate2 OtherCa => s_set.Value.OtherCa;

    /// <summary>A server leaf for localhost and 127.0.0.1 signed by <see cref="OtherCa"/>, with its key.</summary>
    public static X509Certificate2 UnknownCaLeaf => s_set.Value.UnknownCaLeaf;

    /// <summary>A client-authentication leaf (CN=tulip-client) signed by <see cref="Ca"/>, with its key.</summary>
    public static X509Certificate2 Client => s_set.Value.Client;

    /// <summary>Server options presenting <paramref name="certificate"/> (default <see cref="Localhost"/>).</summary>
    public static SslServerAuthenticationOptions ServerOptions(X509Certificate2? certificate = null) =>
        new() { ServerCertificate = certificate ?? Localhost };

    /// <summary>
    /// Client options that trust <see cref="Ca"/> alone (X509ChainPolicy custom root trust, no
    /// revocation check) and check the name <paramref name="targetHost"/> (null: leave TargetHost
    /// unset, so the connect call's host is checked).
    /// </summary>
    public static SslClientAuthenticationOptions ClientOptions(string? targetHost = "localhost") => new()
    {
        TargetHost = targetHost,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        CertificateChainPolicy = TrustingCa(),
    };

    /// <summary>A chain policy trusting <see cref="Ca"/> alone.</summary>
    public static X509ChainPolicy TrustingCa()
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
        };
        policy.CustomTrustStore.Add(Ca);
        return policy;
    }

    /// <summary>The PEM files of the set, for peers outside .NET (openssl, Python).</summary>
    /// <param name="CaCert">ca.pem: <see cref="Ca"/>.</param>
    /// <param name="LocalhostCert">localhost.pem: <see cref="Localhost"/>.</param>
    /// <param name="LocalhostKey">localhost.key: its PKCS#8 key.</param>
    /// <param name="ClientCert">client.pem: <see cref="Client"/>.</param>
    /// <param name="ClientKey">client.key: its key.</param>
    /// <param name="SelfSignedCert">selfsigned.pem.</param>
    /// <param name="SelfSignedKey">selfsigned.key.</param>
    /// <param name="ExpiredCert">expired.pem.</param>
    /// <param name="ExpiredKey">expired.key.</param>
    /// <param name="OtherCaCert">otherca.pem: <see cref="OtherCa"/>.</param>
    public sealed record PemFiles(string CaCert, string LocalhostCert, string LocalhostKey, string ClientCert, string ClientKey,
        string SelfSignedCert, string SelfSignedKey, string ExpiredCert, string ExpiredKey, string OtherCaCert);

    /// <summary>Writes the set's PEM files into <paramref name="directory"/> (made if missing) and returns their paths.</summary>
    public static PemFiles WritePem(string directory)
    {
        Directory.CreateDirectory(directory);
        string Cert(string name, X509Certificate2 c)
        {
            string path = Path.Combine(directory, name + ".pem");
            File.WriteAllText(path, c.ExportCertificatePem() + "\n");
            return path;
        }

        string Key(string name, X509Certificate2 c)
        {
            string path = Path.Combine(directory, name + ".key");
            using var key = c.GetECDsaPrivateKey() ?? throw new InvalidOperationException($"{name} has no ECDSA key.");
            File.WriteAllText(path, key.ExportPkcs8PrivateKeyPem() + "\n");
            return path;
        }

        return new PemFiles(Cert("ca", Ca), Cert("localhost", Localhost), Key("localhost", Localhost), Cert("client", Client), Key("client", Client),
            Cert("selfsigned", SelfSigned), Key("selfsigned", SelfSigned), Cert("expired", Expired), Key("expired", Expired), Cert("otherca", OtherCa));
    }

    private sealed record Set(X509Certificate2 Ca, X509Certificate2 Localhost, X509Certificate2 ExampleOrg, X509Certificate2 SelfSigned,
        X509Certificate2 Expired, X509Certificate2 OtherCa, X509Certificate2 UnknownCaLeaf, X509Certificate2 Client);

    private static Set Make()
    {
        var now = DateTimeOffset.UtcNow;
        var ca = MakeCa("CN=Tulip Test CA", now);
        var otherCa = MakeCa("CN=Tulip Other CA", now);
        return new Set(
            ca,
            Leaf("CN=localhost", ca, now.AddDays(-1), now.AddYears(1), server: true, "localhost", IPAddress.Loopback, IPAddress.IPv6Loopback),
            Leaf("CN=example.org", ca, now.AddDays(-1), now.AddYears(1), server: true, "example.org"),
            Leaf("CN=localhost", issuer: null, now.AddDays(-1), now.AddYears(1), server: true, "localhost", IPAddress.Loopback),
            Leaf("CN=localhost", ca, now.AddYears(-2), now.AddYears(-1), server: true, "localhost", IPAddress.Loopback),
            otherCa,
            Leaf("CN=localhost", otherCa, now.AddDays(-1), now.AddYears(1), server: true, "localhost", IPAddress.Loopback),
            Leaf("CN=tulip-client", ca, now.AddDays(-1), now.AddYears(1), server: false));
    }

    private static X509Certificate2 MakeCa(string subject, DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(now.AddYears(-5), now.AddYears(5));
    }

    private static X509Certificate2 Leaf(string subject, X509Certificate2? issuer, DateTimeOffset notBefore, DateTimeOffset notAfter, bool server,
        params object[] names)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        if (names.Length > 0)
        {
            var san = new SubjectAlternativeNameBuilder();
            foreach (var name in names)
            {
                if (name is IPAddress ip)
                {
                    san.AddIpAddress(ip);
                }
                else
                {
                    san.AddDnsName((string)name);
                }
            }

            request.CertificateExtensions.Add(san.Build());
        }

        X509Certificate2 made;
        if (issuer is null)
        {
            made = request.CreateSelfSigned(notBefore, notAfter);
        }
        else
        {
            request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
            byte[] serial = RandomNumberGenerator.GetBytes(12);
            serial[0] &= 0x7f;
            using var withoutKey = request.Create(issuer, notBefore, notAfter, serial);
            made = withoutKey.CopyWithPrivateKey(key);
        }

        // An ephemeral key works with SslStream on Linux; a PKCS#12 round trip makes the certificate
        // self-contained anyway (as a loaded .pfx would be), which servers on every platform accept.
        using (made)
        {
            return X509CertificateLoader.LoadPkcs12(made.Export(X509ContentType.Pkcs12), null);
        }
    }
}
