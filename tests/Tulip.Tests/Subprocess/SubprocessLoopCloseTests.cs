using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Tulip;
using static Tulip.Tests.Subprocess.SubprocessTestUtil;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Subprocess;

/// <summary>
/// A loop closed while children it spawned are not yet reaped (issue 13), on every loop and for each implementation:
/// the children that still run are killed and reaped, none is left a zombie, a pidfd goes with its child; a child that
/// has already exited is reaped and never signalled (its pid may be reused). And the transport's Close before a
/// finished child's exit was heard does not signal it either.
/// </summary>
public abstract class SubprocessLoopCloseTests : SubprocessSuite
{
    /// <summary>Only a hang guard: each wait below ends as soon as what it waits for holds.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    protected SubprocessLoopCloseTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public void ClosingTheLoop_KillsTheChildrenThatStillRun_AndReapsThem()
    {
        var pids = new List<int>();
        Run(Kind, async loop =>
        {
            var quiet = new SubprocessOptions
            {
                StandardInput = SubprocessStdio.DevNull, StandardOutput = SubprocessStdio.DevNull, StandardError = SubprocessStdio.DevNull,
            };
            for (int i = 0; i < 5; i++)
            {
                // Piped, and with no pipe at all (then the child is all the transport holds).
                var (piped, _) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"]);
                pids.Add(piped.Pid);
                var (bare, _) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"], quiet);
                pids.Add(bare.Pid);
            }

            // A chatty child whose output nobody reads (blocked in write), and one killed but maybe not dead yet.
            var (chatty, chattyRecorder) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "head", ["-c", "10000000", "/dev/zero"]);
            ((IReadTransport)chatty.GetPipeTransport(1)!).PauseReading();
            pids.Add(chatty.Pid);
            var (killed, _) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"]);
            killed.Kill();
            pids.Add(killed.Pid);
            Assert.All(pids, pid => Assert.False(HasExited(pid) && pid != killed.Pid, $"child {pid} ended before the loop closed"));
            Assert.Equal(pids.Count, loop.CloseHookCount);
        });

        // Run has closed the loop; nothing was closed by the test.
        Assert.True(WaitUntil(() => pids.All(IsGone)), Describe(pids));
        Assert.True(WaitUntil(() => pids.All(pid => !HasPidFd(pid))), "a pidfd of a closed loop's child is still open");
    }

    [Fact]
    public void ClosingTheLoop_ReapsAChildThatHasExited_WithoutSignallingIt()
    {
        var (command, trigger) = ExitOnTrigger(3);
        using var cleanup = new TriggerFile(trigger);
        var errors = new List<ExceptionContext>();
        ISubprocessTransport exited;
        using (var loop = Kind.Create())
        {
            loop.SetExceptionHandler((_, context) => errors.Add(context));
            Prepare(loop);
            exited = loop.RunUntilComplete(async () => (await loop.SubprocessShellAsync(() => new SubprocessRecorder(loop), command, new SubprocessOptions
            {
                StandardInput = SubprocessStdio.DevNull, StandardOutput = SubprocessStdio.DevNull, StandardError = SubprocessStdio.DevNull,
            })).Transport);

            // The loop does not run from here on: it cannot hear of the exit before it closes.
            TriggerExitAndWait(trigger, exited.Pid);
            Assert.Null(exited.ReturnCode);
            loop.Close();
        }

        Assert.Empty(errors);
        Assert.Equal(0, SignalsSentTo(exited));
        Assert.True(WaitUntil(() => IsGone(exited.Pid)), Describe([exited.Pid]));
        Assert.True(WaitUntil(() => !HasPidFd(exited.Pid)), "the pidfd of a closed loop's child is still open");
    }

    [Fact]
    public void Close_BeforeAFinishedChildsExitIsHeard_DoesNotSignalIt()
    {
        var (command, trigger) = ExitOnTrigger(7);
        using var cleanup = new TriggerFile(trigger);
        Run(Kind, async loop =>
        {
            var (transport, recorder) = await loop.SubprocessShellAsync(() => new SubprocessRecorder(loop), command, new SubprocessOptions
            {
                StandardInput = SubprocessStdio.DevNull, StandardOutput = SubprocessStdio.DevNull, StandardError = SubprocessStdio.DevNull,
            });
            // Exited, and the loop has not heard of it (it does not run meanwhile).
            TriggerExitAndWait(trigger, transport.Pid);
            Assert.Null(transport.ReturnCode);
            transport.Close();
            Assert.Equal(0, SignalsSentTo(transport));
            await recorder.Lost;
            AssertClean(recorder);
            Assert.Equal(7, transport.ReturnCode);
            Assert.Equal(0, SignalsSentTo(transport));
        });
    }

    [Fact]
    public void Close_OfARunningChild_SignalsItOnce()
    {
        Run(Kind, async loop =>
        {
            var (transport, recorder) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"]);
            transport.Close();
            transport.Close();
            await recorder.Lost;
            AssertClean(recorder);
            Assert.Equal(KilledBy(9), transport.ReturnCode);
            Assert.Equal(1, SignalsSentTo(transport));
            transport.Kill(); // reaped: no signal
            Assert.Equal(1, SignalsSentTo(transport));
        });
    }

    /// <summary>
    /// The loop's own SIGCHLD handler, set after the child's watch began (so .NET runs it first), does not hide the signal
    /// from the SIGCHLD watch (it would cancel it, as it does other signals), nor the watch from it.
    /// </summary>
    [Fact]
    public void ALoopSignalHandlerForSigChld_HidesNoExit()
    {
        Run(Kind, async loop =>
        {
            var (transport, recorder) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "/bin/sh", ["-c", "read x; exit 4"]);
            int heard = 0;
            loop.AddSignalHandler(PosixSignal.SIGCHLD, () => heard++);
            try
            {
                transport.GetPipeTransport(0)!.Close();
                await recorder.Lost;
                AssertClean(recorder);
                Assert.Equal(4, transport.ReturnCode);
                Assert.True(await Eventually(() => heard > 0, 30_000), "the loop's SIGCHLD handler never ran");
            }
            finally
            {
                loop.RemoveSignalHandler(PosixSignal.SIGCHLD);
            }
        });
    }

    [Fact]
    public void AFinishedTransport_LeavesNoCloseHookOnTheLoop()
    {
        Run(Kind, async loop =>
        {
            for (int i = 0; i < 3; i++)
            {
                await RunToEnd(loop, "true", []);
                var (transport, recorder) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"]);
                transport.Close();
                await recorder.Lost;
            }

            Assert.Equal(0, loop.CloseHookCount);
        });
    }

    /// <summary>Exited: a zombie (not reaped yet), or gone (reaped, by the runtime for a Process child).</summary>
    private static bool HasExited(int pid) => IsGone(pid) || !IsReaped(pid);

    /// <summary>Deletes an <see cref="ExitOnTrigger"/> file.</summary>
    private sealed class TriggerFile(string path) : IDisposable
    {
        public void Dispose() => File.Delete(path);
    }

    /// <summary>Reaped and gone, or its pid is no child of ours any more.</summary>
    private static bool IsGone(int pid)
    {
        try
        {
            return StatFields(File.ReadAllText($"/proc/{pid}/stat"))[1] != Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return true;
        }
    }

    /// <summary>Whether this process holds a pidfd of <paramref name="pid"/> (its fdinfo names the pid).</summary>
    private static bool HasPidFd(int pid)
    {
        foreach (string fd in Directory.EnumerateFiles("/proc/self/fdinfo"))
        {
            try
            {
                if (File.ReadLines(fd).Any(line => line == $"Pid:\t{pid}"))
                {
                    return true;
                }
            }
            catch (IOException)
            {
                // closed meanwhile
            }
        }

        return false;
    }

    /// <summary>Waits on this thread (the loop is closed, or must not run) until <paramref name="condition"/> holds; a hang guard only.</summary>
    private static bool WaitUntil(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > HangGuard)
            {
                return false;
            }

            Thread.Sleep(5);
        }

        return true;
    }

    private static string Describe(IEnumerable<int> pids) => "children left: " + string.Join(", ", pids.Where(pid => !IsGone(pid))
        .Select(pid => $"{pid} ({(IsReaped(pid) ? "running" : "zombie")})"));
}

