using System.Globalization;
using System.Text;

namespace Tulip.Tests.Samples;

/// <summary>
/// scripts/parallel's program (samples/Parallel) run as a real process on every loop kind (TULIP_LOOP): input order kept
/// when jobs end out of order, the -j bound, the exit status (failures counted, capped at 101), timeouts (SIGTERM, then
/// SIGKILL to a job that traps it), a job's grandchildren ended with it, and SIGTERM/SIGINT to parallel leaving no
/// process behind. Order is made visible by jobs that wait on files other jobs create (bounded waits, hang guards
/// only); nothing asserts a duration. Each test marks its jobs' processes with a token of its own in their command
/// lines and finds any left over by it. In the fd collection: child processes.
/// </summary>
[Collection(NativeFdCollection.Name)]
public sealed class ParallelTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("tulip-parallel-");

    // A sleep of a duration no other test uses: its command line marks this test's processes.
    private readonly string _sleep = "sleep 7" + Random.Shared.Next(100_000, 999_999).ToString(CultureInfo.InvariantCulture) + ".5";

    private string D => _dir.FullName;

    private string SleepToken => _sleep["sleep ".Length..];

    // A shell loop that waits until FILE exists, giving up (exit 9) after a few minutes: a hang guard, not a timing.
    private static string WaitFor(string file) => $"i=0; while [ ! -e {file} ]; do i=$((i+1)); [ $i -gt 12000 ] && exit 9; sleep 0.02; done";

    public void Dispose()
    {
        // Only after a failure is anything left; end it so the failure does not spread.
        foreach (int pid in ParallelProgram.LiveProcessesWith(SleepToken))
        {
            try
            {
                System.Diagnostics.Process.GetProcessById(pid).Kill();
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // gone meanwhile
            }
        }

        _dir.Delete(recursive: true);
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void Output_is_whole_and_in_input_order_when_a_later_job_ends_first(string kind)
    {
        // Job 1 ends only after job 2 has ended (job 2's last act makes the file job 1 waits on); both write to
        // both streams, and job 3 writes many lines while job 4 does too, which must not interleave.
        string input = string.Join('\n',
            $"echo first-out; echo first-err >&2; {WaitFor($"{D}/second-done")}; echo first-end",
            $"echo second-out; echo second-err >&2; touch {D}/second-done",
            "i=0; while [ $i -lt 2000 ]; do echo a$i; echo A$i >&2; i=$((i+1)); done",
            "i=0; while [ $i -lt 2000 ]; do echo b$i; echo B$i >&2; i=$((i+1)); done") + "\n";
        var (code, stdout, stderr) = ParallelProgram.Run(kind, input, "-j", "4");
        Assert.True(code == 0, $"exit {code}: {stderr}");
        var expectedOut = new StringBuilder("first-out\nfirst-end\nsecond-out\n");
        var expectedErr = new StringBuilder("first-err\nsecond-err\n");
        foreach (char c in "ab")
        {
            for (int i = 0; i < 2000; i++)
            {
                expectedOut.Append(CultureInfo.InvariantCulture, $"{c}{i}\n");
                expectedErr.Append(CultureInfo.InvariantCulture, $"{char.ToUpperInvariant(c)}{i}\n");
            }
        }

        Assert.Equal(expectedOut.ToString(), stdout);
        Assert.Equal(expectedErr.ToString(), stderr);
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void At_most_N_jobs_run_at_once_and_N_do(string kind)
    {
        // Each job counts itself in and out under flock(1), keeping the highest count seen; it stays in until two
        // have been in at once (so the bound is reached, whatever the speed), then a moment more so that a
        // broken bound would show as a third.
        File.WriteAllText($"{D}/count", "0\n");
        File.WriteAllText($"{D}/max", "0\n");
        File.WriteAllText($"{D}/job.sh", $$"""
            d=$1
            flock "$d/lock" sh -c 'n=$(( $(cat "$1/count") + 1 )); echo $n > "$1/count"; [ $n -gt $(cat "$1/max") ] && echo $n > "$1/max"; true' _ "$d"
            i=0; while [ "$(cat "$d/max")" -lt 2 ]; do i=$((i+1)); [ $i -gt 12000 ] && exit 9; sleep 0.02; done
            sleep 0.05
            flock "$d/lock" sh -c 'echo $(( $(cat "$1/count") - 1 )) > "$1/count"' _ "$d"
            echo done
            """);
        string input = string.Concat(Enumerable.Repeat($"sh {D}/job.sh {D}\n", 8));
        var (code, stdout, stderr) = ParallelProgram.Run(kind, input, "-j", "2");
        Assert.True(code == 0, $"exit {code}: {stderr}");
        Assert.Equal(string.Concat(Enumerable.Repeat("done\n", 8)), stdout);
        Assert.Equal("2", File.ReadAllText($"{D}/max").Trim());
        Assert.Equal("0", File.ReadAllText($"{D}/count").Trim());
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void Exit_status_counts_failed_jobs(string kind)
    {
        // Non-zero exits, a job killed by a signal and a command the shell cannot find fail; the others do not.
        string input = "true\nexit 1\necho ok\nexit 7\nkill -KILL $$\nno-such-command-tulip-parallel\n\nfalse\n";
        var (code, stdout, stderr) = ParallelProgram.Run(kind, input);
        Assert.Equal(5, code);
        Assert.Equal("ok\n", stdout);
        Assert.Contains("no-such-command-tulip-parallel", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Exit_status_is_at_most_101()
    {
        var (code, _, stderr) = ParallelProgram.Run("epoll", string.Concat(Enumerable.Repeat("exit 1\n", 102)), "-j", "8");
        Assert.True(code == 101, $"exit {code}: {stderr}");
        (code, _, stderr) = ParallelProgram.Run("epoll", string.Concat(Enumerable.Repeat("exit 1\n", 100)), "-j", "8");
        Assert.True(code == 100, $"exit {code}: {stderr}");
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void A_job_past_its_timeout_gets_SIGTERM_and_its_group_dies_with_it(string kind)
    {
        // The shell forks a sleep and waits for it: SIGTERM to the group ends both. The timeout is long enough that
        // the shell has written the pid under any load (the pid is checked; the time never is).
        string input = $"{_sleep} & echo $! > {D}/p.tmp && mv {D}/p.tmp {D}/grandchild; wait\necho quick\n";
        var (code, stdout, stderr) = ParallelProgram.Run(kind, input, "--timeout", "2");
        Assert.True(code == 1, $"exit {code}: {stderr}");
        Assert.Equal("quick\n", stdout);
        Assert.True(File.Exists($"{D}/grandchild"), "the job's shell never got to fork its sleep");
        Assert.False(ParallelProgram.IsAlive(int.Parse(File.ReadAllText($"{D}/grandchild"), CultureInfo.InvariantCulture)));
        Assert.Empty(ParallelProgram.LiveProcessesWith(SleepToken));
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void A_job_that_traps_SIGTERM_gets_SIGKILL(string kind)
    {
        // The shell answers SIGTERM and goes on; only SIGKILL ends it (its loop never ends by itself). Its sleeps get
        // the SIGTERM too (the group's), so the trap runs at once. A timeout of 2 s leaves the shell time to set the
        // trap under any load ("armed" shows it did); the outcome is checked, never the time.
        string input = $"trap 'echo got-term' TERM; echo armed; while :; do {_sleep}; done\n";
        var (code, stdout, stderr) = ParallelProgram.Run(kind, input, "--timeout", "2");
        Assert.True(code == 1, $"exit {code}: {stderr}");
        Assert.StartsWith("armed\ngot-term\n", stdout, StringComparison.Ordinal);
        Assert.Empty(ParallelProgram.LiveProcessesWith(SleepToken));
    }

    [Theory]
    [InlineData("epoll", 15, false)]
    [InlineData("poll", 15, false)]
    [InlineData("proactor", 15, false)]
    [InlineData("epoll", 2, false)]
    [InlineData("epoll", 15, true)] // through scripts/parallel: the signal to the script's pid reaches the program
    public void A_signal_to_parallel_ends_every_running_job_and_starts_no_more(string kind, int signal, bool viaScript)
    {
        // Two running jobs, each a shell waiting for a sleep it forked (one shell traps SIGTERM, so it needs the
        // SIGKILL); a third waits for a slot. The signal is sent once both have written their pids.
        string job(int n) => $"{_sleep} & echo \"$$ $!\" > {D}/p{n}.tmp && mv {D}/p{n}.tmp {D}/p{n}; wait";
        string input = job(1) + "\n" + $"trap 'echo got-term' TERM; {job(2)}; while :; do {_sleep}; done\n" + $"touch {D}/third\n";
        using var p = ParallelProgram.Start(kind, input, viaScript, keepStdinOpen: true, "-j", "2");
        Assert.True(ParallelProgram.WaitForFile($"{D}/p1") && ParallelProgram.WaitForFile($"{D}/p2"), "the jobs did not start");
        p.Signal(signal);
        var (code, _, stderr) = p.WaitForExit();
        Assert.True(code == 128 + signal, $"exit {code}: {stderr}");
        foreach (string file in new[] { "p1", "p2" })
        {
            foreach (string pid in File.ReadAllText($"{D}/{file}").Split(' ', StringSplitOptions.TrimEntries))
            {
                Assert.False(ParallelProgram.IsAlive(int.Parse(pid, CultureInfo.InvariantCulture)), $"{file}: {pid} still runs");
            }
        }

        Assert.Empty(ParallelProgram.LiveProcessesWith(SleepToken));
        Assert.False(File.Exists($"{D}/third"), "a job started after the signal");
    }

    [Fact]
    public void Bad_arguments_exit_2_with_the_usage_on_stderr()
    {
        foreach (string[] args in new[] { new[] { "-j", "0" }, ["-j"], ["--timeout", "soon"], ["--timeout", "-1"], ["--frobnicate"], ["echo hi"] })
        {
            var (code, stdout, stderr) = ParallelProgram.Run("epoll", "echo never\n", args);
            Assert.True(code == 2, $"{string.Join(' ', args)}: exit {code}");
            Assert.Empty(stdout);
            Assert.Contains("usage: parallel [-j N] [--timeout SECONDS]", stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Help_exits_0_and_says_what_exit_2_means()
    {
        var (code, stdout, _) = ParallelProgram.Run("epoll", "", "--help");
        Assert.Equal(0, code);
        Assert.Contains("usage: parallel", stdout, StringComparison.Ordinal);
        Assert.Contains("2 for bad arguments", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_TULIP_LOOP_exits_2_naming_the_known_kinds()
    {
        var (code, stdout, stderr) = ParallelProgram.Run("no-such-loop", $"touch {D}/ran\n");
        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Contains("epoll", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists($"{D}/ran"));
    }
}
