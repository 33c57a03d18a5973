using System;
using System.Buffers;
using System.IO;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Tulip.Diagnostics;

namespace Tulip;

/// <summary>
/// TLS over any stream transport: asyncio's <c>sslproto.SSLProtocol</c>. It is the protocol of the
/// transport beneath (a socket, a pipe, an in-memory transport, another TLS transport), runs .NET's
/// <see cref="SslStream"/> over a memory BIO that it feeds from that transport, and gives the
/// application protocol a TLS transport of its own (<see cref="AppTransport"/>).
/// </summary>
/// <remarks>
/// <para>
/// The loops use it for every TLS connection (<see cref="ConnectionOptions.Ssl"/>,
/// <see cref="ServerOptions.Ssl"/>, <see cref="IEventLoop.StartTlsAsync(ITransport, IBaseProtocol, SslClientAuthenticationOptions, double, double, System.Threading.CancellationToken)"/>);
/// make one yourself to put TLS over a transport a loop did not make, such as Tulip.Testing's
/// <c>ConnectedPair</c>: give it to the transport as its protocol, and it handshakes when the transport
/// calls <see cref="ConnectionMade"/>.
/// </para>
/// <para>
/// The order the application protocol sees is the PEP's: <see cref="IBaseProtocol.ConnectionMade"/>
/// with <see cref="AppTransport"/> once the handshake has finished (then the waiter completes), data,
/// <c>EofReceived</c> when the peer sent close_notify, and <see cref="IBaseProtocol.ConnectionLost"/>
/// after the transport beneath is gone. A handshake that fails (a certificate refused, a wrong host, a
/// protocol mismatch, garbage, the connection lost, the timeout) fails the waiter with an
/// <see cref="AuthenticationException"/> saying which, closes the transport beneath, and calls nothing
/// on the application protocol; without a waiter (a server's connection) it is logged once, on one line.
/// </para>
/// <para>
/// Closing: <see cref="IBaseTransport.Close"/> on the TLS transport sends what is buffered, then
/// close_notify, waits up to the shutdown timeout for the peer's, and closes the transport beneath; the
/// application protocol's ConnectionLost gets null, or <see cref="TimeoutError"/> when the peer never
/// answered. The peer's close_notify calls the application's <c>EofReceived</c> (what it returns does
/// not matter: TLS cannot half-close) and then closes the same way. The transport beneath ending with
/// no close_notify is a truncation: ConnectionLost gets <see cref="SslTruncationException"/>.
/// Application data after the peer's close_notify, or after our <c>Close</c>, is dropped.
/// </para>
/// <para>
/// Flow control crosses both layers: writes are encrypted at once while the transport beneath takes
/// them, and kept as plaintext while it is paused (or before the handshake has finished); the
/// application protocol is paused while the TLS transport's buffer (that plaintext plus the transport
/// beneath's) is above its high-water mark. Pausing reading on the TLS transport pauses reading beneath.
/// </para>
/// <para>
/// Renegotiation: a TLS 1.2 peer's renegotiation request is handled by <see cref="SslStream"/> inside
/// the read path when the options allow it (<see cref="SslClientAuthenticationOptions.AllowRenegotiation"/>,
/// true by default for clients), and fails the connection with an <see cref="IOException"/> otherwise;
/// it never stalls the loop. TLS 1.3 has no renegotiation.
/// </para>
/// <para>
/// Threads: everything runs on the loop thread. The stream's operations complete inline when the
/// transport delivers bytes, so decrypting costs no thread hop; a completion that ever arrives on another
/// thread is handed to the loop with <see cref="IEventLoop.CallSoonThreadSafe{TState}"/>.
/// </para>
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The SslStream and its BIO belong to the connection: ConnectionLost disposes them, as a transport's socket is closed after ConnectionLost.")]
public sealed partial class SslProtocol : IBufferedProtocol, IProtocol
{
    private enum State
    {
        Unstarted,
        Handshaking,
        Wrapped,
        Flushing,
        ShuttingDown,
        Closed,
    }

    private enum ReadState
    {
        Idle,
        ZeroPending,
        Ready,
        DataPending,
    }

    private const int ReadBufferSize = 16 * 1024;
    private const int DroppedWriteLogThreshold = 5;

    private readonly IEventLoop _loop;
    private readonly BaseEventLoop? _baseLoop;
    private readonly SslClientAuthenticationOptions? _clientOptions;
    private readonly SslServerAuthenticationOptions? _serverOptions;
    private readonly double _handshakeTimeout;
    private readonly double _shutdownTimeout;
    private readonly bool _callConnectionMade;
    private readonly SslBio _bio;
    private readonly SslStream _ssl;
    private readonly SslTransport _appTransport;
    private readonly WriteFlowControl _flow;
    private readonly Action _onHandshakeDone;
    private readonly Action _onReadDone;
    private readonly Action _onShutdownSent;

