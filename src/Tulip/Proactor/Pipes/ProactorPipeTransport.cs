using System;
using System.IO;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Tulip;

/// <summary>
/// What the proactor's two pipe transports share (asyncio's <c>_ProactorBasePipeTransport</c> for
/// pipes): the caller's handle, kept alive (add-ref'd) while the transport lives, the non-owning
/// <see cref="Socket"/> over its fd that the operations run on (see <see cref="ProactorPipeTransportFactory"/>
/// for why), the protocol, and the shared <see cref="TransportLifecycle"/>.
/// </summary>
/// <remarks>
/// The same contract as the selector's pipe transports: protocol calls are scheduled, never made
/// inside <c>Write</c> or <c>Close</c>; the fd is closed right after ConnectionLost returns (the socket
/// first, which aborts what is in flight, then the caller's stream or handle); <c>GetExtraInfo("pipe")</c>
/// is the stream the caller gave, or the handle, until then. Owned by the loop thread; only the
/// operations' <see cref="ProactorOperation.OnCompleted"/> runs elsewhere.
/// </remarks>
internal abstract class ProactorPipeTransport : ITransportLifecycleOwner
{
    private readonly ProactorPipeTransportFactory _factory;
    private readonly SafeHandle _handle;
    private readonly IDisposable? _owner;
    private bool _channelClosed;

    protected ProactorPipeTransport(ProactorEventLoop loop, ProactorPipeTransportFactory factory, SafeHandle handle, IDisposable? owner,
        PipeHandleInfo info, IBaseProtocol protocol, Future<VoidResult> waiter, string droppedWriteWarning)
    {
        bool added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            // Does not own the fd and changes nothing of it yet: the runtime makes it non-blocking at
            // the first asynchronous operation, after ConnectionMade. Disposing it never closes the fd.
            Channel = new Socket(new SafeSocketHandle(info.Fd, ownsHandle: false));
        }
        catch
        {
            handle.DangerousRelease();
            throw;
        }

