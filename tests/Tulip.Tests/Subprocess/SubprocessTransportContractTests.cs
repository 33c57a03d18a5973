using System.ComponentModel;
using System.Text;
using Tulip;
using Tulip.Tests.Selectors;
using static Tulip.Tests.Subprocess.SubprocessTestUtil;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Subprocess;

/// <summary>
/// The subprocess contract (issue 13), on real programs: asyncio's call order, pipes, /dev/null, merged stderr,
/// exit codes and signals, Close, options (env, cwd, executable, pass fds, session, process group), and no
/// zombie after any of them. On every loop: the selector loops watch the pidfd themselves, the proactor through
/// PidFdWatcher, and each uses its own pipes; and again on every loop with the portable implementation on
/// System.Diagnostics.Process registered (<see cref="ProcessSubprocessTransportContractTests"/>).
/// </summary>
public abstract partial class SubprocessTransportContractTests : SubprocessSuite
{
    protected SubprocessTransportContractTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public void Cat_EchoesStdinToStdout_InAsyncioOrder()
    {
        Run(Kind, async loop =>
        {
            var data = Pattern(219_264);
            var recorder = await RunToEnd(loop, "cat", [], input: data);
            Assert.Equal(data, recorder.Output[1].ToArray());
            Assert.Equal(0, recorder.Transport!.ReturnCode);
            Assert.Contains("pipe0", recorder.Events);
            Assert.Contains("pipe1", recorder.Events);
            Assert.Contains("pipe2", recorder.Events);
            Assert.True(recorder.Events.IndexOf("exited") < recorder.Events.IndexOf("lost"));
            Assert.Null(recorder.PipeErrors[1]);
            Assert.True(recorder.Transport.IsClosing);
        });
    }

    [Theory]
    [InlineData(8_192)]
    [InlineData(8_193)]
    [InlineData(65_536)]
    [InlineData(65_537)]
    [InlineData(219_263)]
    [InlineData(1 << 20)]
    public void Stdin_IsWrittenWhole(int size)
    {
        Run(Kind, async loop =>
        {
            var data = Pattern(size);
            var recorder = await RunToEnd(loop, "wc", ["-c"], input: data);
            Assert.Equal(size.ToString(System.Globalization.CultureInfo.InvariantCulture), recorder.Text(1).Trim());
        });
    }

    [Theory]
    [InlineData("exit 0", 0)]
    [InlineData("exit 3", 3)]
    [InlineData("exit 255", 255)]
    [InlineData("kill -9 $$", -9)]
    [InlineData("kill -TERM $$", -15)]
    public void ReturnCode_IsTheExitCode_OrTheNegativeSignal(string command, int expected)
    {
        Run(Kind, async loop =>
        {
            var (transport, recorder) = await loop.SubprocessShellAsync(() => new SubprocessRecorder(loop), command);
            await recorder.Lost;
            AssertClean(recorder);
            Assert.Equal(expected < 0 ? KilledBy(-expected) : expected, transport.ReturnCode);
        });
    }

    [Fact]
    public void DevNull_ForEachStream()
    {
        Run(Kind, async loop =>
        {
            // stdin /dev/null: cat reads EOF at once.
            var r = await RunToEnd(loop, "cat", [], new SubprocessOptions { StandardInput = SubprocessStdio.DevNull });
            Assert.Null(r.Transport!.GetPipeTransport(0));
            Assert.Equal(0, r.Output[1].Length);
            Assert.Equal(0, r.Transport.ReturnCode);

            r = await RunToEnd(loop, "/bin/sh", ["-c", "echo out; echo err >&2"], new SubprocessOptions { StandardOutput = SubprocessStdio.DevNull });
            Assert.Null(r.Transport!.GetPipeTransport(1));
            Assert.Equal("err\n", r.Text(2));

            r = await RunToEnd(loop, "/bin/sh", ["-c", "echo out; echo err >&2"], new SubprocessOptions { StandardError = SubprocessStdio.DevNull });
            Assert.Null(r.Transport!.GetPipeTransport(2));
            Assert.Equal("out\n", r.Text(1));
            Assert.DoesNotContain("pipe2", r.Events);
        });
    }

