using System;
using System.Threading.Tasks;
using System.IO;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Tulip.Diagnostics;

namespace Tulip;

/// <summary>
/// How a transport's connection begins and ends, written once for every transport (the library's and
/// third-party ones alike): asyncio's <c>_SelectorTransport</c>/<c>_ProactorBasePipeTransport</c>
/// lifecycle. The transport owns one, reads its state flags on its I/O paths, and implements
/// <see cref="ITransportLifecycleOwner"/> for the moments that touch its own fd and buffer.
/// </summary>
/// <remarks>
/// <para>
/// What it decides: <see cref="IBaseProtocol.ConnectionMade"/> is scheduled, never called inline
/// (<see cref="ScheduleStart"/>); <see cref="Close"/> waits for the write buffer to drain, <see cref="Abort"/>
/// does not; <see cref="FatalError"/> ends the connection quietly on an OS error (<see cref="IsOSError"/>:
/// the peer went away; logged only in debug mode) and reports anything else (a protocol callback that
/// threw) to the loop's exception handler; <see cref="IBaseProtocol.ConnectionLost"/> is scheduled
/// exactly once, is skipped if ConnectionMade never ran, and the fd is closed right after it returns
/// (<see cref="ITransportLifecycleOwner.OnConnectionLost"/>); writes after the close are dropped, with a
/// warning once more than <see cref="DroppedWriteLogThreshold"/> were (<see cref="DropWrite"/>).
/// </para>
/// <para>
/// The flags are plain fields behind non-virtual properties, so a transport's per-message checks
/// (<c>if (lifecycle.IsClosing)</c>) cost a field load and allocate nothing; the calls to the owner run
/// once per connection. On a <see cref="BaseEventLoop"/> the scheduled calls go through the loop's
/// allocation-free internal queue; on any other loop through <see cref="IEventLoop.CallSoon{TState}"/>.
/// Like the transport that owns it, an instance belongs to the loop thread.
/// </para>
/// </remarks>
public sealed class TransportLifecycle
{
    /// <summary>asyncio's <c>LOG_THRESHOLD_FOR_CONNLOST_WRITES</c>: writes after close are dropped, and each one past this many is logged.</summary>
    public const int DroppedWriteLogThreshold = 5;

    private static readonly Action<object?, object?> s_start = static (l, s) => ((TransportLifecycle)l!).Start(s);
    private static readonly Action<object?, object?> s_connectionLost = static (l, e) => ((TransportLifecycle)l!).CallConnectionLost((Exception?)e);

    // The loop, once: on a BaseEventLoop (BaseLoop) the scheduled calls take its internal queue. A
    // second field typed BaseEventLoop was 8 B more per transport (docs/PERFORMANCE.md, "Memory per
    // idle connection"); the type test runs once per connection, not per message.
    private readonly IEventLoop _loop;
    private readonly ITransportLifecycleOwner _transport;
    private readonly string _droppedWriteWarning;
    private int _droppedWrites;
    private int _holds;
    private bool _lostDeferred;
    private Exception? _deferredError;
    // True once CloseAndWaitAsync made a waiter (kept in s_closedWaiters, not in a field: a field here
    // is 8 B more per connection for what few connections use; the flag fits the object's padding).
    private bool _closeAwaited;

    /// <summary>The futures of CloseAndWaitAsync calls still waiting, by lifecycle; loop thread (each lifecycle's own).</summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<TransportLifecycle, Future<VoidResult>> s_closedWaiters = new();

    /// <summary>Creates the lifecycle of <paramref name="transport"/>: not started, open.</summary>
    /// <param name="loop">The loop the transport runs on: its ready queue runs the protocol calls, its exception handler hears of failures.</param>
    /// <param name="transport">The transport that owns this; its current protocol (<see cref="IBaseTransport.GetProtocol"/>) is the one called.</param>
    /// <param name="droppedWriteWarning">What is logged for each write dropped after the close, once more than <see cref="DroppedWriteLogThreshold"/> were.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public TransportLifecycle(IEventLoop loop, ITransportLifecycleOwner transport, string droppedWriteWarning)
    {
        ArgumentNullException.ThrowIfNull(loop);
        ArgumentNullException.ThrowIfNull(transport);
        ArgumentNullException.ThrowIfNull(droppedWriteWarning);
        _loop = loop;
        _transport = transport;
        _droppedWriteWarning = droppedWriteWarning;
    }

