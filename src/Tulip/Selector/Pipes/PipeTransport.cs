using System;
using System.IO;
using System.Runtime.Versioning;

namespace Tulip;

/// <summary>
/// What the two pipe transports share (asyncio's <c>_UnixReadPipeTransport</c> and
/// <c>_UnixWritePipeTransport</c>): the fd, the protocol, and the <see cref="TransportLifecycle"/>
/// every transport composes for how a connection starts and ends.
/// Built on <see cref="IReadinessEventLoop"/> alone, so they run on any readiness loop.
/// </summary>
/// <remarks>
/// Protocol calls go through the loop's ready queue: <c>ConnectionMade</c> and <c>ConnectionLost</c>
/// are scheduled, never called from inside <c>Write</c> or <c>Close</c>. The fd is closed right after
/// <c>ConnectionLost</c> returns; until then its handle is add-ref'd (<see cref="PipeFd"/>), so the
/// number cannot be reused under the transport. Everything here is owned by the loop thread.
/// </remarks>
[SupportedOSPlatform("linux")]
internal abstract class PipeTransport : ITransportLifecycleOwner
{
    protected PipeTransport(IReadinessEventLoop loop, PipeFd pipe, IBaseProtocol protocol, Future<VoidResult> waiter, string droppedWriteWarning)
    {
        Loop = loop;
        Pipe = pipe;
        Protocol = protocol;
        Lifecycle = new TransportLifecycle(loop, this, droppedWriteWarning);
        Lifecycle.ScheduleStart(waiter);
    }

    protected IReadinessEventLoop Loop { get; }

    protected PipeFd Pipe { get; }

    protected int Fd => Pipe.Fd;

    protected IBaseProtocol Protocol { get; private set; }

    /// <summary>The lifecycle: state flags, close, fatal errors, ConnectionLost once and the fd's close after it.</summary>
    protected TransportLifecycle Lifecycle { get; }

    /// <inheritdoc/>
    public bool IsClosing => Lifecycle.IsClosing;

    /// <inheritdoc/>
    public object? GetExtraInfo(string name, object? defaultValue = null) =>
        name == "pipe" && !Pipe.IsReleased ? Pipe.Pipe : defaultValue;

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

    /// <summary>After ConnectionMade: register what the transport watches.</summary>
    protected abstract void OnStarted();

    /// <summary>A graceful close began: stop what must stop now (the read side).</summary>
    protected abstract void OnClosing();

    /// <summary>Stops watching the fd (both directions).</summary>
    protected abstract void Unwatch();

    /// <summary>Drops anything buffered.</summary>
    protected virtual void DropBuffer()
    {
    }

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

        if (!Lifecycle.IsClosing)
        {
            OnStarted();
        }

        waiter?.TrySetResult(default);
    }

    void ITransportLifecycleOwner.OnClosing() => OnClosing();

    void ITransportLifecycleOwner.OnForceClose(Exception? error)
    {
        DropBuffer();
        Unwatch();
    }

    void ITransportLifecycleOwner.OnConnectionLost()
    {
        Unwatch();
        DropBuffer();
        Pipe.Close();
    }

    /// <summary>Stops watching <see cref="Fd"/> unless it is already closed (its number may belong to someone else by now).</summary>
    protected void SetReader(Handle? handle)
    {
        if (!Pipe.IsReleased)
        {
            Loop.SetReader(Fd, handle);
        }
    }

    /// <summary>As <see cref="SetReader"/> for the writer.</summary>
    protected void SetWriter(Handle? handle)
    {
        if (!Pipe.IsReleased)
        {
            Loop.SetWriter(Fd, handle);
        }
    }

    /// <inheritdoc/>
    public override string ToString()
    {
        string state = Pipe.IsReleased ? "closed" : Lifecycle.IsClosing ? "closing" : "open";
        return $"<{GetType().Name} fd={Fd} {state}>";
    }
}
