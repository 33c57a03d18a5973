using System;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Threading;

namespace Tulip;

// TLS, written once for every multiplexer (asyncio's base_events.py: _make_ssl_transport, start_tls):
// a SslProtocol between the transport the multiplexer makes and the caller's protocol, so TLS works
// over whatever stream transport a loop has (selector, completion, in-memory, third-party) and over
// TLS itself. The connection code of BaseEventLoop.Streams.cs calls in here when options carry Ssl.
public abstract partial class BaseEventLoop
{
    /// <summary>
    /// Makes the TLS transport of a connected socket (asyncio's <c>_make_ssl_transport</c>): a
    /// <see cref="SslProtocol"/> for <paramref name="protocol"/> over the stream transport
    /// <see cref="MakeSocketTransport"/> makes. The default serves every multiplexer; a loop with a
    /// TLS engine of its own may override it.
    /// </summary>
    /// <remarks>As <see cref="MakeSocketTransport"/>: called on the loop thread; the application protocol's
    /// ConnectionMade runs once the handshake has finished, then <paramref name="waiter"/> completes; a failed
    /// handshake fails <paramref name="waiter"/> with an <see cref="System.Security.Authentication.AuthenticationException"/>
    /// and closes the socket.</remarks>
    /// <param name="socket">A connected, non-blocking stream socket; the transport owns it once this returns.</param>
    /// <param name="protocol">The application's protocol.</param>
    /// <param name="clientOptions">The client side's options (with the name to verify), or null for the server side.</param>
    /// <param name="serverOptions">The server side's options, or null for the client side.</param>
    /// <param name="waiter">As for <see cref="MakeSocketTransport"/>.</param>
    /// <param name="handshakeTimeout">Seconds the handshake may take.</param>
    /// <param name="shutdownTimeout">Seconds a close waits for the peer's close_notify.</param>
    /// <param name="connectionLost">As for <see cref="MakeSocketTransport"/>, called with the socket's transport.</param>
    /// <returns>The TLS transport.</returns>
    protected virtual ITransport MakeSslTransport(Socket socket, IBaseProtocol protocol, SslClientAuthenticationOptions? clientOptions,
        SslServerAuthenticationOptions? serverOptions, Future<VoidResult>? waiter, double handshakeTimeout, double shutdownTimeout,
        Action<ITransport>? connectionLost)
    {
        var tls = new SslProtocol(this, protocol, clientOptions, serverOptions, waiter, handshakeTimeout, shutdownTimeout, callConnectionMade: true);
        MakeSocketTransport(socket, tls, null, connectionLost);
        return tls.AppTransport;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// As asyncio's: reading on <paramref name="transport"/> pauses, its protocol becomes the TLS layer, and
    /// the handshake runs; bytes it had already received for its old protocol are not seen again (a reader
    /// that read ahead passes them on: <see cref="Streams.LoopStreamWriter.StartTlsAsync(SslClientAuthenticationOptions, double, double, CancellationToken)"/>).
    /// A failure or a cancellation closes <paramref name="transport"/>.
    /// </remarks>
    public virtual LoopTask<ITransport> StartTlsAsync(ITransport transport, IBaseProtocol protocol, SslClientAuthenticationOptions options,
        double handshakeTimeout = SslProtocol.DefaultHandshakeTimeout, double shutdownTimeout = SslProtocol.DefaultShutdownTimeout,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrEmpty(options.TargetHost))
        {
            throw new ArgumentException("start_tls as a client needs the server's name to verify: set SslClientAuthenticationOptions.TargetHost.", nameof(options));
        }

        return StartTlsCoreAsync(transport, protocol, options, null, handshakeTimeout, shutdownTimeout, default, cancellationToken);
    }

    /// <inheritdoc/>
    /// <remarks>As the client form; <paramref name="options"/> gives the certificate.</remarks>
    public virtual LoopTask<ITransport> StartTlsAsync(ITransport transport, IBaseProtocol protocol, SslServerAuthenticationOptions options,
        double handshakeTimeout = SslProtocol.DefaultHandshakeTimeout, double shutdownTimeout = SslProtocol.DefaultShutdownTimeout,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        return StartTlsCoreAsync(transport, protocol, null, options, handshakeTimeout, shutdownTimeout, default, cancellationToken);
    }