    private BaseEventLoop? BaseLoop => _loop as BaseEventLoop;

    /// <summary>True once <see cref="IBaseProtocol.ConnectionMade"/> returned: the protocol may be called, and ConnectionLost will be.</summary>
    public bool IsStarted { get; private set; }

    /// <summary>True once the transport began to close (<see cref="Close"/>, <see cref="Abort"/>, a fatal error): what <see cref="IBaseTransport.IsClosing"/> returns.</summary>
    public bool IsClosing { get; private set; }

    /// <summary>True once ConnectionLost is scheduled (or done): no more I/O, and no protocol call but that one.</summary>
    public bool IsConnectionLost { get; private set; }

    /// <summary>True once ConnectionLost ran and <see cref="ITransportLifecycleOwner.OnConnectionLost"/> closed the fd.</summary>
    public bool IsClosed { get; private set; }

    /// <summary>"open", "closing" or "closed", for a transport's <see cref="object.ToString"/>.</summary>
    public string StateName => IsClosed ? "closed" : IsClosing ? "closing" : "open";

    /// <summary>
    /// Whether <paramref name="error"/> is an OS error, which ends a connection quietly (asyncio's
    /// <c>OSError</c>): a <see cref="SocketException"/> or an <see cref="IOException"/>, which is what a
    /// failed socket or fd call raises. Anything else (a protocol callback that threw, a bug) is
    /// reported to the exception handler by <see cref="FatalError"/>.
    /// </summary>
    /// <param name="error">The exception to classify.</param>
    /// <exception cref="ArgumentNullException"><paramref name="error"/> is null.</exception>
    public static bool IsOSError(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return error is SocketException or IOException;
    }

    /// <summary>
    /// Schedules the start for the next iteration: <see cref="IBaseProtocol.ConnectionMade"/>, then
    /// <see cref="ITransportLifecycleOwner.OnStarted"/>. Call it once, last in the transport's
    /// constructor, once nothing there can throw.
    /// </summary>
    /// <param name="state">Handed back to <see cref="ITransportLifecycleOwner.OnStarted"/> (the creation's waiter, say).</param>
    public void ScheduleStart(object? state = null)
    {
        if (BaseLoop is { } loop)
        {
            loop.ScheduleInternal(s_start, this, state);
        }
        else
        {
            _loop.CallSoon(static s => s.Lifecycle.Start(s.State), (Lifecycle: this, State: state));
        }
    }

    /// <summary>
    /// asyncio's <c>close</c>: marks the transport closing and calls <see cref="ITransportLifecycleOwner.OnClosing"/>
    /// (stop reading); ConnectionLost follows at once when nothing is buffered, otherwise when the
    /// transport calls <see cref="ScheduleConnectionLost"/> as its buffer drains. Idempotent.
    /// </summary>
    /// <param name="hasPendingWrites">True while the transport's write buffer holds data.</param>
    /// <returns>True if this call began the close; false if the transport was already closing.</returns>
    public bool Close(bool hasPendingWrites)
    {
        if (IsClosing)
        {
            return false;
        }

        IsClosing = true;
        _transport.OnClosing();
        if (!hasPendingWrites)
        {
            ScheduleConnectionLost(null);
        }

        return true;
    }

    /// <summary>asyncio's <c>abort</c>: <see cref="ForceClose"/> with no error. Buffered data is dropped.</summary>
    public void Abort() => ForceClose(null);

    /// <summary>
    /// asyncio's <c>_fatal_error</c>: an OS error (<see cref="IsOSError"/>) is an ordinary end of the
    /// connection, logged only in debug mode; anything else goes to the loop's exception handler with
    /// <paramref name="message"/>, the transport and the protocol. Either way the connection ends now
    /// (<see cref="ForceClose"/>) and the protocol gets ConnectionLost(<paramref name="error"/>).
    /// </summary>
    /// <param name="error">What failed.</param>
    /// <param name="message">What was being done, e.g. "Fatal write error on socket transport".</param>
    /// <exception cref="ArgumentNullException"><paramref name="error"/> or <paramref name="message"/> is null.</exception>
    public void FatalError(Exception error, string message)
    {
        ArgumentNullException.ThrowIfNull(error);
        ArgumentNullException.ThrowIfNull(message);
        if (!IsOSError(error))
        {
            _loop.CallExceptionHandler(new ExceptionContext(message) { Exception = error, Transport = _transport, Protocol = _transport.GetProtocol() });
        }
        else if (_loop.Debug && BaseLoop is { Logger: var logger } && logger.IsEnabled(LogLevel.Debug))
        {
            Log.TransportOSError(logger, error, _transport, message);
        }

        ForceClose(error);
    }

