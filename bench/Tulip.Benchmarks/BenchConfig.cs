using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;

namespace Tulip.Benchmarks;

/// <summary>
/// One short job for the whole suite (1 launch, 3 warm-ups, 5 measured iterations) so that it runs
/// in a few minutes; each invocation is itself 100k-1M operations, so iterations are long enough
/// to be stable. Adds the Op/s column (per operation, thanks to OperationsPerInvoke) and the
/// allocations per operation.
/// </summary>
public sealed class BenchConfig : ManualConfig
{
    public BenchConfig()
    {
        AddJob(Job.ShortRun.WithIterationCount(5).WithId("Short"));
        AddDiagnoser(MemoryDiagnoser.Default);
        AddColumn(StatisticColumn.OperationsPerSecond);
    }
}