    /// <summary>start_tls, with the bytes a reader had read ahead of the upgrade fed to the TLS layer first (CPython gh-142352).</summary>
    internal LoopTask<ITransport> StartTlsCoreAsync(ITransport transport, IBaseProtocol protocol, SslClientAuthenticationOptions? clientOptions,
        SslServerAuthenticationOptions? serverOptions, double handshakeTimeout, double shutdownTimeout, ReadOnlyMemory<byte> readAhead,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(protocol);
        SslProtocol.CheckTimeout(handshakeTimeout, nameof(handshakeTimeout));
        SslProtocol.CheckTimeout(shutdownTimeout, nameof(shutdownTimeout));
        if (transport.IsClosing)
        {
            throw new InvalidOperationException("The transport is closing: there is no connection left to upgrade to TLS.");
        }

        if (transport.GetProtocol() is SslProtocol)
        {
            // Swapping its protocol would take the records away from the TLS layer mid-connection (or
            // mid-handshake, for a second start_tls on the same transport).
            throw new InvalidOperationException(
                "The transport already carries TLS (its protocol is a TLS layer): use the TLS transport it gave, and upgrade that one for TLS inside TLS.");
        }

        return StartTlsRunAsync(transport, protocol, clientOptions, serverOptions, handshakeTimeout, shutdownTimeout, readAhead, cancellationToken);
    }

    private async LoopTask<ITransport> StartTlsRunAsync(ITransport transport, IBaseProtocol protocol, SslClientAuthenticationOptions? clientOptions,
        SslServerAuthenticationOptions? serverOptions, double handshakeTimeout, double shutdownTimeout, ReadOnlyMemory<byte> readAhead,
        CancellationToken cancellationToken)
    {
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var waiter = new Future<VoidResult>(this);
        var tls = new SslProtocol(this, protocol, clientOptions, serverOptions, waiter, handshakeTimeout, shutdownTimeout, callConnectionMade: false);
        if (!readAhead.IsEmpty)
        {
            tls.FeedInitial(readAhead.Span);
        }

        // asyncio's order: stop reading, swap the protocol, then (on later iterations) start the
        // handshake and read again, so nothing the old protocol would have seen is lost in between.
        transport.PauseReading();
        transport.SetProtocol(tls);
        var start = CallSoon(static state => state.tls.ConnectionMade(state.transport), (tls, transport));
        var resume = CallSoon(static t => t.ResumeReading(), transport);
        try
        {
            await waiter;
            ThrowIfCancelPending();
        }
        catch
        {
            start.Cancel();
            resume.Cancel();
            tls.AppTransport.Abort();
            transport.Close();
            throw;
        }

        return tls.AppTransport;
    }

    /// <inheritdoc/>
    public virtual async LoopTask<(ITransport Transport, TProtocol Protocol)> ConnectAcceptedSocketAsync<TProtocol>(Func<TProtocol> protocolFactory,
        Socket socket, SslServerAuthenticationOptions ssl, double handshakeTimeout, double shutdownTimeout = SslProtocol.DefaultShutdownTimeout,
        CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        CheckStreamSocket(socket);
        ArgumentNullException.ThrowIfNull(ssl);
        SslProtocol.CheckTimeout(handshakeTimeout, nameof(handshakeTimeout));
        SslProtocol.CheckTimeout(shutdownTimeout, nameof(shutdownTimeout));
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        socket.Blocking = false;
        bool tcp = socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6;
        return CloseIfCancelPending(await StartSslTransportAsync(socket, protocolFactory, tcp, null, ssl, handshakeTimeout, shutdownTimeout));
    }