    private IBaseProtocol _app;
    private Future<VoidResult>? _waiter;
    private ITransport? _transport;
    private State _state;
    private bool _appConnected;
    private bool _closeRequested;
    private bool _peerClosed;
    private Exception? _lostError;
    private TimerHandle? _handshakeTimer;
    private TimerHandle? _shutdownTimer;
    private Task? _handshake;
    private Task? _shutdown;
    private int _droppedWrites;

    // Plaintext written while the handshake runs or the transport beneath is paused.
    private byte[]? _backlog;
    private int _backlogStart;
    private int _backlogEnd;
    private bool _belowPaused;

    private bool _appReadPaused;
    private ReadState _readState;
    private byte[]? _readBuffer;
    private bool _inReadLoop;
    private bool _readAgain;
    private ConfiguredValueTaskAwaitable<int>.ConfiguredValueTaskAwaiter _readAwaiter;

    /// <summary>
    /// Makes the client side of a TLS connection for <paramref name="appProtocol"/>; it handshakes when
    /// the transport beneath calls <see cref="ConnectionMade"/>.
    /// </summary>
    /// <param name="loop">The loop the transport beneath runs on.</param>
    /// <param name="appProtocol">The application's protocol: it gets <see cref="AppTransport"/> in its ConnectionMade once the handshake has finished.</param>
    /// <param name="options">What to verify and offer. <see cref="SslClientAuthenticationOptions.TargetHost"/> is the
    /// name the server's certificate must carry (and the SNI sent); the certificate is verified against the
    /// system's trust store unless the options say otherwise. The object is read at the handshake, not kept changing.</param>
    /// <param name="waiter">Null, or a future completed once the application's ConnectionMade has returned, or failed
    /// with the handshake's <see cref="AuthenticationException"/>.</param>
    /// <param name="handshakeTimeout">Seconds the handshake may take before the connection is aborted (asyncio's 60 by default).</param>
    /// <param name="shutdownTimeout">Seconds a close waits for the peer's close_notify before aborting (asyncio's 30 by default).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A timeout is not a positive number of seconds.</exception>
    public SslProtocol(IEventLoop loop, IBaseProtocol appProtocol, SslClientAuthenticationOptions options, Future<VoidResult>? waiter = null,
        double handshakeTimeout = DefaultHandshakeTimeout, double shutdownTimeout = DefaultShutdownTimeout)
        : this(loop, appProtocol, options ?? throw new ArgumentNullException(nameof(options)), null, waiter, handshakeTimeout, shutdownTimeout, true)
    {
    }

    /// <summary>
    /// Makes the server side of a TLS connection for <paramref name="appProtocol"/>; it handshakes when
    /// the transport beneath calls <see cref="ConnectionMade"/>.
    /// </summary>
    /// <param name="loop">The loop the transport beneath runs on.</param>
    /// <param name="appProtocol">The application's protocol: it gets <see cref="AppTransport"/> in its ConnectionMade once the handshake has finished.</param>
    /// <param name="options">The certificate (or a selection callback, for SNI), client-certificate policy, ALPN protocols.</param>
    /// <param name="waiter">Null, or a future completed once the application's ConnectionMade has returned, or failed
    /// with the handshake's <see cref="AuthenticationException"/>. Without one a failed handshake is logged.</param>
    /// <param name="handshakeTimeout">Seconds the handshake may take before the connection is aborted (60 by default).</param>
    /// <param name="shutdownTimeout">Seconds a close waits for the peer's close_notify before aborting (30 by default).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A timeout is not a positive number of seconds.</exception>
    public SslProtocol(IEventLoop loop, IBaseProtocol appProtocol, SslServerAuthenticationOptions options, Future<VoidResult>? waiter = null,
        double handshakeTimeout = DefaultHandshakeTimeout, double shutdownTimeout = DefaultShutdownTimeout)
        : this(loop, appProtocol, null, options ?? throw new ArgumentNullException(nameof(options)), waiter, handshakeTimeout, shutdownTimeout, true)
    {
    }

