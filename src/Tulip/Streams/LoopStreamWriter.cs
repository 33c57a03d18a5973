using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Security;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip.Streams;

/// <summary>
/// Writes to a stream transport, with <see cref="DrainAsync"/> to wait while the transport's write
/// buffer is full: asyncio's <c>StreamWriter</c>. For the loop thread only.
/// </summary>
/// <remarks>
/// <see cref="Write"/> never waits: the transport sends at once or buffers. Call
/// <see cref="DrainAsync"/> after writing so a peer that does not read cannot make the buffer grow
/// without bound. <see cref="StartTlsAsync(SslClientAuthenticationOptions, double, double, CancellationToken)"/>
/// (asyncio's <c>start_tls</c>) swaps the transport for a TLS one under the same reader and protocol.
/// </remarks>
public sealed class LoopStreamWriter : IAsyncDisposable
{
    private readonly StreamReaderProtocol _protocol;
    private readonly LoopStreamReader? _reader;

    /// <summary>Makes a writer over <paramref name="transport"/>, whose protocol is <paramref name="protocol"/>.</summary>
    /// <param name="transport">The stream transport written to.</param>
    /// <param name="protocol">The transport's protocol: it tracks pauses and the close.</param>
    /// <param name="reader">The reader fed by the same protocol, whose error <see cref="DrainAsync"/> throws; may be null.</param>
    /// <exception cref="ArgumentNullException"><paramref name="transport"/> or <paramref name="protocol"/> is null.</exception>
    public LoopStreamWriter(ITransport transport, StreamReaderProtocol protocol, LoopStreamReader? reader)
    {
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(protocol);
        Transport = transport;
        _protocol = protocol;
        _reader = reader;
    }

    /// <summary>The transport written to: after <see cref="StartTlsAsync(SslClientAuthenticationOptions, double, double, CancellationToken)"/>, the TLS one.</summary>
    public ITransport Transport { get; private set; }

    /// <summary>True if the transport supports <see cref="WriteEof"/>.</summary>
    public bool CanWriteEof => Transport.CanWriteEof;

    /// <summary>True once the transport is closing or closed.</summary>
    public bool IsClosing => Transport.IsClosing;

    /// <summary>Writes <paramref name="data"/> (the transport sends it or buffers it); see <see cref="DrainAsync"/>.</summary>
    public void Write(ReadOnlySpan<byte> data) => Transport.Write(data);

    /// <summary>Writes every buffer of <paramref name="data"/> in order.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="data"/> is null.</exception>
    public void WriteLines(IEnumerable<ReadOnlyMemory<byte>> data)
    {
        ArgumentNullException.ThrowIfNull(data);
        Transport.WriteLines(data);
    }

    /// <summary>
    /// Upgrades the connection to TLS as its client (asyncio's <c>StreamWriter.start_tls</c>): waits for
    /// what was written to drain, then handshakes; from then on this writer, its reader and its protocol
    /// use the TLS transport (<see cref="Transport"/>). Bytes the reader had read ahead are the peer's first
    /// TLS records and go to the TLS layer, not to the reader.
    /// </summary>
    /// <param name="options">What to verify and offer; <see cref="SslClientAuthenticationOptions.TargetHost"/> is required.</param>
    /// <param name="handshakeTimeout">Seconds the handshake may take (60 by default).</param>
    /// <param name="shutdownTimeout">Seconds a close waits for the peer's close_notify (30 by default).</param>
    /// <param name="cancellationToken">Cancels the upgrade; the connection is then closed.</param>
    /// <remarks>A failed or cancelled upgrade closes the connection, and the reader, <see cref="DrainAsync"/> and
    /// <see cref="WaitClosedAsync"/> see it lost with the handshake's error (an <see cref="IOException"/> for a cancellation).</remarks>
    /// <exception cref="ArgumentException">No TargetHost.</exception>
    /// <exception cref="System.Security.Authentication.AuthenticationException">The handshake failed; the connection is closed.</exception>
    public LoopTask StartTlsAsync(SslClientAuthenticationOptions options, double handshakeTimeout = SslProtocol.DefaultHandshakeTimeout,
        double shutdownTimeout = SslProtocol.DefaultShutdownTimeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrEmpty(options.TargetHost))
        {
            throw new ArgumentException("start_tls as a client needs the server's name to verify: set SslClientAuthenticationOptions.TargetHost.", nameof(options));
        }

