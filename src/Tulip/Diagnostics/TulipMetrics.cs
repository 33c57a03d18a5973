using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;

namespace Tulip.Diagnostics;

/// <summary>
/// The <see cref="System.Diagnostics.Metrics"/> instruments of Tulip, on one meter named
/// <see cref="MeterName"/> ("Tulip"): read them with <c>dotnet-counters monitor --counters Tulip</c>,
/// OpenTelemetry (<c>AddMeter("Tulip")</c>) or a <see cref="MeterListener"/>.
/// </summary>
/// <remarks>
/// <para>
/// Names and units follow OpenTelemetry's conventions (lower-case dotted names, UCUM units, curly
/// braces for counted things). Per-loop instruments are observable: each loop keeps plain counters
/// that its own thread bumps, and a collection reads them, with the attributes
/// <c>tulip.loop.id</c> (a number, in creation order) and <c>tulip.loop.kind</c> (<c>epoll</c>,
/// <c>poll</c>, <c>proactor</c>, or the loop's class name). A loop stops reporting once it is closed.
/// </para>
/// <para>
/// Cost. With nothing listening, a loop iteration adds two increments of its own fields, and a
/// receive or send one addition; connection and TLS events check whether their instrument is enabled.
/// Timing each callback (for <see cref="SlowCallbacks"/> and <see cref="LoopLag"/>) happens only while
/// one of those two is listened to, or in debug mode.
/// </para>
/// </remarks>
public static class TulipMetrics
{
    /// <summary>The meter's name: "Tulip".</summary>
    public const string MeterName = "Tulip";

    /// <summary><c>tulip.loop.iterations</c>, a counter of <c>{iteration}</c>: loop iterations run (each waits for I/O once).</summary>
    public const string LoopIterations = "tulip.loop.iterations";

    /// <summary><c>tulip.loop.callbacks</c>, a counter of <c>{callback}</c>: ready callbacks run (handles, timers, task steps).</summary>
    public const string LoopCallbacks = "tulip.loop.callbacks";

    /// <summary>
    /// <c>tulip.loop.slow_callbacks</c>, a counter of <c>{callback}</c>: callbacks that took at least the loop's
    /// <see cref="BaseEventLoop.SlowCallbackDuration"/>. Counted while this instrument or <see cref="LoopLag"/> is
    /// listened to, or in debug mode (which also logs them).
    /// </summary>
    public const string SlowCallbacks = "tulip.loop.slow_callbacks";

    /// <summary><c>tulip.loop.ready_queue.depth</c>, a gauge of <c>{callback}</c>: callbacks ready to run now.</summary>
    public const string ReadyQueueDepth = "tulip.loop.ready_queue.depth";

    /// <summary>
    /// <c>tulip.loop.lag</c>, a histogram in seconds: how late each timer callback ran, from the time it was due
    /// (<see cref="TimerHandle.When"/>) to the time it started. Recorded only while listened to.
    /// </summary>
    public const string LoopLag = "tulip.loop.lag";

    /// <summary><c>tulip.connections.opened</c>, a counter of <c>{connection}</c>: stream connections (TCP, UNIX) made, accepted or wrapped whose protocol's ConnectionMade ran.</summary>
    public const string ConnectionsOpened = "tulip.connections.opened";

    /// <summary><c>tulip.connections.closed</c>, a counter of <c>{connection}</c>: those connections whose ConnectionLost ran.</summary>
    public const string ConnectionsClosed = "tulip.connections.closed";

    /// <summary><c>tulip.connections.active</c>, an up-down counter of <c>{connection}</c>: opened and not yet closed.</summary>
    public const string ConnectionsActive = "tulip.connections.active";

    /// <summary>
    /// <c>tulip.network.io</c>, a counter in bytes: what the loop's stream connections received and sent on their
    /// sockets (TLS records included), with <c>network.io.direction</c> = <c>receive</c> or <c>transmit</c>.
    /// </summary>
    public const string NetworkIO = "tulip.network.io";

    /// <summary>
    /// <c>tulip.tls.handshakes</c>, a counter of <c>{handshake}</c>: TLS handshakes finished, with <c>tls.side</c>
    /// (<c>client</c> or <c>server</c>) and, for a failed one, <c>error.type</c> (the exception's type name).
    /// </summary>
    public const string TlsHandshakes = "tulip.tls.handshakes";

    /// <summary>
    /// <c>tulip.server.accept_backoffs</c>, a counter of <c>{backoff}</c>: times a server stopped accepting for a
    /// while because the process or system ran out of descriptors or buffers (EMFILE, ENFILE, ENOBUFS, ENOMEM).
    /// </summary>
    public const string AcceptBackoffs = "tulip.server.accept_backoffs";

    private static readonly Meter s_meter = new(MeterName, typeof(TulipMetrics).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion);
    private static readonly object s_loopsLock = new();
    private static readonly List<WeakReference<BaseEventLoop>> s_loops = [];
    private static int s_nextLoopId;

