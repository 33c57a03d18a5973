using System;
using Microsoft.Extensions.Logging;

namespace Tulip.Diagnostics;

/// <summary>
/// Every log line the Tulip library writes, in one place: source-generated <c>[LoggerMessage]</c> methods
/// (no boxing or formatting unless the level is enabled, trimming- and AOT-safe), each with a stable
/// event id and name that a log pipeline can filter on. docs/LOGGING.md lists them; an id never changes
/// meaning once shipped, and a new line takes the next free id in its range:
/// 1000s the loop, 1100s TLS, 1200s transports, 1300s subprocesses.
/// </summary>
/// <remarks>
/// Call sites keep their <c>IsEnabled</c> checks where an argument costs something to compute (a
/// description, a traceback); the generated method checks the level again, which is cheap.
/// </remarks>
internal static partial class Log
{
    // ---- The loop (1000-1099) -----------------------------------------------------------------------

    [LoggerMessage(EventId = 1001, EventName = "LoopClosingWithPendingCallbacks", Level = LogLevel.Debug,
        Message = "Closing event loop with {Ready} ready callbacks and {Timers} timers pending")]
    public static partial void LoopClosingWithPendingCallbacks(ILogger logger, int ready, int timers);

    [LoggerMessage(EventId = 1002, EventName = "SlowCallback", Level = LogLevel.Warning,
        Message = "Executing {Callback} took {Seconds:F3} seconds{Where}")]
    public static partial void SlowCallback(ILogger logger, string callback, double seconds, string where);

    [LoggerMessage(EventId = 1003, EventName = "UnhandledLoopError", Level = LogLevel.Error, Message = "{Context}")]
    public static partial void UnhandledLoopError(ILogger logger, Exception? exception, string context);

    /// <summary>Warning in debug mode, Debug otherwise (the level is the caller's).</summary>
    [LoggerMessage(EventId = 1004, EventName = "ThreadSafeCallbacksDroppedAtClose",
        Message = "Closing the event loop dropped {Count} callbacks scheduled from other threads (CallSoonThreadSafe, " +
            "continuations) that had not run yet; run the loop until they are done before closing it")]
    public static partial void ThreadSafeCallbacksDroppedAtClose(ILogger logger, LogLevel level, int count);

    [LoggerMessage(EventId = 1005, EventName = "StaleFdRegistrationDropped", Level = LogLevel.Warning,
        Message = "fd {Fd} was closed while {Handle} still watched it, and the number is being registered again: " +
            "the stale callback was dropped. Call RemoveReader/RemoveWriter before closing an fd.")]
    public static partial void StaleFdRegistrationDropped(ILogger logger, int fd, object handle);

    [LoggerMessage(EventId = 1006, EventName = "DatagramEndpointCreated", Level = LogLevel.Debug,
        Message = "Datagram endpoint local={Local} remote={Remote} created: {Transport}")]
    public static partial void DatagramEndpointCreated(ILogger logger, object? local, object? remote, object transport);

    [LoggerMessage(EventId = 1007, EventName = "StaleUnixSocketCheckFailed", Level = LogLevel.Error,
        Message = "Unable to check or remove stale UNIX socket {Path}")]
    public static partial void StaleUnixSocketCheckFailed(ILogger logger, Exception exception, string path);

    [LoggerMessage(EventId = 1008, EventName = "GroupLoopFailed", Level = LogLevel.Error,
        Message = "Event loop {Index} of the group failed and stopped; the other loops go on")]
    public static partial void GroupLoopFailed(ILogger logger, Exception exception, int index);

    [LoggerMessage(EventId = 1009, EventName = "GroupTaskLeftRunning", Level = LogLevel.Warning,
        Message = "Event loop {Index} of the group closes with the task {Task} still running: it did not end after its cancellation")]
    public static partial void GroupTaskLeftRunning(ILogger logger, int index, object task);

    [LoggerMessage(EventId = 1010, EventName = "GroupAcceptFailed", Level = LogLevel.Warning,
        Message = "The group's acceptor could not accept a connection; it tries again in a second")]
    public static partial void GroupAcceptFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1011, EventName = "IoUringCompletionTransportsUnavailable", Level = LogLevel.Information,
        Message = "{Reason} The io_uring loop's stream transports use readiness instead.")]
    public static partial void IoUringCompletionTransportsUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 1012, EventName = "IoUringOperationsLeftInKernel", Level = LogLevel.Warning,
        Message = "{Count} io_uring operations were still in the kernel when the loop closed: their receive buffers are not freed.")]
    public static partial void IoUringOperationsLeftInKernel(ILogger logger, int count);

    // ---- TLS (1100-1199) ----------------------------------------------------------------------------

    [LoggerMessage(EventId = 1101, EventName = "TlsHandshakeFailed", Level = LogLevel.Information,
        Message = "TLS handshake with {Side} {Peer} failed: {Reason}")]
    public static partial void TlsHandshakeFailed(ILogger logger, string side, object peer, string reason);

    [LoggerMessage(EventId = 1102, EventName = "TlsWriteAfterClose", Level = LogLevel.Warning,
        Message = "{Count} writes to a closed TLS transport were dropped: stop writing once it is closing.")]
    public static partial void TlsWriteAfterClose(ILogger logger, int count);

    // ---- Transports (1200-1299) ---------------------------------------------------------------------

    [LoggerMessage(EventId = 1201, EventName = "TransportOSError", Level = LogLevel.Debug, Message = "{Transport}: {Message}")]
    public static partial void TransportOSError(ILogger logger, Exception exception, object transport, string message);

    [LoggerMessage(EventId = 1202, EventName = "WriteAfterClose", Level = LogLevel.Warning, Message = "{Warning}")]
    public static partial void WriteAfterClose(ILogger logger, string warning);

    [LoggerMessage(EventId = 1203, EventName = "WritePipeClosedByPeer", Level = LogLevel.Debug, Message = "{Transport} was closed by the peer")]
    public static partial void WritePipeClosedByPeer(ILogger logger, object transport);

    // ---- Subprocesses (1300-1399) -------------------------------------------------------------------

    [LoggerMessage(EventId = 1301, EventName = "ChildKilledAtLoopClose", Level = LogLevel.Warning,
        Message = "The loop closed before child {Pid} of {Transport} exited: the child was killed")]
    public static partial void ChildKilledAtLoopClose(ILogger logger, int pid, object transport);

    [LoggerMessage(EventId = 1302, EventName = "ChildReapedElsewhere", Level = LogLevel.Warning,
        Message = "Child {Pid} was reaped by someone else (the runtime reaps every child when SIGCHLD was ignored at start-up, or as pid 1); reporting return code {Code}")]
    public static partial void ChildReapedElsewhere(ILogger logger, int pid, int code);
}