    internal SslProtocol(IEventLoop loop, IBaseProtocol appProtocol, SslClientAuthenticationOptions? clientOptions, SslServerAuthenticationOptions? serverOptions,
        Future<VoidResult>? waiter, double handshakeTimeout, double shutdownTimeout, bool callConnectionMade)
    {
        ArgumentNullException.ThrowIfNull(loop);
        ArgumentNullException.ThrowIfNull(appProtocol);
        CheckTimeout(handshakeTimeout, nameof(handshakeTimeout));
        CheckTimeout(shutdownTimeout, nameof(shutdownTimeout));
        _loop = loop;
        _baseLoop = loop as BaseEventLoop;
        _loopThread = Environment.CurrentManagedThreadId;
        _app = appProtocol;
        _clientOptions = clientOptions;
        _serverOptions = serverOptions;
        _waiter = waiter;
        _handshakeTimeout = handshakeTimeout;
        _shutdownTimeout = shutdownTimeout;
        _callConnectionMade = callConnectionMade;
        _bio = new SslBio(this);
        _ssl = new SslStream(_bio, leaveInnerStreamOpen: true);
        _appTransport = new SslTransport(this);
        _flow = new WriteFlowControl(loop, _appTransport);
        _onHandshakeDone = OnHandshakeDone;
        _onReadDone = OnReadDone;
        _onShutdownSent = OnShutdownSent;
    }

    /// <summary>asyncio's default handshake timeout: 60 seconds.</summary>
    public const double DefaultHandshakeTimeout = 60;

    /// <summary>asyncio's default shutdown timeout: 30 seconds.</summary>
    public const double DefaultShutdownTimeout = 30;

    /// <summary>The TLS transport the application protocol talks to.</summary>
    public ITransport AppTransport => _appTransport;

    /// <summary>True for the server side of the connection.</summary>
    public bool IsServerSide => _serverOptions is not null;

    /// <summary>The application protocol.</summary>
    internal IBaseProtocol App => _app;

    internal SslStream Stream => _ssl;

    internal object Options => (object?)_clientOptions ?? _serverOptions!;

    internal bool IsHandshakeDone => _state >= State.Wrapped && _handshake is { IsCompletedSuccessfully: true };

    internal bool IsClosingForApp => _closeRequested || _state == State.Closed;

    internal bool IsAppReading => !_appReadPaused && !IsClosingForApp;

    internal ITransport? Beneath => _transport;

    internal (int Low, int High) WriteLimits => _flow.Limits;

    internal int AppBufferSize => (_backlogEnd - _backlogStart) + (_transport?.GetWriteBufferSize() ?? 0);

    internal static void CheckTimeout(double seconds, string paramName)
    {
        if (!(seconds > 0) || double.IsNaN(seconds))
        {
            throw new ArgumentOutOfRangeException(paramName, seconds,
                "A TLS timeout is a positive number of seconds (asyncio's defaults: 60 for the handshake, 30 for the shutdown).");
        }
    }

    // ---- the transport beneath calls these ------------------------------------------------------

