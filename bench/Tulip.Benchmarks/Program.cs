using BenchmarkDotNet.Running;

namespace Tulip.Benchmarks;

/// <summary>
/// <c>-- --filter '*'</c> runs the BenchmarkDotNet suite; <c>-- timers-memory</c> runs the
/// 1M-timers time and memory check. See bench/README.md.
/// </summary>
internal static class Program
{
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "timers-memory")
        {
            TimersMemory.Run();
            return;
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