    // Lag is small when all is well: buckets from 0.1 ms up to 1 s (an exporter's default buckets are for milliseconds).
    internal static readonly Histogram<double> Lag = s_meter.CreateHistogram(LoopLag, "s",
        "How late timer callbacks ran: from the time each was due to the time it started.", tags: null,
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] });

    internal static readonly Counter<long> Opened = s_meter.CreateCounter<long>(ConnectionsOpened, "{connection}", "Stream connections opened.");

    internal static readonly Counter<long> Closed = s_meter.CreateCounter<long>(ConnectionsClosed, "{connection}", "Stream connections closed.");

    internal static readonly UpDownCounter<long> Active = s_meter.CreateUpDownCounter<long>(ConnectionsActive, "{connection}", "Stream connections open now.");

    internal static readonly Counter<long> Handshakes = s_meter.CreateCounter<long>(TlsHandshakes, "{handshake}", "TLS handshakes finished, failed ones with error.type.");

    internal static readonly Counter<long> Backoffs = s_meter.CreateCounter<long>(AcceptBackoffs, "{backoff}",
        "Times a server paused accepting because descriptors or buffers ran out.");

    internal static readonly ObservableCounter<long> Slow = s_meter.CreateObservableCounter(SlowCallbacks,
        static () => Observe(static l => l.MetricSlowCallbacks), "{callback}", "Callbacks that took at least the loop's SlowCallbackDuration.");

    static TulipMetrics()
    {
        s_meter.CreateObservableCounter(LoopIterations, static () => Observe(static l => l.MetricIterations), "{iteration}", "Loop iterations run.");
        s_meter.CreateObservableCounter(LoopCallbacks, static () => Observe(static l => l.MetricCallbacks), "{callback}", "Ready callbacks run.");
        s_meter.CreateObservableGauge(ReadyQueueDepth, static () => Observe(static l => (long)l.ReadyCount), "{callback}", "Callbacks ready to run now.");
        s_meter.CreateObservableCounter(NetworkIO, static () => ObserveIO(), "By", "Bytes received and sent by stream connections.");
    }

    /// <summary>True while callbacks should be timed for the instruments (slow callbacks, loop lag).</summary>
    internal static bool TimingWanted => Lag.Enabled || Slow.Enabled;

    /// <summary>Adds a loop to what the observable instruments report; returns its id. Called once per loop.</summary>
    internal static int Register(BaseEventLoop loop)
    {
        lock (s_loopsLock)
        {
            if ((s_loops.Count & 63) == 63)
            {
                s_loops.RemoveAll(static w => !w.TryGetTarget(out _));
            }

            s_loops.Add(new WeakReference<BaseEventLoop>(loop));
            return ++s_nextLoopId;
        }
    }

    /// <summary>Removes a closed loop: it reports no more.</summary>
    internal static void Unregister(BaseEventLoop loop)
    {
        lock (s_loopsLock)
        {
            s_loops.RemoveAll(w => !w.TryGetTarget(out var l) || ReferenceEquals(l, loop));
        }
    }

    private static List<BaseEventLoop> LiveLoops()
    {
        var live = new List<BaseEventLoop>();
        lock (s_loopsLock)
        {
            foreach (var w in s_loops)
            {
                if (w.TryGetTarget(out var loop))
                {
                    live.Add(loop);
                }
            }
        }

        return live;
    }

    private static IEnumerable<Measurement<long>> Observe(Func<BaseEventLoop, long> read)
    {
        foreach (var loop in LiveLoops())
        {
            yield return new Measurement<long>(read(loop), loop.MetricTags);
        }
    }

    private static IEnumerable<Measurement<long>> ObserveIO()
    {
        foreach (var loop in LiveLoops())
        {
            var tags = loop.MetricTags;
            yield return new Measurement<long>(loop.MetricBytesReceived, [tags[0], tags[1], new("network.io.direction", "receive")]);
            yield return new Measurement<long>(loop.MetricBytesSent, [tags[0], tags[1], new("network.io.direction", "transmit")]);
        }
    }

    /// <summary>A stream connection's protocol got ConnectionMade.</summary>
    internal static void ConnectionOpened(IEventLoop loop)
    {
        if (Opened.Enabled)
        {
            Opened.Add(1, TagsOf(loop));
        }

        if (Active.Enabled)
        {
            Active.Add(1, TagsOf(loop));
        }
    }

    /// <summary>That connection's ConnectionLost ran.</summary>
    internal static void ConnectionClosed(IEventLoop loop)
    {
        if (Closed.Enabled)
        {
            Closed.Add(1, TagsOf(loop));
        }

        if (Active.Enabled)
        {
            Active.Add(-1, TagsOf(loop));
        }
    }

    /// <summary>A TLS handshake ended: <paramref name="error"/> null when it succeeded.</summary>
    internal static void HandshakeFinished(IEventLoop loop, bool server, Exception? error)
    {
        if (!Handshakes.Enabled)
        {
            return;
        }

        var tags = TagsOf(loop);
        var side = new KeyValuePair<string, object?>("tls.side", server ? "server" : "client");
        if (error is null)
        {
            Handshakes.Add(1, [.. tags, side]);
        }
        else
        {
            Handshakes.Add(1, [.. tags, side, new KeyValuePair<string, object?>("error.type", error.GetType().FullName)]);
        }
    }

    /// <summary>A server stopped accepting for a while (out of descriptors or buffers).</summary>
    internal static void AcceptBackedOff(IEventLoop loop)
    {
        if (Backoffs.Enabled)
        {
            Backoffs.Add(1, TagsOf(loop));
        }
    }

    private static KeyValuePair<string, object?>[] TagsOf(IEventLoop loop) => loop is BaseEventLoop b ? b.MetricTags : [];

    /// <summary>Converts a stopwatch interval to seconds.</summary>
    internal static double Seconds(long ticks) => ticks * (1.0 / Stopwatch.Frequency);
}
