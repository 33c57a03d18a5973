using System.ComponentModel;
using Tulip;
using static Tulip.Tests.Subprocess.SubprocessTestUtil;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Subprocess;

/// <summary>
/// Subprocesses leave no fd behind, started or refused: a program that cannot start fails with .NET's exception and
/// leaves no fd, pipe or child; every way of ending releases the pipes and the pidfd (counted in /proc/self/fd, so
/// these run alone in <see cref="NativeFdCollection"/>). Bound to the selector loops only, as the contract suite.
/// </summary>
[Collection(NativeFdCollection.Name)]
public abstract class SubprocessResourceTests : SubprocessSuite
{
    protected SubprocessResourceTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public void SpawnFailures_ThrowDotNetsExceptions_AndLeaveNothing()
    {
        Run(Kind, async loop =>
        {
            string dir = Directory.CreateTempSubdirectory("tulip-spawn").FullName;
            string notExecutable = Path.Combine(dir, "not-executable");
            File.WriteAllText(notExecutable, "#!/bin/sh\necho never\n");
            string noInterpreter = Path.Combine(dir, "bad-interpreter");
            File.WriteAllText(noInterpreter, "#!/nonexistent/interpreter\n");
            File.SetUnixFileMode(noInterpreter, UnixFileMode.UserRead | UnixFileMode.UserExecute);
            try
            {
                await Failures(loop, notExecutable, noInterpreter); // warms up what the runtime opens once
                await Eventually(() => false, 5);
                var before = TakeFds();
                int registrations = Kind.Registrations(loop);
                await Failures(loop, notExecutable, noInterpreter);
                Assert.True(await Eventually(before.NoneAdded), before.Describe());
                Assert.Equal(registrations, Kind.Registrations(loop));
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        });
    }

    private async LoopTask Failures(BaseEventLoop loop, string notExecutable, string noInterpreter)
    {
        var missing = await Assert.ThrowsAsync<FileNotFoundException>(async () =>
            await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "tulip-no-such-program", []));
        Assert.Contains("tulip-no-such-program", missing.Message);

        missing = await Assert.ThrowsAsync<FileNotFoundException>(async () =>
            await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "/nonexistent/dir/program", []));
        Assert.Contains("/nonexistent/dir/program", missing.Message);

        var denied = await Assert.ThrowsAsync<Win32Exception>(async () =>
            await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), notExecutable, []));
        Assert.Equal(Interop.Errno.EACCES, denied.NativeErrorCode);
        Assert.Contains(notExecutable, denied.Message);

        // ENOENT from exec (the interpreter is missing): FileNotFoundException too, as for the program itself.
        await Assert.ThrowsAsync<FileNotFoundException>(async () =>
            await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), noInterpreter, []));

        var cwd = await Assert.ThrowsAsync<DirectoryNotFoundException>(async () =>
            await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "cat", [], new SubprocessOptions { WorkingDirectory = "/nonexistent/cwd" }));
        Assert.Contains("/nonexistent/cwd", cwd.Message);

        if (Has(SubprocessFeatures.PassFds))
        {
            await Assert.ThrowsAsync<ArgumentException>(async () =>
                await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "cat", [], new SubprocessOptions { PassFds = [19_999] }));
        }
        else
        {
            await AssertRefused(loop, "options.PassFds", new SubprocessOptions { PassFds = [19_999] });
        }

        await Assert.ThrowsAsync<InvalidOperationException>(async () =>
            await loop.SubprocessExecAsync<SubprocessRecorder>(() => null!, "cat", []));
    }

    [Fact]
    public void EveryWayOfEnding_LeavesNoFd()
    {
        var errors = new List<ExceptionContext>();
        Run(Kind, async loop =>
        {
            await EveryWay(loop);
            await Eventually(() => false, 5);
            var before = TakeFds();
            int registrations = Kind.Registrations(loop);
            await EveryWay(loop);
            Assert.True(await Eventually(before.NoneAdded), before.Describe());
            Assert.Equal(registrations, Kind.Registrations(loop));
        }, errors: errors);
    }

    private static async LoopTask EveryWay(BaseEventLoop loop)
    {
        // To the end, all three pipes.
        await RunToEnd(loop, "cat", [], input: Pattern(100_000));

        // Killed, closed while running, closed with its output unread.
        var (t, r) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"]);
        t.Kill();
        await r.Lost;
        (t, r) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"]);
        t.Close();
        await r.Lost;
        (t, r) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "head", ["-c", "1000000", "/dev/zero"]);
        ((IReadTransport)t.GetPipeTransport(1)!).PauseReading();
        t.Close();
        await r.Lost;
        Assert.True(IsReaped(t.Pid));

        // No pipes at all.
        await RunToEnd(loop, "true", [], new SubprocessOptions
        {
            StandardInput = SubprocessStdio.DevNull, StandardOutput = SubprocessStdio.DevNull, StandardError = SubprocessStdio.DevNull,
        });

        // Cancelled while starting.
        using var cts = new CancellationTokenSource();
        string marker = $"100.{Random.Shared.Next(10_000, 99_999)}";
        await Assert.ThrowsAsync<CancelledError>(async () => await loop.SubprocessExecAsync(() =>
        {
            cts.Cancel();
            return new SubprocessRecorder(loop);
        }, "sleep", [marker], cancellationToken: cts.Token));
        Assert.True(await Eventually(() => ChildrenWithArgument(marker).Count == 0, 30_000), "the cancelled child was not reaped");
    }
}

