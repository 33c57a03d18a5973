using System.Collections.Generic;
using Tulip.Diagnostics;

namespace Tulip;

// What the loop counts for the Tulip meter (Diagnostics/TulipMetrics.cs): plain fields that only the
// loop thread writes, read by a metrics collection on its own thread (a torn or stale read of a
// counter there is harmless: the next collection reads it again).
public abstract partial class BaseEventLoop
{
    private KeyValuePair<string, object?>[]? _metricTags;

    /// <summary>Loop iterations run.</summary>
    internal long MetricIterations;

    /// <summary>Ready callbacks run.</summary>
    internal long MetricCallbacks;

    /// <summary>Callbacks that took SlowCallbackDuration or more, while they were timed.</summary>
    internal long MetricSlowCallbacks;

    /// <summary>Bytes the loop's stream transports received from their sockets.</summary>
    internal long MetricBytesReceived;

    /// <summary>Bytes the loop's stream transports sent on their sockets.</summary>
    internal long MetricBytesSent;

    /// <summary>This loop's id among the loops the process made (1, 2, ...), for <c>tulip.loop.id</c>.</summary>
    internal int MetricId { get; private set; }

    /// <summary>What <c>tulip.loop.kind</c> says of this loop: the selector's name, "proactor", or the class name.</summary>
    internal virtual string MetricKind => GetType().Name;

    /// <summary>The attributes of this loop's measurements.</summary>
    internal KeyValuePair<string, object?>[] MetricTags => _metricTags ??=
    [
        new("tulip.loop.id", MetricId),
        new("tulip.loop.kind", MetricKind),
    ];

    private void RegisterMetrics() => MetricId = TulipMetrics.Register(this);

    private void UnregisterMetrics() => TulipMetrics.Unregister(this);
}
