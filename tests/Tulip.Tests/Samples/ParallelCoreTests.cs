using Tulip.Samples.Parallel;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Samples;

/// <summary>
/// samples/Parallel's core in-process, on every loop kind: a job whose shell cannot start fails with a message and the
/// others go on; a stop before the first line starts nothing; and the argument parsing's answers.
/// </summary>
[Collection(NativeFdCollection.Name)]
public sealed class ParallelCoreTests
{
    private static Func<CancellationToken, LoopTask<string?>> Lines(params string[] lines)
    {
        int next = 0;
        return async ct =>
        {
            await Tasks.Sleep(0, ct);
            return next < lines.Length ? lines[next++] : null;
        };
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void A_job_that_cannot_start_fails_with_a_message(string kind)
    {
        Run(kind, async loop =>
        {
            var written = new List<JobResult>();
            var settings = new ParallelSettings { Jobs = 2, Shell = "/nonexistent/tulip-parallel-sh" };
            int failed = await ParallelJobs.RunAsync(Lines("echo a", "echo b", "echo c"), settings,
                async r => { written.Add(r); await Tasks.Sleep(0); }, CancellationToken.None);
            Assert.Equal(3, failed);
            Assert.Equal(["echo a", "echo b", "echo c"], written.Select(r => r.Command));
            Assert.All(written, r =>
            {
                Assert.True(r.Failed);
                Assert.Empty(r.Output);
                Assert.StartsWith($"parallel: cannot start '{r.Command}': ", System.Text.Encoding.UTF8.GetString(r.Error), StringComparison.Ordinal);
            });
        });
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void Jobs_run_in_order_with_their_output(string kind)
    {
        Run(kind, async loop =>
        {
            var written = new List<JobResult>();
            int failed = await ParallelJobs.RunAsync(Lines("echo one; echo e1 >&2", "", "exit 3", "printf two"), new ParallelSettings { Jobs = 3 },
                async r => { written.Add(r); await Tasks.Sleep(0); }, CancellationToken.None);
            Assert.Equal(1, failed);
            Assert.Equal(["echo one; echo e1 >&2", "exit 3", "printf two"], written.Select(r => r.Command));
            Assert.Equal("one\n"u8.ToArray(), written[0].Output);
            Assert.Equal("e1\n"u8.ToArray(), written[0].Error);
            Assert.True(written[1].Failed);
            Assert.Equal("two"u8.ToArray(), written[2].Output);
        });
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void A_stop_before_the_first_line_starts_nothing(string kind)
    {
        Run(kind, async loop =>
        {
            using var stop = new CancellationTokenSource();
            stop.Cancel();
            var written = new List<JobResult>();
            int failed = await ParallelJobs.RunAsync(Lines("exit 1"), new ParallelSettings(), async r => { written.Add(r); await Tasks.Sleep(0); }, stop.Token);
            Assert.Equal(0, failed);
            Assert.Empty(written);
        });
    }

    [Fact]
    public void A_writer_that_fails_ends_the_jobs_and_its_exception_comes_out()
    {
        Run("epoll", async loop =>
        {
            var dir = Directory.CreateTempSubdirectory("tulip-parallel-");
            try
            {
                // The first job's output fails to be written while the second still runs (it waits for a file nobody makes):
                // the second is ended (its group signalled) and then the writer's exception comes out.
                var ex = await Assert.ThrowsAsync<IOException>(async () => await ParallelJobs.RunAsync(
                    Lines("true", $"i=0; while [ ! -e {dir.FullName}/never ] && [ $i -lt 6000 ]; do i=$((i+1)); sleep 0.05; done"),
                    new ParallelSettings { Jobs = 2 }, _ => throw new IOException("broken stdout"), CancellationToken.None));
                Assert.Equal("broken stdout", ex.Message);
            }
            finally
            {
                dir.Delete(recursive: true);
            }
        });
    }

    [Theory]
    [InlineData(new[] { "-j", "3" }, 3, null)]
    [InlineData(new[] { "-j3" }, 3, null)]
    [InlineData(new[] { "--jobs=5", "--timeout", "0.5" }, 5, 0.5)]
    [InlineData(new[] { "--timeout=30", "--jobs", "1" }, 1, 30.0)]
    public void Good_arguments_parse(string[] args, int jobs, double? timeout)
    {
        var settings = ParallelSettings.Parse(args, out string? error, out bool help);
        Assert.Null(error);
        Assert.False(help);
        Assert.NotNull(settings);
        Assert.Equal(jobs, settings!.Jobs);
        Assert.Equal(timeout, settings.Timeout);
        Assert.Equal(2.0, settings.KillDelay);
        Assert.Equal("/bin/sh", settings.Shell);
    }

    [Fact]
    public void No_arguments_take_the_number_of_cores_and_no_timeout()
    {
        var settings = ParallelSettings.Parse([], out _, out _)!;
        Assert.Equal(Environment.ProcessorCount, settings.Jobs);
        Assert.Null(settings.Timeout);
    }

    [Theory]
    [InlineData(new[] { "-j", "0" }, "-j wants a whole number of jobs, at least 1, not '0'")]
    [InlineData(new[] { "-j", "-2" }, "not '-2'")]
    [InlineData(new[] { "--jobs" }, "--jobs needs a value")]
    [InlineData(new[] { "--timeout", "0" }, "--timeout wants a number of seconds greater than 0")]
    [InlineData(new[] { "--timeout", "NaN" }, "not 'NaN'")]
    [InlineData(new[] { "--timeout", "1e999" }, "not '1e999'")]
    [InlineData(new[] { "-x" }, "unknown option '-x'")]
    [InlineData(new[] { "echo", "hi" }, "unexpected argument 'echo': the commands are read from standard input")]
    public void Bad_arguments_say_what_is_wrong(string[] args, string message)
    {
        Assert.Null(ParallelSettings.Parse(args, out string? error, out bool help));
        Assert.False(help);
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-h")]
    [InlineData("--help")]
    public void Help_is_asked_for(string arg)
    {
        Assert.Null(ParallelSettings.Parse(["-j", "2", arg], out string? error, out bool help));
        Assert.True(help);
        Assert.Null(error);
    }
}
