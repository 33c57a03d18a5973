using System.Diagnostics;
using Tulip;
using static Tulip.Tests.Subprocess.SubprocessTestUtil;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Subprocess;

/// <summary>
/// The two implementations and System.Diagnostics.Process in one process, at once (issue 13): children of the loop's
/// own implementation (posix_spawn + pidfd, reaped with waitid(P_PIDFD)), of <see cref="ProcessSubprocessTransportFactory"/>
/// and plain <see cref="Process"/> children (both reaped by the runtime's SIGCHLD handling) all run together and exit
/// together; each reports its own exit status, so no reaper took another's child, and none is left a zombie.
/// </summary>
public abstract class SubprocessCoexistenceTests : LoopSuite
{
    // Enough of each that their exits overlap: every child waits on its stdin, and all stdins close in one loop iteration.
    private const int PerImplementation = 20;

    protected SubprocessCoexistenceTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public void PidFdChildren_ProcessChildren_AndPlainProcesses_AtOnce_EachKeepsItsOwnExitStatus() => AllAtOnce(byPid: false);

    /// <summary>
    /// As above with the SIGCHLD watch (no pidfd): its reaping by pid and the runtime's SIGCHLD handling both run at each
    /// SIGCHLD, and each reaps only its own children.
    /// </summary>
    [Fact]
    public void SigChldChildren_ProcessChildren_AndPlainProcesses_AtOnce_EachKeepsItsOwnExitStatus() => AllAtOnce(byPid: true);

    private void AllAtOnce(bool byPid)
    {
        Run(Kind, async loop =>
        {
            if (byPid)
            {
                SubprocessSuite.UseSigChldImplementation(loop);
            }

            var portable = new ProcessSubprocessTransportFactory();
            var options = new SubprocessOptions { StandardError = SubprocessStdio.DevNull };
            var own = new List<(ISubprocessTransport Transport, SubprocessRecorder Recorder, int Code)>();
            var ported = new List<(ISubprocessTransport Transport, SubprocessRecorder Recorder, int Code)>();
            var plain = new List<(Process Process, int Code)>();
            try
            {
                for (int i = 0; i < PerImplementation; i++)
                {
                    // Distinct codes per implementation: a status that reached the wrong child would show.
                    var (t, r) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "/bin/sh", ["-c", $"read x; exit {10 + i}"], options);
                    own.Add((t, r, 10 + i));
                    (t, r) = await portable.SpawnAsync(loop, () => new SubprocessRecorder(loop), "/bin/sh", ["-c", $"read x; exit {40 + i}"], options, default);
                    ported.Add((t, r, 40 + i));
                    plain.Add((Process.Start(new ProcessStartInfo("/bin/sh", ["-c", $"read x; exit {70 + i}"]) { RedirectStandardInput = true })!, 70 + i));
                }

                Assert.Equal(byPid || PosixSpawn.PidFdUnavailable, Assert.IsType<PidFdSubprocessTransport>(own[0].Transport).WatchedByPid);
                Assert.IsType<ProcessSubprocessTransport>(ported[0].Transport);

                // And one of each killed, among the others' exits.
                var (killedOwn, killedOwnRecorder) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"], options);
                var (killedPorted, killedPortedRecorder) = await portable.SpawnAsync(loop, () => new SubprocessRecorder(loop), "sleep", ["100"], options, default);
                var killedPlain = Process.Start(new ProcessStartInfo("sleep", ["100"]))!;
                plain.Add((killedPlain, 128 + 9));

                for (int i = 0; i < PerImplementation; i++)
                {
                    own[i].Transport.GetPipeTransport(0)!.Close();
                    ported[i].Transport.GetPipeTransport(0)!.Close();
                    plain[i].Process.StandardInput.Close();
                }

                killedOwn.Kill();
                killedPorted.Kill();
                killedPlain.Kill();

                foreach (var (transport, recorder, code) in own.Concat(ported))
                {
                    await recorder.Lost;
                    AssertClean(recorder); // reaped, too
                    Assert.Equal(code, transport.ReturnCode);
                }

                await killedOwnRecorder.Lost;
                AssertClean(killedOwnRecorder);
                Assert.Equal(-9, killedOwn.ReturnCode);
                await killedPortedRecorder.Lost;
                AssertClean(killedPortedRecorder);
                Assert.Equal(128 + 9, killedPorted.ReturnCode);

                // A hang guard only: each has exited or will.
                Assert.True(await Eventually(() => plain.All(p => p.Process.HasExited), 60_000), "a Process child did not exit");
                foreach (var (process, code) in plain)
                {
                    Assert.Equal(code, process.ExitCode);
                    Assert.True(IsReaped(process.Id), $"Process child {process.Id} left a zombie");
                }
            }
            finally
            {
                // Nothing left behind if an assert failed early (the loop's own children are the loop's to end).
                foreach (var (process, _) in plain)
                {
                    if (!process.HasExited)
                    {
                        process.Kill();
                        process.WaitForExit();
                    }

                    process.Dispose();
                }
            }
        }, timeoutSeconds: 120);
    }
}

public sealed class EpollSubprocessCoexistenceTests() : SubprocessCoexistenceTests(LoopKinds.Epoll);

public sealed class PollSubprocessCoexistenceTests() : SubprocessCoexistenceTests(LoopKinds.Poll);

public sealed class ProactorSubprocessCoexistenceTests() : SubprocessCoexistenceTests(LoopKinds.Proactor);