public sealed class EpollSubprocessLoopCloseTests() : SubprocessLoopCloseTests(LoopKinds.Epoll);

public sealed class PollSubprocessLoopCloseTests() : SubprocessLoopCloseTests(LoopKinds.Poll);

public sealed class ProactorSubprocessLoopCloseTests() : SubprocessLoopCloseTests(LoopKinds.Proactor);

/// <summary>The same with <see cref="ProcessSubprocessTransportFactory"/> registered (the runtime reaps; the close hook kills).</summary>
public abstract class ProcessSubprocessLoopCloseTests(LoopKind kind) : SubprocessLoopCloseTests(kind)
{
    protected override SubprocessFeatures Features => SubprocessFeatures.Process;

    protected override void Prepare(BaseEventLoop loop) => UseProcessImplementation(loop);
}

public sealed class EpollProcessSubprocessLoopCloseTests() : ProcessSubprocessLoopCloseTests(LoopKinds.Epoll);

public sealed class PollProcessSubprocessLoopCloseTests() : ProcessSubprocessLoopCloseTests(LoopKinds.Poll);

public sealed class ProactorProcessSubprocessLoopCloseTests() : ProcessSubprocessLoopCloseTests(LoopKinds.Proactor);

/// <summary>The same with every child watched by pid through SIGCHLD, as where pidfd_open is refused.</summary>
public abstract class SigChldSubprocessLoopCloseTests(LoopKind kind) : SubprocessLoopCloseTests(kind)
{
    protected override SubprocessFeatures Features => SubprocessFeatures.SigChld;

    protected override void Prepare(BaseEventLoop loop) => UseSigChldImplementation(loop);
}

public sealed class EpollSigChldSubprocessLoopCloseTests() : SigChldSubprocessLoopCloseTests(LoopKinds.Epoll);

public sealed class PollSigChldSubprocessLoopCloseTests() : SigChldSubprocessLoopCloseTests(LoopKinds.Poll);

public sealed class ProactorSigChldSubprocessLoopCloseTests() : SigChldSubprocessLoopCloseTests(LoopKinds.Proactor);