    /// <summary>Joins a connected socket to a new protocol through <see cref="MakeSslTransport"/>, waiting for the handshake.</summary>
    private LoopTask<(ITransport, TProtocol)> StartSslTransportAsync<TProtocol>(Socket socket, Func<TProtocol> protocolFactory, bool noDelay,
        SslClientAuthenticationOptions? clientOptions, SslServerAuthenticationOptions? serverOptions, double handshakeTimeout, double shutdownTimeout)
        where TProtocol : IBaseProtocol =>
        StartTransportAsync<ITransport, TProtocol, (bool, SslClientAuthenticationOptions?, SslServerAuthenticationOptions?, double, double)>(
            socket, protocolFactory, (noDelay, clientOptions, serverOptions, handshakeTimeout, shutdownTimeout),
            static (loop, socket, protocol, s, waiter) =>
            {
                if (s.Item1)
                {
                    socket.NoDelay = true;
                }

                return loop.MakeSslTransport(socket, protocol, s.Item2, s.Item3, waiter, s.Item4, s.Item5, null);
            });

    /// <summary>
    /// Checks the TLS timeouts of a call: positive, and given only with TLS (asyncio's
    /// "ssl_handshake_timeout is only meaningful with ssl").
    /// </summary>
    internal static void CheckSslArguments(bool ssl, double handshakeTimeout, double shutdownTimeout)
    {
        if (!ssl)
        {
            if (handshakeTimeout != SslProtocol.DefaultHandshakeTimeout)
            {
                throw new ArgumentException("SslHandshakeTimeout is only meaningful with Ssl: set the Ssl options, or leave the timeout at its default.", nameof(handshakeTimeout));
            }

            if (shutdownTimeout != SslProtocol.DefaultShutdownTimeout)
            {
                throw new ArgumentException("SslShutdownTimeout is only meaningful with Ssl: set the Ssl options, or leave the timeout at its default.", nameof(shutdownTimeout));
            }

            return;
        }

        SslProtocol.CheckTimeout(handshakeTimeout, "SslHandshakeTimeout");
        SslProtocol.CheckTimeout(shutdownTimeout, "SslShutdownTimeout");
    }

    /// <summary>
    /// The client options to handshake with: the caller's, or a copy naming <paramref name="host"/>
    /// when they name no server (the caller's object is never changed).
    /// </summary>
    internal static SslClientAuthenticationOptions ClientOptionsFor(SslClientAuthenticationOptions options, string? host)
    {
        if (!string.IsNullOrEmpty(options.TargetHost))
        {
            return options;
        }

        if (string.IsNullOrEmpty(host))
        {
            throw new ArgumentException(
                "A TLS connection over a given socket or a UNIX socket has no host name to verify: set SslClientAuthenticationOptions.TargetHost.", nameof(options));
        }

        var copy = SslOptionsCopy.Of(options);
        copy.TargetHost = host;
        return copy;
    }

    /// <summary>
    /// A server's TLS options, with the certificate's context made once for the server rather than
    /// once per handshake (SslStream builds the chain each time it is given a bare certificate).
    /// </summary>
    private static SslServerAuthenticationOptions ServerOptionsFor(SslServerAuthenticationOptions options)
    {
        if (options.ServerCertificateContext is not null || options.ServerCertificateSelectionCallback is not null
            || options.ServerCertificate is not X509Certificate2 { HasPrivateKey: true } certificate)
        {
            return options;
        }

        var copy = SslOptionsCopy.Of(options);
        copy.ServerCertificateContext = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true);
        copy.ServerCertificate = null;
        return copy;
    }

    /// <summary>A server's protocol factory with TLS between each connection and its protocol.</summary>
    internal Func<IBaseProtocol> WrapServerFactory(Func<IBaseProtocol> protocolFactory, ServerOptions options)
    {
        CheckSslArguments(options.Ssl is not null, options.SslHandshakeTimeout, options.SslShutdownTimeout);
        if (options.Ssl is not { } ssl)
        {
            return protocolFactory;
        }

        var serverOptions = ServerOptionsFor(ssl);
        double handshake = options.SslHandshakeTimeout, shutdown = options.SslShutdownTimeout;
        return () => new SslProtocol(this, NewProtocol(protocolFactory), null, serverOptions, null, handshake, shutdown, callConnectionMade: true);
    }
}