    [Fact]
    public void StderrMergedIntoStdout()
    {
        Run(Kind, async loop =>
        {
            if (!Has(SubprocessFeatures.MergeStderr))
            {
                await AssertRefused(loop, "options.StandardError", new SubprocessOptions { StandardError = SubprocessStdio.StandardOutput });
                return;
            }

            var r = await RunToEnd(loop, "/bin/sh", ["-c", "echo out; echo err >&2; echo out2"],
                new SubprocessOptions { StandardError = SubprocessStdio.StandardOutput });
            Assert.Null(r.Transport!.GetPipeTransport(2));
            Assert.Equal("out\nerr\nout2\n", r.Text(1));
        });
    }

    [Fact]
    public void Inherit_GivesTheChildThisProcesssFd()
    {
        Run(Kind, async loop =>
        {
            var r = await RunToEnd(loop, "/bin/sh", ["-c", "test -e /proc/self/fd/0 && echo yes"],
                new SubprocessOptions { StandardInput = SubprocessStdio.Inherit });
            Assert.Null(r.Transport!.GetPipeTransport(0));
            Assert.Equal("yes\n", r.Text(1));
        });
    }

    [Fact]
    public void GivenFd_Handle_Stream_AreTheChildsStdout()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            if (!Has(SubprocessFeatures.GivenFds))
            {
                await AssertRefused(loop, "options.StandardOutput", new SubprocessOptions { StandardOutput = SubprocessStdio.FromFd(pipe.WriteFd) });
                await AssertRefused(loop, "options.StandardInput", new SubprocessOptions { StandardInput = SubprocessStdio.FromHandle(new Microsoft.Win32.SafeHandles.SafeFileHandle(pipe.ReadFd, ownsHandle: false)) });
                using var stream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(pipe.WriteFd, ownsHandle: false), FileAccess.Write);
                await AssertRefused(loop, "options.StandardError", new SubprocessOptions { StandardError = SubprocessStdio.FromStream(stream) });
                return;
            }

            var r = await RunToEnd(loop, "/bin/sh", ["-c", "echo raw"], new SubprocessOptions { StandardOutput = SubprocessStdio.FromFd(pipe.WriteFd) });
            Assert.Null(r.Transport!.GetPipeTransport(1));
            Assert.Equal("raw\n", PipeTestNativeRead(pipe.ReadFd));

            // One file each: reading FileStream.SafeFileHandle moves the shared file offset back to the stream's own position.
            foreach (var (how, make) in new (string, Func<FileStream, SubprocessStdio>)[]
            {
                ("stream", SubprocessStdio.FromStream),
                ("handle", file => SubprocessStdio.FromHandle(file.SafeFileHandle)),
            })
            {
                string path = Path.GetTempFileName();
                try
                {
                    using (var file = new FileStream(path, FileMode.Create, FileAccess.Write))
                    {
                        await RunToEnd(loop, "/bin/sh", ["-c", $"echo {how}"], new SubprocessOptions { StandardOutput = make(file) });
                        Assert.True(file.CanWrite); // still the caller's
                    }

                    Assert.Equal($"{how}\n", File.ReadAllText(path));
                }
                finally
                {
                    File.Delete(path);
                }
            }
        });
    }

    [Fact]
    public void Kill_Terminate_SendSignal()
    {
        Run(Kind, async loop =>
        {
            if (!Has(SubprocessFeatures.AnySignal))
            {
                // Only SIGKILL (on Windows SIGTERM too, as TerminateProcess): the others are refused, and the child runs on.
                var (child, childRecorder) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"]);
                var ex = Assert.Throws<NotSupportedException>(child.Terminate);
                Assert.Contains("PidFdSubprocessTransportFactory", ex.Message, StringComparison.Ordinal);
                Assert.Throws<NotSupportedException>(() => child.SendSignal(Interop.SIGUSR1));
                Assert.Null(child.ReturnCode);
                child.Kill();
                await childRecorder.Lost;
                AssertClean(childRecorder);
                Assert.Equal(KilledBy(9), child.ReturnCode);
                child.Kill();
                child.SendSignal(Interop.SIGTERM); // reaped: a no-op, not refused
                return;
            }

            foreach (var (signal, expected) in new (Action<ISubprocessTransport>, int)[]
            {
                (t => t.Kill(), -9),
                (t => t.Terminate(), -15),
                (t => t.SendSignal(Interop.SIGUSR1), -Interop.SIGUSR1),
            })
            {
                var (transport, recorder) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"]);
                signal(transport);
                await recorder.Lost;
                AssertClean(recorder);
                Assert.Equal(expected, transport.ReturnCode);
                // Reaped: later signals are no-ops (the pid may be another process's by now).
                transport.Kill();
                transport.SendSignal(Interop.SIGTERM);
            }
        });
    }

    [Fact]
    public void SendSignal_OfAnInvalidNumber_Throws()
    {
        Run(Kind, async loop =>
        {
            var (transport, recorder) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"]);
            Assert.Throws<ArgumentException>(() => transport.SendSignal(1000));
            transport.Close();
            await recorder.Lost;
            AssertClean(recorder);
        });
    }

    [Fact]
    public void TheChild_IsRunByTheImplementationBound()
    {
        Run(Kind, async loop =>
        {
            var r = await RunToEnd(loop, "true", []);
            if (Features == SubprocessFeatures.Process)
            {
                Assert.IsType<ProcessSubprocessTransport>(r.Transport);
                return;
            }

            // Watched by pid when the binding forces it, or where this system refused pidfd_open.
            bool byPid = Features == SubprocessFeatures.SigChld || PosixSpawn.PidFdUnavailable;
            Assert.Equal(byPid, Assert.IsType<PidFdSubprocessTransport>(r.Transport).WatchedByPid);
        });
    }

    [Fact]
    public void Close_KillsARunningChild_AndReapsIt()
    {
        Run(Kind, async loop =>
        {
            var (transport, recorder) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"]);
            Assert.Null(transport.ReturnCode);
            transport.Close();
            Assert.True(transport.IsClosing);
            await recorder.Lost;
            AssertClean(recorder);
            Assert.Equal(KilledBy(9), transport.ReturnCode);
        });
    }

    [Fact]
    public void Close_OfAFinishedChild_DoesNotSignalIt()
    {
        Run(Kind, async loop =>
        {
            // The child's stdout is held open by nothing else: it exits 7, and Close after ProcessExited keeps 7.
            var (transport, recorder) = await loop.SubprocessShellAsync(() => new SubprocessRecorder(loop), "exit 7",
                new SubprocessOptions { StandardOutput = SubprocessStdio.DevNull, StandardError = SubprocessStdio.DevNull });
            await recorder.Exited;
            Assert.Equal(7, transport.ReturnCode);
            transport.Close();
            await recorder.Lost;
            AssertClean(recorder);
            Assert.Equal(7, transport.ReturnCode);
        });
    }

    [Fact]
    public void StdinBrokenPipe_IsReportedOnPipe0_WithoutCrashing()
    {
        Run(Kind, async loop =>
        {
            var (transport, recorder) = await loop.SubprocessShellAsync(() => new SubprocessRecorder(loop), "exit 0");
            var stdin = (IWriteTransport)transport.GetPipeTransport(0)!;
            await recorder.Exited;
            stdin.Write(Pattern(1 << 20));
            await recorder.Lost;
            AssertClean(recorder);
            Assert.True(recorder.PipeErrors[0] is null or IOException, $"{recorder.PipeErrors[0]}");
        });
    }

    [Fact]
    public void StdinFlowControl_ReachesTheSubprocessProtocol()
    {
        Run(Kind, async loop =>
        {
            // sleep never reads: the pipe fills, the stdin transport buffers past its high-water mark.
            var (transport, recorder) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"]);
            ((IWriteTransport)transport.GetPipeTransport(0)!).Write(Pattern(1 << 20));
            Assert.True(await Eventually(() => recorder.PauseCount == 1, 30_000));
            transport.Close();
            await recorder.Lost;
            AssertClean(recorder);
            Assert.Equal(KilledBy(9), transport.ReturnCode);
        });
    }

    [Fact]
    public void PauseReading_OnAChattyChild_HoldsItsOutput()
    {
        bool pausedOnce = false;
        Run(Kind, async loop =>
        {
            // Paused in the first delivery, so that more is there to be (wrongly) delivered, and far more than one read
            // (64 KiB), one held completion and the pipe (64 KiB) can hold: the child cannot finish while paused. (Pausing
            // after polling for output let a loaded loop read all but the last pipeful first, and the child exit.)
            SubprocessRecorder? made = null;
            var (transport, recorder) = await loop.SubprocessExecAsync(() => made = new SubprocessRecorder(loop)
            {
                AfterData = fd =>
                {
                    if (fd == 1 && !pausedOnce)
                    {
                        pausedOnce = true;
                        ((IReadTransport)made!.Transport!.GetPipeTransport(1)!).PauseReading();
                    }
                },
            }, "head", ["-c", "1000000", "/dev/zero"]);
            var stdout = (IReadTransport)transport.GetPipeTransport(1)!;
            Assert.True(await Eventually(() => pausedOnce, 30_000), "the child wrote nothing");
            long seen = recorder.Output[1].Length;
            Assert.InRange(seen, 1, 64 * 1024);
            for (int i = 0; i < 50; i++)
            {
                await Tasks.Sleep(0);
            }

            Assert.Equal(seen, recorder.Output[1].Length);
            Assert.Null(transport.ReturnCode); // blocked on the full pipe
            stdout.ResumeReading();
            await recorder.Lost;
            AssertClean(recorder);
            Assert.Equal(1_000_000, recorder.Output[1].Length);
            Assert.Equal(0, transport.ReturnCode);
        });
    }

    [Fact]
    public void PauseReading_InConnectionMade_HoldsTheOutputWrittenBeforeIt()
    {
        Run(Kind, async loop =>
        {
            // The child writes stdout at once, before ConnectionMade as often as not, then stderr, then waits for stdin:
            // once stderr has come, stdout's line is there too, and a paused stdout must not have delivered it.
            SubprocessRecorder? made = null;
            var (transport, recorder) = await loop.SubprocessExecAsync(() => made = new SubprocessRecorder(loop)
            {
                AfterMade = () => ((IReadTransport)made!.Transport!.GetPipeTransport(1)!).PauseReading(),
            }, "/bin/sh", ["-c", "echo early; echo then >&2; read x; exit 0"]);
            var stdout = (IReadTransport)transport.GetPipeTransport(1)!;
            Assert.False(stdout.IsReading);
            Assert.True(await Eventually(() => recorder.Text(2) == "then\n", 30_000), "the child wrote nothing to stderr");
            for (int i = 0; i < 50; i++)
            {
                await Tasks.Sleep(0);
            }

            Assert.Equal(0, recorder.Output[1].Length);
            stdout.ResumeReading();
            transport.GetPipeTransport(0)!.Close();
            await recorder.Lost;
            AssertClean(recorder);
            Assert.Equal("early\n", recorder.Text(1));
            Assert.Equal(0, transport.ReturnCode);
        });
    }

    [Fact]
    public void EnvironmentUpdates_WorkingDirectory_Executable()
    {
        Run(Kind, async loop =>
        {
            var r = await RunToEnd(loop, "/bin/sh", ["-c", "echo \"$TULIP_A|${TULIP_B-unset}|$(pwd)|$0\""], new SubprocessOptions
            {
                EnvironmentUpdates = new Dictionary<string, string?> { ["TULIP_A"] = "a b", ["HOME"] = null },
                WorkingDirectory = "/tmp",
            });
            Assert.Equal("a b|unset|/tmp|/bin/sh\n", r.Text(1));

            r = await RunToEnd(loop, "/usr/bin/env", [], new SubprocessOptions { Environment = new Dictionary<string, string> { ["ONLY"] = "this" } });
            Assert.Equal("ONLY=this\n", r.Text(1));

            // argv[0] apart from the file run.
            if (!Has(SubprocessFeatures.Executable))
            {
                await AssertRefused(loop, "options.Executable", new SubprocessOptions { Executable = "sh" });
                return;
            }

            r = await RunToEnd(loop, "my-name", ["-c", "echo $0"], new SubprocessOptions { Executable = "sh" });
            Assert.Equal("my-name\n", r.Text(1));
        });
    }

    [Fact]
    public void Path_IsSearchedInTheChildsPath()
    {
        Run(Kind, async loop =>
        {
            var dir = Directory.CreateTempSubdirectory("tulip-path");
            try
            {
                string script = Path.Combine(dir.FullName, "tulip-hello");
                File.WriteAllText(script, "#!/bin/sh\necho hello\n");
                File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
                var r = await RunToEnd(loop, "tulip-hello", [], new SubprocessOptions
                {
                    EnvironmentUpdates = new Dictionary<string, string?> { ["PATH"] = dir.FullName + ":/usr/bin:/bin" },
                });
                Assert.Equal("hello\n", r.Text(1));
            }
            finally
            {
                dir.Delete(recursive: true);
            }
        });
    }

    [Fact]
    public void SignalsAreDefault_AndUnblocked_InTheChild()
    {
        Run(Kind, async loop =>
        {
            // .NET ignores SIGPIPE; the child must not inherit that (bpo-31034).
            var r = await RunToEnd(loop, "grep", ["-E", "^Sig(Ign|Blk):", "/proc/self/status"]);
            var lines = r.Text(1).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToDictionary(l => l[..6], l => Convert.ToUInt64(l[7..].Trim(), 16));
            Assert.Equal(0UL, lines["SigBlk"]);
            // Process's child keeps the runtime's SIG_IGN for SIGPIPE (dotnet/runtime resets handlers, not ignored signals):
            // a limit of that implementation, pinned here so that a change shows.
            Assert.Equal(Has(SubprocessFeatures.DefaultSignals) ? 0UL : 1UL << (Interop.SIGPIPE - 1), lines["SigIgn"] & (1UL << (Interop.SIGPIPE - 1)));
        });
    }

    [Fact]
    public void NoFdOfThisProcess_LeaksIntoTheChild_ButPassFds()
    {
        Run(Kind, async loop =>
        {
            // Not close-on-exec: only the explicit closing keeps it out.
            using var leaky = new NativePipe(flags: 0);
            using var passed = new NativePipe(flags: 0);
            if (!Has(SubprocessFeatures.PassFds))
            {
                await AssertRefused(loop, "options.PassFds", new SubprocessOptions { PassFds = [passed.WriteFd] });
                // And the limit that goes with it: an fd of this process that is not close-on-exec reaches the child.
                var leaked = await RunToEnd(loop, "/bin/sh", ["-c", "ls /proc/$$/fd; true"]);
                Assert.Contains(leaky.WriteFd.ToString(System.Globalization.CultureInfo.InvariantCulture), leaked.Text(1).Split('\n'));
                return;
            }

            // ls lists the shell's fds (a glob would list the shell's own directory fd too).
            var r = await RunToEnd(loop, "/bin/sh", ["-c", "ls /proc/$$/fd; true"]); // "; true": the shell must not exec ls itself
            Assert.Equal("0 1 2", string.Join(" ", r.Text(1).Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal)));

            r = await RunToEnd(loop, "/bin/sh", ["-c", $"ls /proc/$$/fd; echo through > /proc/self/fd/{passed.WriteFd}"],
                new SubprocessOptions { PassFds = [passed.WriteFd] });
            Assert.Equal(new[] { 0, 1, 2, passed.WriteFd }, r.Text(1).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).Order());
            Assert.Equal("through\n", PipeTestNativeRead(passed.ReadFd));
            // Still close-on-exec-free and open here: the parent's fd is untouched.
            Assert.True(Interop.Fcntl(passed.WriteFd, Interop.F_GETFD) == 0);
        });
    }

    [Fact]
    public void PassFds_CloseOnExec_AreInheritedAnyway()
    {
        Run(Kind, async loop =>
        {
            using var low = new NativePipe(Interop.O_CLOEXEC);
            using var high = new NativePipe(Interop.O_CLOEXEC);
            if (!Has(SubprocessFeatures.PassFds))
            {
                await AssertRefused(loop, "options.PassFds", new SubprocessOptions { PassFds = [high.WriteFd, low.WriteFd] });
                return;
            }

            var r = await RunToEnd(loop, "/bin/sh", ["-c", $"echo a > /proc/self/fd/{low.WriteFd}; echo b > /proc/self/fd/{high.WriteFd}"],
                new SubprocessOptions { PassFds = [high.WriteFd, low.WriteFd] });
            Assert.Equal(0, r.Transport!.ReturnCode);
            Assert.Equal("a\n", PipeTestNativeRead(low.ReadFd));
            Assert.Equal("b\n", PipeTestNativeRead(high.ReadFd));
            Assert.Equal(Interop.FD_CLOEXEC, Interop.Fcntl(low.WriteFd, Interop.F_GETFD));
        });
    }

    [Fact]
    public void NewSession_AndProcessGroup()
    {
        Run(Kind, async loop =>
        {
            string ours = File.ReadAllText("/proc/self/stat");
            var mine = StatFields(ours);

            var r = await RunToEnd(loop, "cat", ["/proc/self/stat"]);
            var f = StatFields(r.Text(1));
            Assert.Equal(mine[2], f[2]);
            Assert.Equal(mine[3], f[3]);
            if (!Has(SubprocessFeatures.Sessions))
            {
                await AssertRefused(loop, "options.StartNewSession", new SubprocessOptions { StartNewSession = true });
                await AssertRefused(loop, "options.ProcessGroup", new SubprocessOptions { ProcessGroup = 0 });
                return;
            }

            r = await RunToEnd(loop, "cat", ["/proc/self/stat"], new SubprocessOptions { StartNewSession = true });
            f = StatFields(r.Text(1));
            string pid = r.Transport!.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(pid, f[2]);
            Assert.Equal(pid, f[3]);

            r = await RunToEnd(loop, "cat", ["/proc/self/stat"], new SubprocessOptions { ProcessGroup = 0 });
            f = StatFields(r.Text(1));
            pid = r.Transport!.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(pid, f[2]);
            Assert.Equal(mine[3], f[3]);
        });
    }

    [Fact]
    public void ShellGrandchildren_DieWithTheGroup()
    {
        Run(Kind, async loop =>
        {
            // The shell forks a sleep that holds stdout; killing the group ends both, and the pipe closes.
            if (!Has(SubprocessFeatures.Sessions))
            {
                await AssertRefused(loop, "options.ProcessGroup", new SubprocessOptions { ProcessGroup = 0 });
                return;
            }

            var (transport, recorder) = await loop.SubprocessShellAsync(() => new SubprocessRecorder(loop), "sleep 100 & echo started; wait",
                new SubprocessOptions { ProcessGroup = 0 });
            Assert.True(await Eventually(() => recorder.Text(1) == "started\n", 30_000));
            Assert.Equal(0, Interop.Kill(-transport.Pid, Interop.SIGKILL));
            await recorder.Lost;
            AssertClean(recorder);
            Assert.Equal(-9, transport.ReturnCode);
        });
    }

    [Fact]
    public void DataBeforeConnectionMade_IsQueued_NotLost()
    {
        Run(Kind, async loop =>
        {
            var r = await RunToEnd(loop, "/bin/sh", ["-c", "echo early; exec 1>&-; exec 2>&-"],
                new SubprocessOptions { StandardInput = SubprocessStdio.DevNull });
            Assert.Equal("early\n", r.Text(1));
        });
    }

    [Fact]
    public void TwoHundredConcurrentChildren()
    {
        Run(Kind, async loop =>
        {
            var options = new SubprocessOptions { StandardInput = SubprocessStdio.DevNull, StandardError = SubprocessStdio.DevNull };
            var tasks = new List<LoopTask<SubprocessRecorder>>();
            for (int i = 0; i < 200; i++)
            {
                int n = i;
                tasks.Add(loop.CreateTask(() => RunToEnd(loop, "/bin/sh", ["-c", $"echo {n}"], options)));
            }

            for (int i = 0; i < 200; i++)
            {
                var r = await tasks[i];
                Assert.Equal($"{i}\n", r.Text(1));
                Assert.Equal(0, r.Transport!.ReturnCode);
            }
        }, timeoutSeconds: 120);
    }

    [Fact]
    public void CoexistsWithSystemDiagnosticsProcess()
    {
        Run(Kind, async loop =>
        {
            for (int round = 0; round < 5; round++)
            {
                using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/bin/sh", ["-c", "exit 7"]))!;
                var (transport, recorder) = await loop.SubprocessShellAsync(() => new SubprocessRecorder(loop), "exit 5");
                await recorder.Lost;
                AssertClean(recorder);
                Assert.Equal(5, transport.ReturnCode);
                Assert.True(process.WaitForExit(30_000));
                Assert.Equal(7, process.ExitCode);
            }
        });
    }

    /// <summary>
    /// What the runtime does when SIGCHLD was ignored at start-up or it is pid 1 (it reaps every child with
    /// waitpid(-1)): someone else takes the exit status. The transport still ends, with asyncio's 255.
    /// </summary>
    [SubprocessFact(Requires = SubprocessFeatures.SurvivesForeignReaping, Because =
        "System.Diagnostics.Process's own reaper ends the whole process (Environment.FailFast, \"Error while reaping child\") " +
        "when waitpid() finds its child taken by someone else (dotnet/runtime ProcessWaitState.Unix.cs)")]
    public void AChildReapedBySomeoneElse_EndsWithReturnCode255()
    {
        Run(Kind, async loop =>
        {
            var (transport, recorder) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"]);
            transport.Kill();
            Assert.Equal(0, ReapBehindItsBack(transport.Pid));
            await recorder.Lost;
            AssertClean(recorder);
            Assert.Equal(255, transport.ReturnCode);
        });
    }

    [Fact]
    public void ConnectionMadeThrows_FailsTheCall_KillsAndReapsTheChild()
    {
        var errors = new List<ExceptionContext>();
        Run(Kind, async loop =>
        {
            ThrowingOnMade? made = null;
            await Assert.ThrowsAsync<FormatException>(async () =>
                await loop.SubprocessExecAsync(() => made = new ThrowingOnMade(loop), "sleep", ["100"]));
            await made!.Lost;
            Assert.Equal(KilledBy(9), made.Transport!.ReturnCode);
            Assert.True(IsReaped(made.Transport.Pid));
        }, errors: errors);
        Assert.Single(errors);
    }

    [Fact]
    public void Cancelled_WhileStarting_KillsAndReapsTheChild_AndTheProtocolHearsNothing()
    {
        Run(Kind, async loop =>
        {
            string marker = $"100.{Environment.CurrentManagedThreadId}{Random.Shared.Next(1000, 9999)}";
            SubprocessRecorder? recorder = null;
            using var cts = new CancellationTokenSource();
            await Assert.ThrowsAsync<CancelledError>(async () => await loop.SubprocessExecAsync(() =>
            {
                recorder = new SubprocessRecorder(loop);
                cts.Cancel();
                return recorder;
            }, "sleep", [marker], cancellationToken: cts.Token));
            Assert.True(await Eventually(() => ChildrenWithArgument(marker).Count == 0, 30_000), "the child was not reaped");
            Assert.Empty(recorder!.Events);
        });
    }

    [Fact]
    public void BadArguments_AreRefusedBeforeAnythingStarts()
    {
        Run(Kind, async loop =>
        {
            await Tasks.Sleep(0);
            Assert.Throws<ArgumentException>(() => loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "", []));
            Assert.Throws<ArgumentException>(() => loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "cat", ["a\0b"]));
            Assert.Throws<ArgumentException>(() => loop.SubprocessShellAsync(() => new SubprocessRecorder(loop), ""));
            Assert.Throws<ArgumentException>(() => loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "cat", [],
                new SubprocessOptions { StandardOutput = SubprocessStdio.StandardOutput }));
            Assert.Throws<ArgumentOutOfRangeException>(() => loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "cat", [],
                new SubprocessOptions { PassFds = [2] }));
            Assert.Throws<ArgumentException>(() => loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "cat", [],
                new SubprocessOptions { StartNewSession = true, ProcessGroup = 0 }));
            Assert.Throws<ArgumentException>(() => loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "cat", [],
                new SubprocessOptions { EnvironmentUpdates = new Dictionary<string, string?> { ["A=B"] = "c" } }));
            Assert.Throws<ArgumentOutOfRangeException>(() => SubprocessStdio.FromFd(-1));
        });
    }

    [Fact]
    public void SetProtocol_TakesOnlyASubprocessProtocol()
    {
        Run(Kind, async loop =>
        {
            var (transport, recorder) = await loop.SubprocessShellAsync(() => new SubprocessRecorder(loop), "exit 0");
            Assert.Throws<ArgumentException>(() => transport.SetProtocol(new Tulip.Tests.Transports.PipeRecorder(loop)));
            Assert.Same(recorder, transport.GetProtocol());
            await recorder.Lost;
        });
    }

    /// <summary>waitid(P_PID, pid, WEXITED), blocking (after SIGKILL that is prompt), as another reaper would.</summary>
    private static unsafe int ReapBehindItsBack(int pid)
    {
        Interop.SigInfo info;
        const int P_PID = 1;
        return Interop.WaitId(P_PID, pid, &info, Interop.WEXITED);
    }

    internal static string PipeTestNativeRead(int fd)
    {
        var buffer = new byte[4096];
        int n;
        unsafe
        {
            fixed (byte* p = buffer)
            {
                n = (int)Interop.Read(fd, p, (nuint)buffer.Length);
            }
        }

        return n > 0 ? Encoding.UTF8.GetString(buffer, 0, n) : "";
    }

    private sealed class ThrowingOnMade(IEventLoop loop) : SubprocessProtocol
    {
        public Future<VoidResult> Lost { get; } = loop.CreateFuture<VoidResult>();

        public ISubprocessTransport? Transport { get; private set; }

        public override void ConnectionMade(IBaseTransport transport)
        {
            Transport = (ISubprocessTransport)transport;
            throw new FormatException("made");
        }

        public override void ConnectionLost(Exception? exception) => Lost.TrySetResult(default);
    }
}

