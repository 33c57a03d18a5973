namespace Tulip.Hosting;

/// <summary>How the connections of a graceful shutdown ended: the last phase that was needed.</summary>
public enum TulipShutdownOutcome
{
    /// <summary>Every connection ended by itself within the drain period (or none was open).</summary>
    Drained,

    /// <summary>Some were closed after the drain period, and every one finished sending within the close period.</summary>
    Closed,

    /// <summary>Some were aborted: after the close period, or at once because the host's shutdown timeout expired.</summary>
    Aborted,
}

/// <summary>What a graceful shutdown of <see cref="TulipLoopService"/> did; also logged at its end.</summary>
/// <param name="Outcome">The last phase the connections needed.</param>
/// <param name="HostTimeoutExpired">The host's shutdown timeout (the token of <c>StopAsync</c>) expired before the end.</param>
/// <param name="TasksCancelled">Tasks still running on the loop once the connections were gone, which were cancelled.</param>
/// <param name="TasksLeftRunning">Of those, the ones that had not ended when the loop closed (only after the host's timeout: otherwise they are awaited).</param>
public sealed record TulipShutdownReport(TulipShutdownOutcome Outcome, bool HostTimeoutExpired, int TasksCancelled, int TasksLeftRunning);
