using System;
using System.Net.Security;

namespace Tulip;

/// <summary>
/// Copies of the BCL's TLS option objects, so the loop can fill in a default (the name to verify,
/// a server's certificate context) without changing the caller's object. Every settable property is
/// copied; a test compares them by reflection, so a property a new .NET adds is not silently lost.
/// </summary>
internal static class SslOptionsCopy
{
    public static SslClientAuthenticationOptions Of(SslClientAuthenticationOptions o)
    {
#pragma warning disable SYSLIB0040 // EncryptionPolicy is obsolete, but a caller who set it gets it kept
        var copy = new SslClientAuthenticationOptions
        {
            AllowRenegotiation = o.AllowRenegotiation,
            AllowTlsResume = o.AllowTlsResume,
            LocalCertificateSelectionCallback = o.LocalCertificateSelectionCallback,
            RemoteCertificateValidationCallback = o.RemoteCertificateValidationCallback,
            ApplicationProtocols = o.ApplicationProtocols,
            TargetHost = o.TargetHost,
            ClientCertificates = o.ClientCertificates,
            ClientCertificateContext = o.ClientCertificateContext,
            CertificateRevocationCheckMode = o.CertificateRevocationCheckMode,
            EncryptionPolicy = o.EncryptionPolicy,
            EnabledSslProtocols = o.EnabledSslProtocols,
            CipherSuitesPolicy = o.CipherSuitesPolicy,
            CertificateChainPolicy = o.CertificateChainPolicy,
        };
#pragma warning restore SYSLIB0040
        if (OperatingSystem.IsLinux() || OperatingSystem.IsWindows())
        {
            // Settable only where the platform's TLS honours them (macOS throws PlatformNotSupportedException).
            copy.AllowRsaPssPadding = o.AllowRsaPssPadding;
            copy.AllowRsaPkcs1Padding = o.AllowRsaPkcs1Padding;
        }

        return copy;
    }

    public static SslServerAuthenticationOptions Of(SslServerAuthenticationOptions o)
    {
#pragma warning disable SYSLIB0040
        var copy = new SslServerAuthenticationOptions
        {
            AllowRenegotiation = o.AllowRenegotiation,
            AllowTlsResume = o.AllowTlsResume,
            ClientCertificateRequired = o.ClientCertificateRequired,
            ApplicationProtocols = o.ApplicationProtocols,
            RemoteCertificateValidationCallback = o.RemoteCertificateValidationCallback,
            ServerCertificateSelectionCallback = o.ServerCertificateSelectionCallback,
            ServerCertificate = o.ServerCertificate,
            ServerCertificateContext = o.ServerCertificateContext,
            EnabledSslProtocols = o.EnabledSslProtocols,
            CertificateRevocationCheckMode = o.CertificateRevocationCheckMode,
            EncryptionPolicy = o.EncryptionPolicy,
            CipherSuitesPolicy = o.CipherSuitesPolicy,
            CertificateChainPolicy = o.CertificateChainPolicy,
        };
#pragma warning restore SYSLIB0040
        if (OperatingSystem.IsLinux() || OperatingSystem.IsWindows())
        {
            copy.AllowRsaPssPadding = o.AllowRsaPssPadding;
            copy.AllowRsaPkcs1Padding = o.AllowRsaPkcs1Padding;
        }

        return copy;
    }
}
