using System.Diagnostics.Metrics;
using Tulip.Diagnostics;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Diagnostics;

/// <summary>
/// What a <see cref="MeterListener"/> reads from the Tulip meter, on every loop kind. The meter is the
/// process's, and other tests run beside these: each measurement is taken by its <c>tulip.loop.id</c>,
/// so only this test's loop counts.
/// </summary>
public abstract class MetricsTests : LoopSuite
{
    protected MetricsTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public void LoopConnectionsAndBytes_AreCountedForTheLoop()
    {
        using var metrics = new LoopMetrics();
        Run(Kind, async loop =>
        {
            metrics.LoopId = loop.MetricId;
            await using var server = await loop.CreateServerAsync(static () => new Transports.EchoProtocol(), ["127.0.0.1"], 0);
            var (transport, client) = await loop.CreateConnectionAsync(() => new Transports.RecordingProtocol(loop), "127.0.0.1", PortOf(server));
            transport.Write(new byte[1000]);
            Assert.True(await client.WaitBytes(loop, 1000));
            transport.Close();
            Assert.Null(await client.Lost);
            server.Close();
            await server.WaitClosedAsync();
            Assert.True(await Eventually(() => metrics.Sum(TulipMetrics.ConnectionsClosed) == 2), "both ends should be counted closed");

            metrics.Collect();
            Assert.True(metrics.Last(TulipMetrics.LoopIterations) > 0);
            Assert.True(metrics.Last(TulipMetrics.LoopCallbacks) >= metrics.Last(TulipMetrics.LoopIterations) / 2);
            Assert.Equal(2, metrics.Sum(TulipMetrics.ConnectionsOpened)); // the client's end and the server's
            Assert.Equal(0, metrics.Sum(TulipMetrics.ConnectionsActive));
            // Both ends are on this loop: 1,000 bytes out and back, each sent once and received once.
            Assert.Equal(2000, metrics.Last(TulipMetrics.NetworkIO, "receive"));
            Assert.Equal(2000, metrics.Last(TulipMetrics.NetworkIO, "transmit"));
            Assert.Equal(Kind.Name, metrics.Kind);
        });
    }

    [Fact]
    public void SlowCallbacksAndLag_AreMeasuredWhileListenedTo()
    {
        using var metrics = new LoopMetrics();
        Run(Kind, async loop =>
        {
            metrics.LoopId = loop.MetricId;
            loop.SlowCallbackDuration = 0; // every callback counts as slow: no wall-clock assumption
            var fired = loop.CreateFuture<bool>();
            loop.CallLater(0.001, () => fired.SetResult(true));
            Assert.True(await fired);
            metrics.Collect();
            Assert.True(metrics.Last(TulipMetrics.SlowCallbacks) > 0);
            Assert.True(metrics.LagSamples > 0, "the timer's lag should be recorded");
            Assert.True(metrics.MinLag >= 0);
        });
    }

    [Fact]
    public void NothingListening_TheLoopsStillCount_AndAListenerSeesTheTotalSoFar()
    {
        Run(Kind, async loop =>
        {
            for (int i = 0; i < 10; i++)
            {
                await Tasks.Sleep(0);
            }

            using var metrics = new LoopMetrics { LoopId = loop.MetricId };
            metrics.Collect();
            Assert.True(metrics.Last(TulipMetrics.LoopIterations) >= 10);
        });
    }

    /// <summary>A MeterListener on the Tulip meter that keeps what one loop (by id) reported.</summary>
    private sealed class LoopMetrics : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly object _lock = new();
        private readonly Dictionary<string, long> _last = [];
        private readonly Dictionary<string, long> _sums = [];

        public LoopMetrics()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == TulipMetrics.MeterName)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>(OnLong);
            _listener.SetMeasurementEventCallback<int>((i, v, t, s) => OnLong(i, v, t, s));
            _listener.SetMeasurementEventCallback<double>(OnDouble);
            _listener.Start();
        }

        public int LoopId { get; set; } = -1;

        public string? Kind { get; private set; }

        public int LagSamples { get; private set; }

        public double MinLag { get; private set; } = double.MaxValue;

        public void Collect() => _listener.RecordObservableInstruments();

        public long Last(string name, string? direction = null)
        {
            lock (_lock)
            {
                return _last.GetValueOrDefault(direction is null ? name : name + "/" + direction);
            }
        }

        public long Sum(string name)
        {
            lock (_lock)
            {
                return _sums.GetValueOrDefault(name);
            }
        }

        public void Dispose() => _listener.Dispose();

        private bool Mine(ReadOnlySpan<KeyValuePair<string, object?>> tags, out string? direction)
        {
            bool mine = false;
            string? kind = null;
            direction = null;
            foreach (var tag in tags)
            {
                if (tag.Key == "tulip.loop.id" && tag.Value is int id && id == LoopId)
                {
                    mine = true;
                }
                else if (tag.Key == "tulip.loop.kind")
                {
                    kind = tag.Value as string;
                }
                else if (tag.Key == "network.io.direction")
                {
                    direction = tag.Value as string;
                }
            }

            if (mine)
            {
                Kind = kind;
            }

            return mine;
        }

        private void OnLong(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
        {
            if (!Mine(tags, out string? direction))
            {
                return;
            }

            lock (_lock)
            {
                string key = direction is null ? instrument.Name : instrument.Name + "/" + direction;
                _last[key] = value;
                _sums[instrument.Name] = _sums.GetValueOrDefault(instrument.Name) + value;
            }
        }

        private void OnDouble(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
        {
            if (instrument.Name != TulipMetrics.LoopLag || !Mine(tags, out _))
            {
                return;
            }

            lock (_lock)
            {
                LagSamples++;
                MinLag = Math.Min(MinLag, value);
            }
        }
    }
}

public sealed class EpollMetricsTests() : MetricsTests(LoopKinds.Epoll);

public sealed class PollMetricsTests() : MetricsTests(LoopKinds.Poll);

public sealed class ProactorMetricsTests() : MetricsTests(LoopKinds.Proactor);
