using System.Diagnostics;
using Tulip.Diagnostics;

namespace Tulip.Tests.Samples;

/// <summary>
/// samples/Metrics, run as a process on each loop kind: the Tulip meter goes out through OpenTelemetry's
/// console exporter with every instrument the traffic exercises, and a bad argument exits 2.
/// </summary>
public abstract class MetricsSampleTests : LoopSuite
{
    protected MetricsSampleTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public void ExportsTheLoopsMetricsThroughOpenTelemetry()
    {
        var (exit, stdout, stderr) = RunSample(Kind.Name, "0.5");
        Assert.True(exit == 0, $"exit {exit}; stderr: {stderr}");
        foreach (string name in new[] { TulipMetrics.LoopIterations, TulipMetrics.LoopCallbacks, TulipMetrics.LoopLag, TulipMetrics.NetworkIO,
            TulipMetrics.ConnectionsOpened, TulipMetrics.ConnectionsClosed, TulipMetrics.ConnectionsActive, TulipMetrics.ReadyQueueDepth })
        {
            Assert.Contains("Metric Name: " + name + ",", stdout);
        }

        Assert.Contains($"tulip.loop.kind: {Kind.Name}", stdout);
        Assert.Matches(@"metrics: [1-9][0-9]* lines echoed by 10 clients", stdout);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("soon")]
    public void ABadDuration_ExitsTwoWithTheUsage(string argument)
    {
        var (exit, _, stderr) = RunSample(Kind.Name, argument);
        Assert.Equal(2, exit);
        Assert.Contains("usage: Metrics [SECONDS]", stderr);
    }

    private static (int ExitCode, string Stdout, string Stderr) RunSample(string loopKind, params string[] args)
    {
        string program = Path.Combine(AppContext.BaseDirectory, "Metrics");
        Assert.True(File.Exists(program), $"{program} is missing: Tulip.Tests references samples/Metrics, which builds it there");
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["TULIP_LOOP"] = loopKind;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        // A hang guard only: the sample runs for half a second, plus start-up on a loaded machine.
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail("samples/Metrics did not exit within the hang guard");
        }

        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}

public sealed class EpollMetricsSampleTests() : MetricsSampleTests(LoopKinds.Epoll);

public sealed class PollMetricsSampleTests() : MetricsSampleTests(LoopKinds.Poll);

public sealed class ProactorMetricsSampleTests() : MetricsSampleTests(LoopKinds.Proactor);