    /// <summary>
    /// asyncio's <c>_force_close</c>: unless ConnectionLost is already on its way, marks the transport
    /// closing, calls <see cref="ITransportLifecycleOwner.OnForceClose"/> (drop the buffer, stop
    /// watching the fd) and schedules ConnectionLost(<paramref name="error"/>).
    /// </summary>
    /// <param name="error">Why the connection ends (given to ConnectionLost), or null.</param>
    public void ForceClose(Exception? error)
    {
        if (IsConnectionLost)
        {
            return;
        }

        IsClosing = true;
        _transport.OnForceClose(error);
        MarkLost(error, stopped: true);
    }

    /// <summary>
    /// Schedules ConnectionLost(<paramref name="error"/>) once (later calls, and calls after
    /// <see cref="ForceClose"/>, are ignored): for a transport whose buffer drained after <see cref="Close"/>,
    /// or that reached the end of its data. The transport is marked closing;
    /// <see cref="ITransportLifecycleOwner.OnForceClose"/> runs first unless a hold defers it.
    /// </summary>
    /// <param name="error">Given to ConnectionLost, or null.</param>
    public void ScheduleConnectionLost(Exception? error)
    {
        if (IsConnectionLost)
        {
            return;
        }

        IsClosing = true;
        MarkLost(error, stopped: false);
    }

    /// <summary>
    /// Keeps ConnectionLost (and with it the fd's close) back while an operation that uses the fd runs
    /// outside the transport's own paths (a sendfile, say): a close or fatal error meanwhile marks the
    /// transport lost at once, but ConnectionLost is scheduled only by the matching <see cref="ReleaseConnectionLost"/>.
    /// </summary>
    public void HoldConnectionLost() => _holds++;

    /// <summary>Ends a <see cref="HoldConnectionLost"/>; ConnectionLost, if it was kept back by the last hold, is scheduled now.</summary>
    /// <exception cref="InvalidOperationException">No hold is in place.</exception>
    public void ReleaseConnectionLost()
    {
        if (_holds == 0)
        {
            throw new InvalidOperationException("ReleaseConnectionLost() without a HoldConnectionLost(): each release must match a hold.");
        }

        if (--_holds == 0 && _lostDeferred)
        {
            _lostDeferred = false;
            var error = _deferredError;
            _deferredError = null;
            SchedulePreparedLost(error, stopped: false);
        }
    }

    /// <summary>
    /// Closes the transport (<see cref="IBaseTransport.Close"/>: what is buffered is still sent) and
    /// completes once the connection is over: <see cref="IBaseProtocol.ConnectionLost"/> has run (or,
    /// for a transport closed before its start, would have) and the fd is closed. What a transport
    /// composing a lifecycle returns from <see cref="IAsyncDisposable.DisposeAsync"/>.
    /// </summary>
    /// <remarks>
    /// A peer that does not read keeps a graceful close waiting for the buffer to drain: call
    /// <see cref="IWriteTransport.Abort"/> first to drop it, or cancel the waiting task (the wait
    /// ends with <see cref="CancelledError"/>; the close goes on). The connection's error, if it broke,
    /// is the protocol's (in ConnectionLost), not thrown here. On the loop thread.
    /// </remarks>
    /// <exception cref="InvalidOperationException">Not on the loop thread of a <see cref="BaseEventLoop"/>.</exception>
    public ValueTask CloseAndWaitAsync()
    {
        _transport.Close();
        if (IsClosed)
        {
            return default;
        }

        if (BaseLoop is not { } loop)
        {
            throw new InvalidOperationException($"CloseAndWaitAsync needs a {nameof(BaseEventLoop)}: close the transport and wait for ConnectionLost in its protocol instead.");
        }

        if (!s_closedWaiters.TryGetValue(this, out var closed))
        {
            closed = new Future<VoidResult>(loop);
            s_closedWaiters.Add(this, closed);
            _closeAwaited = true;
        }

        return FutureValueOperation.Await(closed, cancelFuture: false);
    }

