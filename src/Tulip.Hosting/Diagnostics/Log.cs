using System;
using Microsoft.Extensions.Logging;

namespace Tulip.Hosting.Diagnostics;

/// <summary>
/// Every log line Tulip.Hosting writes, in one place, as Tulip's own (src/Tulip/Diagnostics/Log.cs):
/// source-generated <c>[LoggerMessage]</c> methods with a stable event id and name, listed in
/// docs/LOGGING.md. Tulip.Hosting's range is 2000-2099: 2000s the start, 2010s the shutdown phases,
/// 2020s failures of the loop thread. An id never changes meaning once shipped.
/// </summary>
/// <remarks>
/// Call sites keep their <c>IsEnabled</c> checks where an argument costs something to compute (the
/// joined end points, a described duration); the generated method checks the level again, which is cheap.
/// </remarks>
internal static partial class Log
{
    // ---- Start (2000-2009) ------------------------------------------------------------------------

    [LoggerMessage(EventId = 2001, EventName = "Serving", Level = LogLevel.Information,
        Message = "Tulip serving {EndPoints} on a {Kind} loop ({Thread}).")]
    public static partial void Serving(ILogger logger, string endPoints, string kind, string thread);

    [LoggerMessage(EventId = 2002, EventName = "ServingOnGroup", Level = LogLevel.Information,
        Message = "Tulip serving {EndPoints} on {Count} {Kind} loops ({Distribution} for TCP addresses).")]
    public static partial void ServingOnGroup(ILogger logger, string endPoints, int count, string kind, GroupDistribution distribution);

    // ---- Shutdown (2010-2019) ---------------------------------------------------------------------

    [LoggerMessage(EventId = 2011, EventName = "StoppedAccepting", Level = LogLevel.Information,
        Message = "Tulip stopping: the servers no longer accept; connections have {Drain} to finish.")]
    public static partial void StoppedAccepting(ILogger logger, string drain);

    [LoggerMessage(EventId = 2012, EventName = "StoppingCallbackFailed", Level = LogLevel.Error,
        Message = "A callback registered on TulipServerContext.Stopping failed.")]
    public static partial void StoppingCallbackFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 2013, EventName = "ClosingConnections", Level = LogLevel.Information,
        Message = "Tulip stopping: closing the connections still open; they have {Close} to send what they buffered.")]
    public static partial void ClosingConnections(ILogger logger, string close);

    [LoggerMessage(EventId = 2014, EventName = "AbortingConnections", Level = LogLevel.Warning,
        Message = "Tulip stopping: aborting the connections still open{Why}.")]
    public static partial void AbortingConnections(ILogger logger, string why);

    [LoggerMessage(EventId = 2015, EventName = "TaskLeftRunning", Level = LogLevel.Warning,
        Message = "Tulip stopping: the task {Task} did not end after its cancellation, and the loop closes without it.")]
    public static partial void TaskLeftRunning(ILogger logger, Future task);

    [LoggerMessage(EventId = 2016, EventName = "Stopped", Level = LogLevel.Information,
        Message = "Tulip stopped: connections {Outcome}, {Cancelled} tasks cancelled, {Left} left running{Why}.")]
    public static partial void Stopped(ILogger logger, TulipShutdownOutcome outcome, int cancelled, int left, string why);

    // ---- The loop thread failing (2020-2029) ------------------------------------------------------

    [LoggerMessage(EventId = 2021, EventName = "LoopFailed", Level = LogLevel.Critical,
        Message = "The Tulip loop failed; stopping the host.")]
    public static partial void LoopFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 2022, EventName = "ServersNotClosedAfterFailure", Level = LogLevel.Error,
        Message = "Closing the Tulip servers after the loop failed did not finish.")]
    public static partial void ServersNotClosedAfterFailure(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 2023, EventName = "DefaultExecutorShutdownFailed", Level = LogLevel.Error,
        Message = "Shutting down the Tulip loop's default executor failed.")]
    public static partial void DefaultExecutorShutdownFailed(ILogger logger, Exception exception);
}
