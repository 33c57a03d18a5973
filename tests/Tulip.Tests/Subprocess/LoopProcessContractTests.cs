using System.Text;
using Tulip;
using Tulip.Streams;
using static Tulip.Tests.Subprocess.SubprocessTestUtil;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Subprocess;

/// <summary>
/// asyncio's high-level subprocess API (<c>create_subprocess_exec</c>, <c>Process</c>) as <see cref="LoopProcess"/>:
/// communicate at every size with no deadlock or truncation, waits (cancelled, concurrent), the streams, dispose.
/// Bound to the selector loops, as the transport suite.
/// </summary>
public abstract class LoopProcessContractTests : SubprocessSuite
{
    protected LoopProcessContractTests(LoopKind kind) : base(kind)
    {
    }

    [Theory]
    [InlineData(0)]
    [InlineData(65_536)]
    [InlineData(65_537)]
    [InlineData(1 << 20)]
    public void Communicate_RoundTripsWhole_AtAnySize(int size)
    {
        Run(Kind, async loop =>
        {
            var data = Pattern(size);
            await using var process = await LoopProcess.CreateExecAsync("cat", []);
            var (output, error) = await process.CommunicateAsync(data);
            Assert.Equal(data, output);
            Assert.Empty(error!);
            Assert.Equal(0, process.ReturnCode);
            Assert.True(IsReaped(process.Pid));
        });
    }

    [Fact]
    public void Communicate_BothStreamsLarge_NoDeadlock()
    {
        Run(Kind, async loop =>
        {
            // 1 MiB in; 1 MiB out on each of stdout and stderr, written while stdin is still being read.
            await using var process = await LoopProcess.CreateShellAsync("tee /dev/stderr");
            var data = Pattern(1 << 20);
            var (output, error) = await process.CommunicateAsync(data);
            Assert.Equal(data, output);
            Assert.Equal(data, error);
            Assert.Equal(0, process.ReturnCode);
        });
    }

    [Fact]
    public void Communicate_ChildExitsEarly_BrokenPipeIsNotAnError()
    {
        Run(Kind, async loop =>
        {
            await using var process = await LoopProcess.CreateShellAsync("exit 3");
            var (output, _) = await process.CommunicateAsync(Pattern(1 << 20));
            Assert.Empty(output!);
            Assert.Equal(3, process.ReturnCode);
        });
    }

    [Fact]
    public void Streams_ReadLines_AndWriteThenClose()
    {
        Run(Kind, async loop =>
        {
            await using var process = await LoopProcess.CreateExecAsync("cat", []);
            process.StandardInput!.Write("one\ntwo\n"u8);
            await process.StandardInput.DrainAsync();
            Assert.Equal("one\n", Encoding.UTF8.GetString(await process.StandardOutput!.ReadLineAsync()));
            process.StandardInput.Close();
            Assert.Equal("two\n", Encoding.UTF8.GetString(await process.StandardOutput.ReadLineAsync()));
            Assert.Empty(await process.StandardOutput.ReadAsync());
            Assert.Equal(0, await process.WaitAsync());
        });
    }