    /// <summary>The transport beneath is connected: the handshake starts.</summary>
    /// <exception cref="InvalidOperationException">The transport is not a stream transport, or this protocol was connected already.</exception>
    public void ConnectionMade(IBaseTransport transport)
    {
        ArgumentNullException.ThrowIfNull(transport);
        if (transport is not ITransport stream)
        {
            throw new InvalidOperationException($"TLS needs a stream transport (ITransport) beneath it; got {transport.GetType().Name}.");
        }

        if (_state != State.Unstarted)
        {
            throw new InvalidOperationException("This SslProtocol is connected already: make one per connection.");
        }

        _transport = stream;
        if (_closeRequested)
        {
            // The TLS transport was closed before the connection existed.
            _state = State.Handshaking;
            HandshakeFailed(new AuthenticationException("The TLS transport was closed before the handshake started."), abort: true);
            return;
        }

        _state = State.Handshaking;
        _loopThread = Environment.CurrentManagedThreadId;
        _handshakeTimer = _loop.CallLater(_handshakeTimeout, static self => self.OnHandshakeTimeout(), this);
        // The stream runs the handshake inline, here and wherever the BIO completes its reads (no
        // context current: NoSyncContextScope), so the first flight is written before this returns.
        Task task;
        try
        {
            using var noContext = new NoSyncContextScope();
            task = _clientOptions is not null
                ? _ssl.AuthenticateAsClientAsync(_clientOptions, default)
                : _ssl.AuthenticateAsServerAsync(_serverOptions!, default);
        }
        catch (Exception ex)
        {
            HandshakeFailed(ex, abort: false);
            return;
        }

        _handshake = task;
        FlushOutbox();
        if (task.IsCompleted)
        {
            OnHandshakeDone();
        }
        else
        {
            task.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onHandshakeDone);
        }
    }

    /// <summary>Room for the transport beneath to receive into.</summary>
    public Memory<byte> GetBuffer(int sizeHint) => _bio.GetBuffer(sizeHint);

    /// <summary>The transport beneath received <paramref name="bytesWritten"/> bytes into the last buffer.</summary>
    public void BufferUpdated(int bytesWritten)
    {
        if (_state == State.Closed)
        {
            return;
        }

        _bio.Commit(bytesWritten);
    }

    /// <summary>The transport beneath received <paramref name="data"/>.</summary>
    public void DataReceived(ReadOnlySpan<byte> data)
    {
        if (_state == State.Closed)
        {
            return;
        }

        _bio.Feed(data);
    }

    /// <summary>The transport beneath reached its end: without close_notify first, a truncation.</summary>
    /// <returns>True: the TLS layer closes the transport beneath itself, once it has read what came before the end.</returns>
    public bool EofReceived()
    {
        if (_state != State.Closed)
        {
            _bio.FeedEof();
        }

        return true;
    }

    /// <summary>The transport beneath is gone: the application protocol loses its connection (if it had one).</summary>
    public void ConnectionLost(Exception? exception)
    {
        var previous = _state;
        _state = State.Closed;
        _handshakeTimer?.Cancel();
        _shutdownTimer?.Cancel();
        _bio.Fail(exception ?? new IOException("The connection beneath the TLS layer was closed."));
        if (previous is State.Handshaking or State.Unstarted)
        {
            var error = new AuthenticationException(
                "TLS handshake failed: the connection was lost before it finished" + (exception is null ? "." : $": {exception.Message}"), exception);
            if (_waiter is { } waiter)
            {
                waiter.TrySetException(error);
            }
        }

        if (_appConnected)
        {
            _appConnected = false;
            try
            {
                _app.ConnectionLost(_lostError ?? exception);
            }
            catch (Exception ex)
            {
                _loop.CallExceptionHandler(new ExceptionContext("Exception in protocol.ConnectionLost()")
                {
                    Exception = ex,
                    Transport = _appTransport,
                    Protocol = _app,
                });
            }
        }

        ReleaseResources();
        EndDisposeWait();
    }

    /// <summary>The transport beneath's buffer is full: TLS keeps new writes as plaintext, and the application may be paused.</summary>
    public void PauseWriting()
    {
        _belowPaused = true;
        if (_appConnected)
        {
            _flow.MaybePause(AppBufferSize);
        }
    }

    /// <summary>The transport beneath drained: the plaintext kept is encrypted and sent, and the application may be resumed.</summary>
    public void ResumeWriting()
    {
        _belowPaused = false;
        FlushBacklog();
        if (_appConnected)
        {
            _flow.MaybeResume(AppBufferSize);
        }

        if (_state == State.Flushing)
        {
            ContinueShutdown();
        }
    }

    // ---- the handshake -------------------------------------------------------------------------

    // The loop's thread, recorded when the connection is made (any IEventLoop runs its callbacks on one thread).
    private int _loopThread;

    private bool OnLoopThread => Environment.CurrentManagedThreadId == _loopThread;

    /// <summary>A completion that arrived on another thread goes to the loop; a loop closed meanwhile has no connection left to tell.</summary>
    private void Post(Action<SslProtocol> callback)
    {
        try
        {
            _loop.CallSoonThreadSafe(callback, this);
        }
        catch (InvalidOperationException) when (_loop.IsClosed)
        {
            // the loop is gone, and the connection with it
        }
    }

    private void OnHandshakeDone()
    {
        if (!OnLoopThread)
        {
            Post(static self => self.OnHandshakeDone());
            return;
        }


        var task = _handshake!;
        if (_state != State.Handshaking)
        {
            _ = task.Exception; // observed: the failure was handled already (timeout, close, lost)
            return;
        }

        if (!task.IsCompletedSuccessfully)
        {
            HandshakeFailed(task.Exception?.InnerException ?? new OperationCanceledException("The TLS handshake was cancelled."), abort: false);
            return;
        }

        _handshakeTimer?.Cancel();
        _handshakeTimer = null;
        _state = State.Wrapped;
        Diagnostics.TulipMetrics.HandshakeFinished(_loop, IsServerSide, null);
        FlushBacklog();
        _appConnected = true;
        if (_callConnectionMade)
        {
            try
            {
                _app.ConnectionMade(_appTransport);
            }
            catch (Exception ex)
            {
                FatalError(ex, "Exception in protocol.ConnectionMade() of a TLS connection");
                _waiter?.TrySetException(ex);
                return;
            }
        }

        _waiter?.TrySetResult(default);
        if (_state != State.Wrapped)
        {
            return;
        }

        if (_appReadPaused)
        {
            _transport!.PauseReading();
        }

        _flow.MaybePause(AppBufferSize);
        ReadLoop();
    }

    private void OnHandshakeTimeout()
    {
        _handshakeTimer = null;
        if (_state == State.Handshaking)
        {
            HandshakeFailed(new AuthenticationException(
                $"TLS handshake did not finish within {_handshakeTimeout} seconds: the connection was aborted.", new TimeoutError()), abort: true);
        }
    }

    private void HandshakeFailed(Exception exception, bool abort)
    {
        if (_state != State.Handshaking)
        {
            return;
        }

        _state = State.Closed;
        _handshakeTimer?.Cancel();
        _handshakeTimer = null;
        var error = AsHandshakeError(exception);
        Diagnostics.TulipMetrics.HandshakeFinished(_loop, IsServerSide, error);
        if (_waiter is { } waiter)
        {
            waiter.TrySetException(error);
        }
        else
        {
            LogHandshakeFailure(error);
        }

        // The stream may have written an alert: Close lets it reach the peer; a timeout aborts.
        var transport = _transport!;
        _bio.Fail(new IOException("The TLS handshake failed.", error));
        if (abort)
        {
            transport.Abort();
        }
        else
        {
            transport.Close();
        }
    }

    private AuthenticationException AsHandshakeError(Exception exception)
    {
        if (exception is AuthenticationException authentication)
        {
            return authentication;
        }

        if (_bio.EofDelivered || _bio.EofReceived)
        {
            return new AuthenticationException("TLS handshake failed: the peer closed the connection before the handshake finished.", exception);
        }

        return new AuthenticationException($"TLS handshake failed: {exception.Message}", exception);
    }

    private void LogHandshakeFailure(AuthenticationException error)
    {
        if (_baseLoop?.Logger is { } logger && logger.IsEnabled(LogLevel.Information))
        {
            object? peer = null;
            try
            {
                peer = _transport?.GetExtraInfo("peername");
            }
            catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException or System.Net.Sockets.SocketException)
            {
                // the connection is gone: log without the address
            }

            Log.TlsHandshakeFailed(logger, IsServerSide ? "client" : "server", peer ?? "(unknown)", error.Message);
        }
    }

    // ---- writing ---------------------------------------------------------------------------------

    internal void AppWrite(ReadOnlySpan<byte> data)
    {
        if (_closeRequested || _state >= State.Flushing)
        {
            DropWrite();
            return;
        }

        if (data.IsEmpty)
        {
            return;
        }

        if (_state != State.Wrapped || _belowPaused || _backlog is not null)
        {
            WriteBacklog.Append(ref _backlog, ref _backlogStart, ref _backlogEnd, data);
        }
        else
        {
            _ssl.Write(data);
        }

        if (_appConnected)
        {
            _flow.MaybePause(AppBufferSize);
        }
    }

    internal void AppWriteLines(System.Collections.Generic.IEnumerable<ReadOnlyMemory<byte>> data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (_closeRequested || _state >= State.Flushing)
        {
            DropWrite();
            return;
        }

        // One buffer, so small lines share records rather than costing one record (and one send) each.
        byte[]? joined = null;
        int start = 0, end = 0;
        try
        {
            foreach (var chunk in data)
            {
                if (!chunk.IsEmpty)
                {
                    WriteBacklog.Append(ref joined, ref start, ref end, chunk.Span);
                }
            }

            if (joined is not null)
            {
                AppWrite(joined.AsSpan(start, end - start));
            }
        }
        finally
        {
            WriteBacklog.Release(ref joined, ref start, ref end);
        }
    }

    /// <summary>The stream's ciphertext (records, alerts, handshake messages) to the transport beneath.</summary>
    internal void WriteBeneath(ReadOnlySpan<byte> data)
    {
        if (!OnLoopThread)
        {
            // A step the stream took on another thread (an asynchronous TLS engine, such as Apple's):
            // keep the bytes, in order, for the loop thread to send.
            bool post;
            lock (_outboxGate)
            {
                WritesFromOtherThreads++;
                post = _outbox is null;
                _outbox ??= new System.Collections.Generic.List<byte[]>();
                _outbox.Add(data.ToArray());
            }

            if (post)
            {
                Post(static self => self.FlushOutbox());
            }

            return;
        }

        FlushOutbox();
        if (_state == State.Closed || _transport is not { } transport)
        {
            return;
        }

        transport.Write(data);
    }

    private readonly object _outboxGate = new();

    /// <summary>How many writes of ciphertext came from a thread other than the loop's (tests: 0 on this platform's TLS engine).</summary>
    internal int WritesFromOtherThreads { get; private set; }

    private System.Collections.Generic.List<byte[]>? _outbox;

    private void FlushOutbox()
    {
        // Every write of ciphertext from the loop thread comes here first: nothing was queued by
        // another thread in the usual case, so look without the lock (a queue set after this read is
        // flushed by the call its writer posted).
        if (System.Threading.Volatile.Read(ref _outbox) is null)
        {
            return;
        }

        System.Collections.Generic.List<byte[]>? outbox;
        lock (_outboxGate)
        {
            outbox = _outbox;
            _outbox = null;
        }

        if (outbox is null || _state == State.Closed || _transport is not { } transport)
        {
            return;
        }

        foreach (var chunk in outbox)
        {
            transport.Write(chunk);
        }
    }

    private void FlushBacklog()
    {
        if (_state is not (State.Wrapped or State.Flushing))
        {
            return;
        }

        while (!_belowPaused && _backlog is not null && _backlogEnd > _backlogStart)
        {
            int count = Math.Min(_backlogEnd - _backlogStart, 256 * 1024);
            int at = _backlogStart;
            _backlogStart += count;
            _ssl.Write(_backlog.AsSpan(at, count));
        }

        if (_backlog is not null && _backlogEnd == _backlogStart)
        {
            WriteBacklog.Release(ref _backlog, ref _backlogStart, ref _backlogEnd);
        }
    }

    private void DropWrite()
    {
        if (++_droppedWrites == DroppedWriteLogThreshold && _baseLoop?.Logger is { } logger && logger.IsEnabled(LogLevel.Warning))
        {
            Log.TlsWriteAfterClose(logger, DroppedWriteLogThreshold);
        }
    }

    internal void SetWriteLimits(int? high, int? low)
    {
        _flow.SetLimits(high, low, AppBufferSize);
        if (_transport is { } transport)
        {
            var (l, h) = _flow.Limits;
            transport.SetWriteBufferLimits(h, l);
        }
    }

    // ---- reading ---------------------------------------------------------------------------------

    internal void PauseAppReading()
    {
        if (_appReadPaused || IsClosingForApp)
        {
            return;
        }

        _appReadPaused = true;
        if (_state == State.Wrapped)
        {
            _transport!.PauseReading();
        }
    }

    internal void ResumeAppReading()
    {
        if (!_appReadPaused || IsClosingForApp)
        {
            return;
        }

        _appReadPaused = false;
        if (_state == State.Wrapped)
        {
            _transport!.ResumeReading();
            _loop.CallSoon(static self => self.ReadLoop(), this);
        }
    }

    /// <summary>Bytes received before the upgrade (a plain reader's read-ahead): they come first.</summary>
    internal void FeedInitial(ReadOnlySpan<byte> data) => _bio.Feed(data);

    private bool Discarding => _state is State.Flushing or State.ShuttingDown;

    private void ReadLoop()
    {
        if (_inReadLoop)
        {
            _readAgain = true;
            return;
        }

        _inReadLoop = true;
        try
        {
            do
            {
                _readAgain = false;
                ReadSome();
            }
            while (_readAgain);
        }
        finally
        {
            _inReadLoop = false;
        }
    }

    private void ReadSome()
    {
        while (true)
        {
            if (_state is not (State.Wrapped or State.Flushing or State.ShuttingDown) || _peerClosed)
            {
                ReturnReadBuffer();
                return;
            }

            if (_state == State.Wrapped && _appReadPaused)
            {
                ReturnReadBuffer();
                return;
            }

            if (_readState == ReadState.Idle)
            {
                // A zero-byte read waits for data without holding a buffer (the stream's own idiom).
                ValueTask<int> zero;
                try
                {
                    zero = _ssl.ReadAsync(Memory<byte>.Empty);
                }
                catch (Exception ex)
                {
                    ReadFailed(ex);
                    return;
                }

                if (!zero.IsCompleted)
                {
                    ReturnReadBuffer();
                    _readState = ReadState.ZeroPending;
                    _readAwaiter = zero.ConfigureAwait(false).GetAwaiter();
                    _readAwaiter.UnsafeOnCompleted(_onReadDone);
                    return;
                }

                try
                {
                    zero.GetAwaiter().GetResult();
                }
                catch (Exception ex)
                {
                    ReadFailed(ex);
                    return;
                }

                _readState = ReadState.Ready;
                continue;
            }

            if (_readState != ReadState.Ready)
            {
                return; // an operation is pending; its completion goes on
            }

            _readBuffer ??= ArrayPool<byte>.Shared.Rent(ReadBufferSize);
            ValueTask<int> read;
            try
            {
                read = _ssl.ReadAsync(_readBuffer);
            }
            catch (Exception ex)
            {
                ReadFailed(ex);
                return;
            }

            if (!read.IsCompleted)
            {
                _readState = ReadState.DataPending;
                _readAwaiter = read.ConfigureAwait(false).GetAwaiter();
                _readAwaiter.UnsafeOnCompleted(_onReadDone);
                return;
            }

            int count;
            try
            {
                count = read.GetAwaiter().GetResult();
            }
            catch (Exception ex)
            {
                _readState = ReadState.Idle;
                ReadFailed(ex);
                return;
            }

            _readState = ReadState.Idle;
            if (!HandleRead(count))
            {
                return;
            }
        }
    }

    private void OnReadDone()
    {
        if (!OnLoopThread)
        {
            Post(static self => self.OnReadDone());
            return;
        }

        var was = _readState;
        int count = 0;
        Exception? error = null;
        try
        {
            count = _readAwaiter.GetResult();
        }
        catch (Exception ex)
        {
            error = ex;
        }

        _readAwaiter = default;
        _readState = was == ReadState.ZeroPending ? ReadState.Ready : ReadState.Idle;
        if (_state == State.Closed)
        {
            ReturnReadBuffer();
            return;
        }

        if (error is not null)
        {
            _readState = ReadState.Idle;
            ReadFailed(error);
            return;
        }

        if (was == ReadState.DataPending && !HandleRead(count))
        {
            return;
        }

        ReadLoop();
    }

    /// <summary>Delivers what a read returned; false when reading is over.</summary>
    private bool HandleRead(int count)
    {
        if (count == 0)
        {
            ReturnReadBuffer();
            OnReadEnd();
            return false;
        }

        if (Discarding)
        {
            return true; // after our close: dropped
        }

        try
        {
            Deliver(_readBuffer.AsSpan(0, count));
        }
        catch (Exception ex)
        {
            FatalError(ex, "Exception in the protocol's DataReceived()/BufferUpdated() of a TLS connection");
            return false;
        }

        return true;
    }

    private void Deliver(ReadOnlySpan<byte> data)
    {
        switch (_app)
        {
            case IBufferedProtocol buffered:
                while (!data.IsEmpty)
                {
                    var target = buffered.GetBuffer(data.Length).Span;
                    if (target.IsEmpty)
                    {
                        throw new InvalidOperationException("IBufferedProtocol.GetBuffer() returned an empty buffer.");
                    }

                    int n = Math.Min(target.Length, data.Length);
                    data[..n].CopyTo(target);
                    data = data[n..];
                    buffered.BufferUpdated(n);
                }

                break;
            case IProtocol stream:
                stream.DataReceived(data);
                break;
            default:
                throw new InvalidOperationException($"A TLS transport's protocol must be an IProtocol or an IBufferedProtocol; got {_app.GetType().Name}.");
        }
    }

    private void OnReadEnd()
    {
        if (_state is State.Flushing or State.ShuttingDown)
        {
            // The peer's close_notify (or its end) after ours: done.
            _peerClosed = true;
            if (_state == State.ShuttingDown && _shutdown is { IsCompleted: true })
            {
                CloseBeneath();
            }

            return;
        }

        if (_state != State.Wrapped)
        {
            return;
        }

        if (_bio.EofDelivered)
        {
            // The transport ended with no close_notify: a truncation, never a clean end.
            _lostError ??= new SslTruncationException();
            _closeRequested = true;
            _state = State.ShuttingDown;
            CloseBeneath();
            return;
        }

        // The peer's close_notify: the application hears of the end, then we answer and close.
        _peerClosed = true;
        try
        {
            switch (_app)
            {
                case IBufferedProtocol buffered:
                    buffered.EofReceived();
                    break;
                case IProtocol stream:
                    stream.EofReceived();
                    break;
            }
        }
        catch (Exception ex)
        {
            FatalError(ex, "Exception in protocol.EofReceived() of a TLS connection");
            return;
        }

        StartShutdown();
    }

    private void ReadFailed(Exception exception)
    {
        if (_state == State.Closed)
        {
            return;
        }

        if (_state is State.Flushing or State.ShuttingDown)
        {
            _peerClosed = true;
            CloseBeneath();
            return;
        }

        _lostError ??= exception;
        _state = State.ShuttingDown;
        _closeRequested = true;
        _transport!.Abort();
    }

    private void ReturnReadBuffer()
    {
        if (_readBuffer is not null && _readState != ReadState.DataPending)
        {
            ArrayPool<byte>.Shared.Return(_readBuffer);
            _readBuffer = null;
        }
    }

    // ---- closing ---------------------------------------------------------------------------------

    internal void AppClose()
    {
        if (_closeRequested)
        {
            return;
        }

        if (_state is State.Unstarted or State.Handshaking)
        {
            _closeRequested = true;
            if (_state == State.Handshaking)
            {
                HandshakeFailed(new AuthenticationException("The TLS transport was closed before the handshake finished."), abort: true);
            }

            return;
        }

        StartShutdown();
    }

    internal void AppAbort()
    {
        bool handshaking = _state is State.Unstarted or State.Handshaking;
        _closeRequested = true;
        if (handshaking)
        {
            if (_state == State.Handshaking)
            {
                HandshakeFailed(new AuthenticationException("The TLS transport was aborted before the handshake finished."), abort: true);
            }

            return;
        }

        if (_state != State.Closed)
        {
            ReleaseBacklog();
            _transport!.Abort();
        }
    }

    private void StartShutdown()
    {
        if (_state != State.Wrapped)
        {
            _closeRequested = true;
            return;
        }

        _closeRequested = true;
        _state = State.Flushing;
        _shutdownTimer = _loop.CallLater(_shutdownTimeout, static self => self.OnShutdownTimeout(), this);
        if (_appReadPaused)
        {
            // The peer's close_notify must be read; what comes before it is dropped.
            _transport!.ResumeReading();
        }

        ContinueShutdown();
        if (_state is State.Flushing or State.ShuttingDown && !_peerClosed)
        {
            ReadLoop();
        }
    }

    private void ContinueShutdown()
    {
        if (_state != State.Flushing)
        {
            return;
        }

        FlushBacklog();
        if (_backlog is not null)
        {
            return; // the transport beneath is paused: ResumeWriting goes on
        }

        _state = State.ShuttingDown;
        Task shutdown;
        try
        {
            using var noContext = new NoSyncContextScope();
            shutdown = _ssl.ShutdownAsync();
        }
        catch (Exception ex)
        {
            _shutdown = Task.FromException(ex);
            OnShutdownSent();
            return;
        }

        _shutdown = shutdown;
        if (shutdown.IsCompleted)
        {
            OnShutdownSent();
        }
        else
        {
            shutdown.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onShutdownSent);
        }
    }

    private void OnShutdownSent()
    {
        if (!OnLoopThread)
        {
            Post(static self => self.OnShutdownSent());
            return;
        }

        _ = _shutdown?.Exception; // observed: a close_notify that could not go out ends the connection the same way
        if (_state != State.ShuttingDown)
        {
            return;
        }

        if (_peerClosed || _shutdown is { IsCompletedSuccessfully: false } || _bio.EofReceived)
        {
            CloseBeneath();
        }
    }

    private void OnShutdownTimeout()
    {
        _shutdownTimer = null;
        if (_state is State.Flushing or State.ShuttingDown)
        {
            _lostError ??= new TimeoutError(
                $"The TLS shutdown did not finish within {_shutdownTimeout} seconds (the peer did not answer close_notify): the connection was aborted.");
            ReleaseBacklog();
            _transport!.Abort();
        }
    }

    private void CloseBeneath()
    {
        _shutdownTimer?.Cancel();
        _shutdownTimer = null;
        _transport?.Close();
    }

    private void FatalError(Exception exception, string message)
    {
        _loop.CallExceptionHandler(new ExceptionContext(message) { Exception = exception, Transport = _appTransport, Protocol = _app });
        _lostError ??= exception;
        _closeRequested = true;
        if (_state != State.Closed)
        {
            _state = State.ShuttingDown;
            ReleaseBacklog();
            _transport?.Abort();
        }
    }

    private void ReleaseBacklog() => WriteBacklog.Release(ref _backlog, ref _backlogStart, ref _backlogEnd);

    private void ReleaseResources()
    {
        ReleaseBacklog();
        ReturnReadBuffer();
        _bio.Release();
        try
        {
            _ssl.Dispose();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // disposing after the connection is gone: nothing to tell anyone
        }
    }

    internal void SetAppProtocol(IBaseProtocol protocol)
    {
        ArgumentNullException.ThrowIfNull(protocol);
        _app = protocol;
    }
}