public sealed class EpollSubprocessTransportTests() : SubprocessTransportContractTests(LoopKinds.Epoll);

public sealed class PollSubprocessTransportTests() : SubprocessTransportContractTests(LoopKinds.Poll);

public sealed class ProactorSubprocessTransportTests() : SubprocessTransportContractTests(LoopKinds.Proactor);

/// <summary>The same contract with <see cref="ProcessSubprocessTransportFactory"/> registered: what it refuses is asserted refused.</summary>
public abstract class ProcessSubprocessTransportContractTests(LoopKind kind) : SubprocessTransportContractTests(kind)
{
    protected override SubprocessFeatures Features => SubprocessFeatures.Process;

    protected override void Prepare(BaseEventLoop loop) => UseProcessImplementation(loop);
}

public sealed class EpollProcessSubprocessTransportTests() : ProcessSubprocessTransportContractTests(LoopKinds.Epoll);

public sealed class PollProcessSubprocessTransportTests() : ProcessSubprocessTransportContractTests(LoopKinds.Poll);

public sealed class ProactorProcessSubprocessTransportTests() : ProcessSubprocessTransportContractTests(LoopKinds.Proactor);

/// <summary>The same contract with every child watched by pid through SIGCHLD (the posix_spawn implementation where pidfd_open is refused).</summary>
public abstract class SigChldSubprocessTransportContractTests(LoopKind kind) : SubprocessTransportContractTests(kind)
{
    protected override SubprocessFeatures Features => SubprocessFeatures.SigChld;

    protected override void Prepare(BaseEventLoop loop) => UseSigChldImplementation(loop);
}

public sealed class EpollSigChldSubprocessTransportTests() : SigChldSubprocessTransportContractTests(LoopKinds.Epoll);

public sealed class PollSigChldSubprocessTransportTests() : SigChldSubprocessTransportContractTests(LoopKinds.Poll);

public sealed class ProactorSigChldSubprocessTransportTests() : SigChldSubprocessTransportContractTests(LoopKinds.Proactor);