    [Fact]
    public void DevNullStreams_AreNull()
    {
        Run(Kind, async loop =>
        {
            // stderr merged where the implementation can; else /dev/null, which also leaves no stderr stream.
            await using var process = await LoopProcess.CreateShellAsync("echo hi", new SubprocessOptions
            {
                StandardInput = SubprocessStdio.DevNull,
                StandardError = Has(SubprocessFeatures.MergeStderr) ? SubprocessStdio.StandardOutput : SubprocessStdio.DevNull,
            });
            Assert.Null(process.StandardInput);
            Assert.Null(process.StandardError);
            var (output, error) = await process.CommunicateAsync();
            Assert.Equal("hi\n", Encoding.UTF8.GetString(output!));
            Assert.Null(error);
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await process.CommunicateAsync("x"u8.ToArray()));
        });
    }

    [Fact]
    public void Wait_CancelledThenWaitedAgain_AndTenConcurrentWaits()
    {
        Run(Kind, async loop =>
        {
            await using var process = await LoopProcess.CreateExecAsync("sleep", ["100"], new SubprocessOptions
            {
                StandardInput = SubprocessStdio.DevNull, StandardOutput = SubprocessStdio.DevNull, StandardError = SubprocessStdio.DevNull,
            });
            var first = loop.CreateTask(() => process.WaitAsync());
            await Tasks.Sleep(0);
            first.Cancel();
            await Assert.ThrowsAsync<CancelledError>(async () => await first);
            using (var cts = new CancellationTokenSource())
            {
                var byToken = loop.CreateTask(() => process.WaitAsync(cts.Token));
                await Tasks.Sleep(0);
                cts.Cancel();
                await Assert.ThrowsAsync<CancelledError>(async () => await byToken);
            }

            Assert.Null(process.ReturnCode);
            var waits = Enumerable.Range(0, 10).Select(_ => loop.CreateTask(() => process.WaitAsync())).ToList();
            // Terminate where the implementation can send SIGTERM; Kill where it can send only SIGKILL.
            int signal = Has(SubprocessFeatures.AnySignal) ? 15 : 9;
            if (signal == 15)
            {
                process.Terminate();
            }
            else
            {
                Assert.Throws<NotSupportedException>(process.Terminate);
                process.Kill();
            }

            foreach (var wait in waits)
            {
                Assert.Equal(KilledBy(signal), await wait);
            }

            Assert.Equal(KilledBy(signal), await process.WaitAsync());
        });
    }

    [Fact]
    public void Dispose_KillsARunningChild_AndReapsIt()
    {
        Run(Kind, async loop =>
        {
            var process = await LoopProcess.CreateExecAsync("sleep", ["100"]);
            await process.DisposeAsync();
            Assert.Equal(KilledBy(9), process.ReturnCode);
            Assert.True(IsReaped(process.Pid));
        });
    }

    [Fact]
    public void Dispose_OfAChildThatHasExited_DoesNotSignalIt()
    {
        Run(Kind, async loop =>
        {
            var (command, trigger) = ExitOnTrigger(6);
            try
            {
                var process = await LoopProcess.CreateShellAsync(command, new SubprocessOptions
                {
                    StandardInput = SubprocessStdio.DevNull, StandardOutput = SubprocessStdio.DevNull, StandardError = SubprocessStdio.DevNull,
                });
                // Exited (a zombie, or reaped by the runtime's own handling for a Process child) before the loop heard of it.
                TriggerExitAndWait(trigger, process.Pid);
                Assert.Null(process.ReturnCode);
                await process.DisposeAsync();
                Assert.Equal(6, process.ReturnCode);
                Assert.Equal(0, SignalsSentTo(process.Transport));
                Assert.True(IsReaped(process.Pid));
            }
            finally
            {
                File.Delete(trigger);
            }
        });
    }

    [Fact]
    public void MissingProgram_IsFileNotFound()
    {
        Run(Kind, async loop =>
        {
            await Assert.ThrowsAsync<FileNotFoundException>(async () => await LoopProcess.CreateExecAsync("tulip-no-such-program", []));
        });
    }
}

public sealed class EpollLoopProcessTests() : LoopProcessContractTests(LoopKinds.Epoll);

public sealed class PollLoopProcessTests() : LoopProcessContractTests(LoopKinds.Poll);

public sealed class ProactorLoopProcessTests() : LoopProcessContractTests(LoopKinds.Proactor);

/// <summary>The same contract with <see cref="ProcessSubprocessTransportFactory"/> registered.</summary>
public abstract class ProcessLoopProcessContractTests(LoopKind kind) : LoopProcessContractTests(kind)
{
    protected override SubprocessFeatures Features => SubprocessFeatures.Process;

    protected override void Prepare(BaseEventLoop loop) => UseProcessImplementation(loop);
}

public sealed class EpollProcessLoopProcessTests() : ProcessLoopProcessContractTests(LoopKinds.Epoll);

public sealed class PollProcessLoopProcessTests() : ProcessLoopProcessContractTests(LoopKinds.Poll);

public sealed class ProactorProcessLoopProcessTests() : ProcessLoopProcessContractTests(LoopKinds.Proactor);

/// <summary>The same contract with every child watched by pid through SIGCHLD (the posix_spawn implementation where pidfd_open is refused).</summary>
public abstract class SigChldLoopProcessContractTests(LoopKind kind) : LoopProcessContractTests(kind)
{
    protected override SubprocessFeatures Features => SubprocessFeatures.SigChld;

    protected override void Prepare(BaseEventLoop loop) => UseSigChldImplementation(loop);
}

public sealed class EpollSigChldLoopProcessTests() : SigChldLoopProcessContractTests(LoopKinds.Epoll);

public sealed class PollSigChldLoopProcessTests() : SigChldLoopProcessContractTests(LoopKinds.Poll);

public sealed class ProactorSigChldLoopProcessTests() : SigChldLoopProcessContractTests(LoopKinds.Proactor);
