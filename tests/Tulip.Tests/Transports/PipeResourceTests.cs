using Tulip;
using Tulip.Tests.Selectors;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// Pipe transports leave no fd behind, whichever way they end: EOF, Close, Abort, the reader going
/// away, ConnectionMade throwing, cancellation while connecting; and a refused call leaves the
/// caller's fd open (counted in /proc/self/fd, so these run alone in <see cref="NativeFdCollection"/>).
/// </summary>
public abstract class PipeResourceTests : LoopSuite
{
    protected PipeResourceTests(LoopKind kind) : base(kind)
    {
    }

    [Fact]
    public void EveryWayOfEnding_LeavesNoFd()
    {
        var errors = new List<ExceptionContext>();
        Run(Kind, async loop =>
        {
            // The first round warms up what the runtime opens once (symbol files for the first
            // exceptions' stack traces...); the second is counted.
            await EveryWay(loop);
            await Eventually(() => false, 5);
            var before = TakeFds();
            await EveryWay(loop);
            Assert.True(await Eventually(before.NoneAdded), before.Describe());
            // A completion loop's aborted operations complete on the loop a little after the close
            // that aborted them: waited for, as the fds are.
            Assert.True(await Eventually(() => Kind.Registrations(loop) == 0), $"{Kind.Registrations(loop)} still watched");
        }, errors: errors);
        Assert.Equal(2, errors.Count); // the ConnectionMade failure, reported once per round
    }

    private static async LoopTask EveryWay(BaseEventLoop loop)
    {
        // EOF on the read side, Close on the write side.
        using (var pipe = new NativePipe(Interop.O_CLOEXEC))
        {
            var (_, reader) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), pipe.TakeRead());
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.TakeWrite());
            wt.Write("x"u8);
            wt.Close();
            await writer.Lost;
            await reader.Lost;
        }

        // Abort with data buffered; the reader closed by Close.
        using (var pipe = new NativePipe(Interop.O_CLOEXEC))
        {
            var (rt, reader) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), pipe.TakeRead());
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.TakeWrite());
            rt.PauseReading();
            wt.Write(Pattern(200_000));
            wt.Abort();
            rt.Close();
            await writer.Lost;
            await reader.Lost;
        }

        // The reader goes away (EPIPE).
        using (var pipe = new NativePipe(Interop.O_CLOEXEC))
        {
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.TakeWrite());
            wt.Write(Pattern(200_000));
            pipe.CloseRead();
            Assert.IsType<IOException>(await writer.Lost);
        }

        // ConnectionMade throws: reported, and the transport closes the pipe before the call fails.
        using (var pipe = new NativePipe(Interop.O_CLOEXEC))
        {
            int fd = pipe.TakeRead();
            await Assert.ThrowsAsync<FormatException>(async () =>
                await loop.ConnectReadPipeAsync(() => new ThrowingOnMade(loop), fd));
            Assert.False(PipeTestNative.IsOpen(fd));
        }

        // Cancelled while waiting for ConnectionMade, by the task and by the token.
        using (var pipe = new NativePipe(Interop.O_CLOEXEC))
        {
            int fd = pipe.TakeRead();
            await Assert.ThrowsAsync<CancelledError>(async () => await loop.ConnectReadPipeAsync(() =>
            {
                Tasks.CurrentTask()!.Cancel();
                return new PipeRecorder(loop);
            }, fd));
            Assert.False(PipeTestNative.IsOpen(fd));
        }

        using (var pipe = new NativePipe(Interop.O_CLOEXEC))
        using (var cts = new CancellationTokenSource())
        {
            var stream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(pipe.TakeWrite(), ownsHandle: true), FileAccess.Write);
            await Assert.ThrowsAsync<CancelledError>(async () => await loop.ConnectWritePipeAsync(() =>
            {
                cts.Cancel();
                return new PipeRecorder(loop);
            }, stream, cts.Token));
            Assert.False(stream.CanWrite);
        }

        // Refused: the fds stay the caller's, who closes them (NativePipe.Dispose).
        using (var pipe = new NativePipe(Interop.O_CLOEXEC))
        {
            await Assert.ThrowsAsync<ArgumentException>(async () =>
                await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.ReadFd));
            await Assert.ThrowsAsync<FormatException>(async () =>
                await loop.ConnectReadPipeAsync<PipeRecorder>(() => throw new FormatException("factory"), pipe.ReadFd));
            Assert.True(PipeTestNative.IsOpen(pipe.ReadFd));
        }
    }

    [Fact]
    public void AGivenBackRawFd_IsNotClosedLaterByTheFinalizer()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            await Assert.ThrowsAsync<FormatException>(async () =>
                await loop.ConnectReadPipeAsync<PipeRecorder>(() => throw new FormatException("factory"), pipe.ReadFd));
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Assert.True(PipeTestNative.IsOpen(pipe.ReadFd));
        });
    }

    private sealed class ThrowingOnMade(IEventLoop loop) : PipeRecorder(loop)
    {
        public override void ConnectionMade(IBaseTransport transport) => throw new FormatException("made");
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollPipeResourceTests() : PipeResourceTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollPipeResourceTests() : PipeResourceTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorPipeResourceTests() : PipeResourceTests(LoopKinds.Proactor);