public sealed class EpollSubprocessResourceTests() : SubprocessResourceTests(LoopKinds.Epoll);

public sealed class PollSubprocessResourceTests() : SubprocessResourceTests(LoopKinds.Poll);

public sealed class ProactorSubprocessResourceTests() : SubprocessResourceTests(LoopKinds.Proactor);

/// <summary>The same with <see cref="ProcessSubprocessTransportFactory"/> registered: its Process objects and streams are released too.</summary>
public abstract class ProcessSubprocessResourceTests(LoopKind kind) : SubprocessResourceTests(kind)
{
    protected override SubprocessFeatures Features => SubprocessFeatures.Process;

    protected override void Prepare(BaseEventLoop loop) => UseProcessImplementation(loop);
}

public sealed class EpollProcessSubprocessResourceTests() : ProcessSubprocessResourceTests(LoopKinds.Epoll);

public sealed class PollProcessSubprocessResourceTests() : ProcessSubprocessResourceTests(LoopKinds.Poll);

public sealed class ProactorProcessSubprocessResourceTests() : ProcessSubprocessResourceTests(LoopKinds.Proactor);

/// <summary>The same contract with every child watched by pid through SIGCHLD (the posix_spawn implementation where pidfd_open is refused).</summary>
public abstract class SigChldSubprocessResourceTests(LoopKind kind) : SubprocessResourceTests(kind)
{
    protected override SubprocessFeatures Features => SubprocessFeatures.SigChld;

    protected override void Prepare(BaseEventLoop loop) => UseSigChldImplementation(loop);
}

public sealed class EpollSigChldSubprocessResourceTests() : SigChldSubprocessResourceTests(LoopKinds.Epoll);

public sealed class PollSigChldSubprocessResourceTests() : SigChldSubprocessResourceTests(LoopKinds.Poll);

public sealed class ProactorSigChldSubprocessResourceTests() : SigChldSubprocessResourceTests(LoopKinds.Proactor);

/// <summary>A loop with no subprocess implementation refuses with a hint, and a registered one is used.</summary>
public sealed class SubprocessRegistryTests
{
    [Fact]
    public void ALoopWithoutAnImplementation_RefusesWithAHint()
    {
        // The memory loop has no pipes and no child processes: nothing falls back for it.
        using var loop = LoopKinds.Memory.Create();
        var ex = Assert.Throws<NotSupportedException>(() => loop.SubprocessShellAsync(() => new SubprocessRecorder(loop), "true"));
        Assert.Contains("SubprocessShellAsync", ex.Message);
    }

    [Fact]
    public void ARegisteredImplementation_IsTheOneUsed()
    {
        using var loop = LoopKinds.Proactor.Create();
        var fake = new RecordingFactory();
        loop.Transports.Register<ISubprocessTransportFactory>(fake);
        Assert.Throws<NotImplementedException>(() => loop.SubprocessShellAsync(() => new SubprocessRecorder(loop), "echo hi"));
        Assert.Equal("/bin/sh -c echo hi", fake.Called);
    }

    private sealed class RecordingFactory : ISubprocessTransportFactory
    {
        public string? Called { get; private set; }

        public LoopTask<(ISubprocessTransport Transport, TProtocol Protocol)> SpawnAsync<TProtocol>(IEventLoop loop, Func<TProtocol> protocolFactory,
            string program, IReadOnlyList<string> arguments, SubprocessOptions options, CancellationToken cancellationToken)
            where TProtocol : ISubprocessProtocol
        {
            Called = program + " " + string.Join(" ", arguments);
            throw new NotImplementedException();
        }
    }
}
