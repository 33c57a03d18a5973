using System;
using System.Collections.Generic;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Tulip;

/// <summary>
/// The TLS transport an application protocol talks to (asyncio's <c>_SSLProtocolTransport</c>): every
/// call goes to its <see cref="SslProtocol"/>, which encrypts, decrypts and talks to the transport beneath.
/// </summary>
internal sealed class SslTransport : ITransport
{
    private readonly SslProtocol _owner;

    public SslTransport(SslProtocol owner) => _owner = owner;

    public bool IsClosing => _owner.IsClosingForApp;

    public bool IsReading => _owner.IsAppReading;

    public bool CanWriteEof => false;

    /// <inheritdoc/>
    /// <remarks>
    /// TLS's own keys: "ssl_object" (the <see cref="SslStream"/>), "peercert" (the peer's
    /// <see cref="X509Certificate2"/>, a copy, or null), "cipher" (<see cref="System.Net.Security.TlsCipherSuite"/>),
    /// "tls_version" (<see cref="System.Security.Authentication.SslProtocols"/>), "alpn" (the negotiated
    /// application protocol as a string, or null), "sslcontext" (the options the connection was made with),
    /// "server_side" (bool). Before the handshake has finished the negotiated ones are null. Any other key
    /// is the transport beneath's ("peername", "sockname", "socket", ...).
    /// </remarks>
    public object? GetExtraInfo(string name, object? defaultValue = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        switch (name)
        {
            case "sslcontext":
                return _owner.Options;
            case "server_side":
                return _owner.IsServerSide;
            case "ssl_object":
                return _owner.Stream;
            case "peercert":
            case "cipher":
            case "tls_version":
            case "alpn":
                if (!_owner.IsHandshakeDone)
                {
                    return defaultValue;
                }

                try
                {
                    var ssl = _owner.Stream;
                    return name switch
                    {
                        "peercert" => ssl.RemoteCertificate is { } cert ? X509CertificateLoader.LoadCertificate(cert.GetRawCertData()) : defaultValue,
                        "cipher" => ssl.NegotiatedCipherSuite,
                        "tls_version" => ssl.SslProtocol,
                        _ => ssl.NegotiatedApplicationProtocol.Protocol.IsEmpty ? defaultValue : ssl.NegotiatedApplicationProtocol.ToString(),
                    };
                }
                catch (ObjectDisposedException)
                {
                    return defaultValue; // the connection is gone, or the caller disposed the SslStream it was given
                }

            default:
                return _owner.Beneath is { } beneath ? beneath.GetExtraInfo(name, defaultValue) : defaultValue;
        }
    }

    public void Close() => _owner.AppClose();

    public void Abort() => _owner.AppAbort();

    /// <summary>
    /// Closes as <see cref="Close"/> does (close_notify, then the transport beneath) and completes once
    /// the connection is over: the transport beneath is closed and the protocol's ConnectionLost has run.
    /// A peer that never answers the close holds it up to the shutdown timeout: cancel the waiting task
    /// to stop waiting (the close goes on), or <see cref="Abort"/>.
    /// </summary>
    public System.Threading.Tasks.ValueTask DisposeAsync() => _owner.AppCloseAndWaitAsync();

    public void SetProtocol(IBaseProtocol protocol) => _owner.SetAppProtocol(protocol);

    public IBaseProtocol GetProtocol() => _owner.App;

    public void PauseReading() => _owner.PauseAppReading();

    public void ResumeReading() => _owner.ResumeAppReading();

    public void Write(ReadOnlySpan<byte> data) => _owner.AppWrite(data);

    public void WriteLines(IEnumerable<ReadOnlyMemory<byte>> data) => _owner.AppWriteLines(data);

    public void WriteEof() =>
        throw new NotSupportedException("A TLS transport cannot half-close (CanWriteEof is false): TLS has no way to end one direction. Close() it instead.");

    public int GetWriteBufferSize() => _owner.AppBufferSize;

    public (int Low, int High) GetWriteBufferLimits() => _owner.WriteLimits;

    public void SetWriteBufferLimits(int? high = null, int? low = null) => _owner.SetWriteLimits(high, low);

    public override string ToString() => $"<SslTransport {(_owner.IsServerSide ? "server" : "client")} over {_owner.Beneath?.ToString() ?? "nothing yet"}>";
}