        SslProtocol.CheckTimeout(handshakeTimeout, nameof(handshakeTimeout));
        SslProtocol.CheckTimeout(shutdownTimeout, nameof(shutdownTimeout));
        return StartTlsCoreAsync(options, null, handshakeTimeout, shutdownTimeout, cancellationToken);
    }

    /// <summary>Upgrades the connection to TLS as its server; otherwise as the client form.</summary>
    /// <param name="options">The certificate (or selection callback), client-certificate policy, ALPN protocols.</param>
    /// <param name="handshakeTimeout">Seconds the handshake may take (60 by default).</param>
    /// <param name="shutdownTimeout">Seconds a close waits for the peer's close_notify (30 by default).</param>
    /// <param name="cancellationToken">Cancels the upgrade; the connection is then closed.</param>
    /// <exception cref="System.Security.Authentication.AuthenticationException">The handshake failed; the connection is closed.</exception>
    public LoopTask StartTlsAsync(SslServerAuthenticationOptions options, double handshakeTimeout = SslProtocol.DefaultHandshakeTimeout,
        double shutdownTimeout = SslProtocol.DefaultShutdownTimeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        SslProtocol.CheckTimeout(handshakeTimeout, nameof(handshakeTimeout));
        SslProtocol.CheckTimeout(shutdownTimeout, nameof(shutdownTimeout));
        return StartTlsCoreAsync(null, options, handshakeTimeout, shutdownTimeout, cancellationToken);
    }

    private async LoopTask StartTlsCoreAsync(SslClientAuthenticationOptions? client, SslServerAuthenticationOptions? server,
        double handshakeTimeout, double shutdownTimeout, CancellationToken cancellationToken)
    {
        await DrainAsync(cancellationToken);
        var old = Transport;
        var readAhead = _reader is null ? [] : _reader.TakeReadAhead();
        ITransport upgraded;
        try
        {
            upgraded = await _protocol.LoopCore.StartTlsCoreAsync(old, _protocol, client, server, handshakeTimeout, shutdownTimeout, readAhead, cancellationToken);
        }
        catch (Exception ex) when (!ReferenceEquals(old.GetProtocol(), _protocol))
        {
            // The upgrade failed after the swap: the transport is closed under the TLS layer, which tells
            // no application protocol of a connection lost in its handshake (asyncio's). This one was
            // connected, so its reader, DrainAsync, WaitClosedAsync and DisposeAsync would wait forever: end them.
            _protocol.ConnectionLost(ex is OperationCanceledException
                ? new IOException("The TLS upgrade was cancelled: the connection is closed.", ex)
                : ex);
            throw;
        }

        Transport = upgraded;
        _protocol.ReplaceTransport(upgraded);
        _reader?.MoveTransport(upgraded);
    }

    /// <summary>Closes the write side once what is buffered is sent (half-close); reading goes on.</summary>
    /// <exception cref="NotSupportedException">The transport cannot (see <see cref="CanWriteEof"/>).</exception>
    public void WriteEof() => Transport.WriteEof();

    /// <summary>
    /// Waits until the transport's write buffer is below its high-water mark: done at once (no
    /// allocation) when writing is not paused.
    /// </summary>
    /// <remarks>
    /// As asyncio's <c>drain()</c>: the reader's error (the connection's error) is thrown first; when
    /// the transport is closing, it yields to the loop once first so the connection's loss can be
    /// seen; once the connection is lost, it throws a <see cref="System.Net.Sockets.SocketException"/>
    /// (ConnectionReset, "Connection lost"). Await the result once, right away (see <see cref="ValueFuture{T}"/>).
    /// </remarks>
    public ValueFuture<VoidResult> DrainAsync(CancellationToken cancellationToken = default)
    {
        if (_reader?.Exception is { } exception)
        {
            var failed = new Future<VoidResult>(_protocol.LoopCore);
            if (exception is OperationCanceledException)
            {
                failed.Cancel(exception.Message);
            }
            else
            {
                failed.SetException(exception);
            }

            return new ValueFuture<VoidResult>(failed);
        }

        if (cancellationToken.IsCancellationRequested)
        {
            var cancelled = new Future<VoidResult>(_protocol.LoopCore);
            cancelled.Cancel();
            return new ValueFuture<VoidResult>(cancelled);
        }

        if (Transport.IsClosing)
        {
            return new ValueFuture<VoidResult>(DrainClosingAsync(cancellationToken));
        }

        return _protocol.DrainHelper(cancellationToken);
    }

    /// <summary>Closes the transport (what is buffered is still sent); see <see cref="WaitClosedAsync"/>.</summary>
    public void Close() => Transport.Close();

    /// <summary>
    /// Waits until the connection is lost; throws its error, if it broke. Cancelling the wait leaves
    /// the connection alone (the close is shielded from the cancellation).
    /// </summary>
    public async LoopTask WaitClosedAsync(CancellationToken cancellationToken = default)
    {
        await Tasks.Shield(_protocol.Closed, cancellationToken);
    }

    /// <summary>The transport's optional information ("peername", "sockname", "socket", ...), or <paramref name="defaultValue"/>.</summary>
    public object? GetExtraInfo(string name, object? defaultValue = null) => Transport.GetExtraInfo(name, defaultValue);

    /// <summary>
    /// Closes and waits until the connection is lost. The connection's error, if it broke, is not
    /// thrown here (<see cref="WaitClosedAsync"/> throws it).
    /// </summary>
    public ValueTask DisposeAsync()
    {
        Close();
        var closed = _protocol.Closed;
        if (closed.Done)
        {
            return default;
        }

        return new ValueTask(WaitQuietlyAsync(closed).AsTask());
    }

    /// <summary>Describes the writer.</summary>
    public override string ToString() => _reader is null ? $"<LoopStreamWriter transport={Transport}>" : $"<LoopStreamWriter transport={Transport} reader={_reader}>";

    private static async LoopTask WaitQuietlyAsync(Future<VoidResult> closed)
    {
        try
        {
            await Tasks.Shield(closed);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The error was the connection's: the close itself is done.
        }
    }

    private async LoopTask<VoidResult> DrainClosingAsync(CancellationToken cancellationToken)
    {
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);

        // Let ConnectionLost run first, so a loop of Write + DrainAsync sees the connection's end.
        await Tasks.Yield();
        await _protocol.DrainHelper(default);
        return default;
    }
}
