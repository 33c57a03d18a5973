using System;
using System.IO;
using Microsoft.Extensions.Logging;

namespace Tulip;

/// <summary>
/// What the two pipe transports share (asyncio's <c>_UnixReadPipeTransport</c> and
/// <c>_UnixWritePipeTransport</c>): the fd, the protocol, and the way the end is reported.
/// Built on <see cref="IReadinessEventLoop"/> alone, so they run on any readiness loop.
/// </summary>
/// <remarks>
/// Protocol calls go through the loop's ready queue: <c>ConnectionMade</c> and <c>ConnectionLost</c>
/// are scheduled, never called from inside <c>Write</c> or <c>Close</c>. The fd is closed right after
/// <c>ConnectionLost</c> returns. Everything here is owned by the loop thread.
/// </remarks>
internal abstract class PipeTransport : IBaseTransport
{
    /// <summary>asyncio's LOG_THRESHOLD_FOR_CONNLOST_WRITES.</summary>
    protected const int LogThresholdForLostWrites = 5;

    private Future<VoidResult>? _waiter;
    private bool _lostScheduled;

    protected PipeTransport(IReadinessEventLoop loop, PipeFd pipe, IBaseProtocol protocol, Future<VoidResult> waiter)
    {
        Loop = loop;
        Pipe = pipe;
        Protocol = protocol;
        _waiter = waiter;
        loop.CallSoon(static t => t.Start(), this);
    }

    protected IReadinessEventLoop Loop { get; }

    protected PipeFd Pipe { get; }

    protected int Fd => Pipe.Fd;

    protected IBaseProtocol Protocol { get; private set; }

    /// <summary>ConnectionMade ran; the reader may be registered.</summary>
    protected bool Started { get; private set; }

    /// <summary>Close (or the end of the data, or an error) has begun; ConnectionLost follows.</summary>
    protected bool Closing { get; set; }

    /// <summary>ConnectionLost is scheduled or done: nothing more reaches the protocol.</summary>
    protected bool LostScheduled => _lostScheduled;

    /// <inheritdoc/>
    public bool IsClosing => Closing;

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

    /// <summary>Stops watching the fd (both directions).</summary>
    protected abstract void Unwatch();

    /// <summary>Drops anything buffered.</summary>
    protected virtual void DropBuffer()
    {
    }

    private void Start()
    {
        var waiter = _waiter;
        _waiter = null;
        if (_lostScheduled)
        {
            // Closed before it started: ConnectionMade never runs, nor does ConnectionLost (asyncio).
            waiter?.TrySetException(new IOException("The pipe transport was closed before the connection was made."));
            return;
        }

        try
        {
            Protocol.ConnectionMade(this);
        }
        catch (Exception ex)
        {
            waiter?.TrySetException(ex);
            FatalError(ex, "Fatal error: protocol.ConnectionMade() call failed.");
            return;
        }

        Started = true;
        if (!Closing)
        {
            OnStarted();
        }

        waiter?.TrySetResult(default);
    }

    /// <summary>
    /// asyncio's <c>_fatal_error</c>: an OS error (the far end went away, EIO from a terminal) is an
    /// ordinary end of the connection, logged only in debug mode; anything else (a protocol callback
    /// that threw) goes to the exception handler. Either way the protocol gets ConnectionLost(ex).
    /// </summary>
    protected void FatalError(Exception ex, string message)
    {
        if (ex is not IOException)
        {
            Loop.CallExceptionHandler(new ExceptionContext(message) { Exception = ex, Transport = this, Protocol = Protocol });
        }
        else if (Loop.Debug && Loop is BaseEventLoop { Logger: var logger } && logger.IsEnabled(LogLevel.Debug))
        {
            logger.LogDebug(ex, "{Transport}: {Message}", this, message);
        }

        CloseWith(ex);
    }

    /// <summary>asyncio's <c>_close</c>: stop everything now and schedule ConnectionLost(<paramref name="ex"/>).</summary>
    protected void CloseWith(Exception? ex)
    {
        Closing = true;
        DropBuffer();
        Unwatch();
        ScheduleConnectionLost(ex);
    }

    /// <summary>Schedules ConnectionLost once; later calls are ignored.</summary>
    protected void ScheduleConnectionLost(Exception? ex)
    {
        if (_lostScheduled)
        {
            return;
        }

        _lostScheduled = true;
        Loop.CallSoon(static s => s.Transport.CallConnectionLost(s.Error), (Transport: this, Error: ex));
    }

    /// <summary>Closes the fd at once, without telling the protocol: for a transport whose creation failed.</summary>
    internal void CloseNow()
    {
        _lostScheduled = true;
        Closing = true;
        DropBuffer();
        Unwatch();
        Pipe.Close();
    }

    private void CallConnectionLost(Exception? ex)
    {
        try
        {
            if (Started)
            {
                Protocol.ConnectionLost(ex);
            }
        }
        catch (Exception callbackError)
        {
            Loop.CallExceptionHandler(new ExceptionContext("Exception in protocol.ConnectionLost()")
            {
                Exception = callbackError,
                Transport = this,
                Protocol = Protocol,
            });
        }
        finally
        {
            Unwatch();
            DropBuffer();
            Pipe.Close();
        }
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
        string state = Pipe.IsReleased ? "closed" : Closing ? "closing" : "open";
        return $"<{GetType().Name} fd={Fd} {state}>";
    }
}