    /// <summary>Completes the waiter of <see cref="CloseAndWaitAsync"/>, if one was made.</summary>
    private void CompleteCloseWaiter()
    {
        if (_closeAwaited && s_closedWaiters.TryGetValue(this, out var closed))
        {
            s_closedWaiters.Remove(this);
            closed.TrySetResult(default);
        }
    }

    /// <summary>
    /// Closes the fd now without telling the protocol: for a transport whose creation failed before its
    /// start ran. Calls <see cref="ITransportLifecycleOwner.OnForceClose"/> then
    /// <see cref="ITransportLifecycleOwner.OnConnectionLost"/>; the scheduled start then finds the
    /// transport closed. Idempotent.
    /// </summary>
    public void CloseNow()
    {
        if (IsClosed)
        {
            return;
        }

        IsClosing = true;
        IsConnectionLost = true;
        _transport.OnForceClose(null);
        IsClosed = true;
        CountClosed();
        _transport.OnConnectionLost();
        CompleteCloseWaiter();
    }

    /// <summary>
    /// A write after close is dropped (asyncio): call this instead of writing when <see cref="IsClosing"/>.
    /// Once more than <see cref="DroppedWriteLogThreshold"/> writes were dropped, each further one logs the warning given at construction.
    /// </summary>
    public void DropWrite()
    {
        if (_droppedWrites >= DroppedWriteLogThreshold && BaseLoop is { Logger: var logger })
        {
            Log.WriteAfterClose(logger, _droppedWriteWarning);
        }

        _droppedWrites++;
    }

    private void MarkLost(Exception? error, bool stopped)
    {
        IsConnectionLost = true;
        if (_holds > 0)
        {
            _lostDeferred = true;
            _deferredError = error;
            return;
        }

        SchedulePreparedLost(error, stopped);
    }

    private void SchedulePreparedLost(Exception? error, bool stopped)
    {
        if (!stopped)
        {
            _transport.OnForceClose(error);
        }

        if (BaseLoop is { } loop)
        {
            loop.ScheduleInternal(s_connectionLost, this, error);
        }
        else
        {
            _loop.CallSoon(static s => s.Lifecycle.CallConnectionLost(s.Error), (Lifecycle: this, Error: error));
        }
    }

    private void Start(object? state)
    {
        if (IsConnectionLost)
        {
            // Closed before it started (a cancelled create): ConnectionMade never runs, nor does ConnectionLost (asyncio).
            _transport.OnStarted(state, null);
            return;
        }

        try
        {
            _transport.GetProtocol().ConnectionMade(_transport);
        }
        catch (Exception ex)
        {
            _transport.OnStarted(state, ex);
            FatalError(ex, "Fatal error: protocol.ConnectionMade() call failed.");
            return;
        }

        IsStarted = true;
        if (_transport is ITransport)
        {
            Diagnostics.TulipMetrics.ConnectionOpened(_loop);
        }

        _transport.OnStarted(state, null);
    }

    private void CallConnectionLost(Exception? error)
    {
        if (IsClosed)
        {
            return;
        }

        try
        {
            if (IsStarted)
            {
                _transport.GetProtocol().ConnectionLost(error);
            }
        }
        catch (Exception callbackError)
        {
            _loop.CallExceptionHandler(new ExceptionContext("Exception in protocol.ConnectionLost()")
            {
                Exception = callbackError,
                Transport = _transport,
                Protocol = _transport.GetProtocol(),
            });
        }
        finally
        {
            IsClosed = true;
            CountClosed();
            _transport.OnForceClose(error);
            _transport.OnConnectionLost();
            CompleteCloseWaiter();
        }
    }

    /// <summary>A stream connection that was counted open is closed now (the Tulip meter).</summary>
    private void CountClosed()
    {
        if (IsStarted && _transport is ITransport)
        {
            Diagnostics.TulipMetrics.ConnectionClosed(_loop);
        }
    }
}