        Loop = loop;
        _factory = factory;
        _handle = handle;
        _owner = owner;
        Info = info;
        Protocol = protocol;
        factory.Take(info.Fd);
        Lifecycle = new TransportLifecycle(loop, this, droppedWriteWarning);
        Lifecycle.ScheduleStart(waiter);
    }

    protected ProactorEventLoop Loop { get; }

    /// <summary>The socket the operations run on: the pipe's fd, not owned.</summary>
    protected Socket Channel { get; }

    /// <summary>What the probe found out about the fd.</summary>
    protected PipeHandleInfo Info { get; }

    protected int Fd => Info.Fd;

    protected IBaseProtocol Protocol { get; private set; }

    /// <summary>The lifecycle: state flags, close, fatal errors, ConnectionLost once and the fd's close after it.</summary>
    protected TransportLifecycle Lifecycle { get; }

    /// <summary>True once the socket is disposed and the fd closed: completions arriving now only release what they held.</summary>
    protected bool ChannelClosed => _channelClosed;

    /// <inheritdoc/>
    public bool IsClosing => Lifecycle.IsClosing;

    /// <inheritdoc/>
    public object? GetExtraInfo(string name, object? defaultValue = null) =>
        name == "pipe" && !_channelClosed ? (object?)_owner ?? _handle : defaultValue;

    /// <inheritdoc/>
    public void SetProtocol(IBaseProtocol protocol)
    {
        ArgumentNullException.ThrowIfNull(protocol);
        CheckProtocol(protocol);
        Protocol = protocol;
        OnProtocolSet(protocol);
    }

    /// <inheritdoc/>
    public IBaseProtocol GetProtocol() => Protocol;

    /// <summary>Closes (buffered data is still sent) and completes once ConnectionLost has run and the fd is closed (<see cref="TransportLifecycle.CloseAndWaitAsync"/>).</summary>
    public System.Threading.Tasks.ValueTask DisposeAsync() => Lifecycle.CloseAndWaitAsync();

    /// <inheritdoc/>
    public abstract void Close();

    /// <summary>Throws if this kind of transport cannot drive <paramref name="protocol"/>.</summary>
    protected virtual void CheckProtocol(IBaseProtocol protocol)
    {
    }

    /// <summary>Called after the protocol changed, to cache its typed views.</summary>
    protected virtual void OnProtocolSet(IBaseProtocol protocol)
    {
    }

    /// <summary>After ConnectionMade: start the operations.</summary>
    protected abstract void OnStarted();

    /// <summary>The connection ends now: drop what is buffered, stop watching (idempotent).</summary>
    protected abstract void OnForceClose();

    /// <summary>The socket was disposed and the fd closed: release the operations that are not in flight (the others release themselves as they complete).</summary>
    protected abstract void OnChannelClosed();

    /// <summary>Closes the fd at once, without telling the protocol: for a transport whose creation failed.</summary>
    internal void CloseNow() => Lifecycle.CloseNow();

    void ITransportLifecycleOwner.OnStarted(object? state, Exception? error)
    {
        var waiter = (Future<VoidResult>?)state;
        if (error is not null)
        {
            waiter?.TrySetException(error);
            return;
        }

        if (!Lifecycle.IsStarted)
        {
            // Closed before it started: ConnectionMade never ran, nor will ConnectionLost (asyncio).
            waiter?.TrySetException(new IOException("The pipe transport was closed before the connection was made."));
            return;
        }

        // The waiter first, then the first read (asyncio's proactor: call_soon(_loop_reading) after the
        // waiter): the creation's continuation is queued ahead of a read that completes at once. Started
        // the other way, PipeCat on the proactor lost its stdout before its stdin transport was handed
        // over (its Output.Source still null), every run. Note that on every loop a caller awaiting
        // ConnectReadPipeAsync may still see DataReceived first: the factory's LoopTask adds a hop.
        waiter?.TrySetResult(default);
        if (!Lifecycle.IsClosing)
        {
            OnStarted();
        }
    }

    void ITransportLifecycleOwner.OnClosing()
    {
        // Nothing to stop: a read in flight completes into nothing (its completion sees IsClosing), and
        // a write pipe goes on sending what is buffered.
    }

    void ITransportLifecycleOwner.OnForceClose(Exception? error) => OnForceClose();

    void ITransportLifecycleOwner.OnConnectionLost()
    {
        OnForceClose();
        CloseChannel();
    }

    /// <summary>
    /// Disposes the socket, which aborts the operations in flight and returns once the runtime is
    /// inside no read(2) or write(2) on the fd; then closes the fd through the caller's stream or
    /// handle (our reference released first: a <see cref="SafeSocketHandle"/>'s close waits for every
    /// reference to go). Idempotent.
    /// </summary>
    private void CloseChannel()
    {
        if (_channelClosed)
        {
            return;
        }

        _channelClosed = true;
        Channel.Dispose();
        _handle.DangerousRelease();
        _owner?.Dispose();
        // And the handle itself, even after its stream: a NetworkStream that does not own its socket
        // leaves it open, but the transport owns the pipe. A second Dispose is a no-op.
        _handle.Dispose();
        _factory.Release(Fd);
        OnChannelClosed();
    }

    /// <summary>
    /// The exception for a failed pipe operation, shaped as the selector's (an <see cref="IOException"/>
    /// whose HResult is the platform's errno, "broken pipe: the reading end is closed" for EPIPE).
    /// </summary>
    /// <param name="error">What the runtime reported.</param>
    /// <param name="operation">The call, e.g. <c>write(fd 7)</c>.</param>
    protected static IOException PipeError(SocketError error, string operation)
    {
        var cause = new SocketException((int)error);
        int errno = cause.NativeErrorCode;
        return error == SocketError.Shutdown
            ? new IOException($"{operation} failed: broken pipe: the reading end is closed (EPIPE, errno {errno})", errno)
            : new IOException($"{operation} failed: {cause.Message} ({error}, errno {errno})", errno);
    }

    /// <summary>As <see cref="PipeError(SocketError, string)"/> for an exception a start call threw.</summary>
    protected static IOException PipeError(Exception error, string operation) => error switch
    {
        IOException io => io,
        SocketException socket => PipeError(socket.SocketErrorCode, operation),
        _ => new IOException($"{operation} failed: {error.Message}", error),
    };

    /// <inheritdoc/>
    public override string ToString() => $"<{GetType().Name} fd={Fd} {Lifecycle.StateName}>";
}
