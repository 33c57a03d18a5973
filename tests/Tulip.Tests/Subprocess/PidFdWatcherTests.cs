using System.Diagnostics;
using Tulip;
using static Tulip.Tests.Subprocess.SubprocessTestUtil;

namespace Tulip.Tests.Subprocess;

/// <summary>
/// The process-wide pidfd watcher that gives completion loops (the proactor) child exits: a watch fires
/// once, on readiness; an unwatched fd never fires; a second watch of one fd is refused; and a child whose
/// loop closed before it exited is killed and reaped, so no zombie is left.
/// </summary>
public sealed class PidFdWatcherTests
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);

    [Fact]
    public unsafe void AWatch_FiresOnce_WhenTheFdTurnsReadable()
    {
        var (read, write) = Pipe();
        try
        {
            using var fired = new SemaphoreSlim(0);
            int calls = 0;
            PidFdWatcher.Shared.Watch(read, () =>
            {
                Interlocked.Increment(ref calls);
                fired.Release();
            });
            Assert.Throws<InvalidOperationException>(() => PidFdWatcher.Shared.Watch(read, () => { }));
            byte b = 1;
            Assert.Equal(1, (int)Interop.Write(write, &b, 1));
            Assert.True(fired.Wait(HangGuard));
            Assert.False(PidFdWatcher.Shared.Unwatch(read)); // the watch ended when it fired

            // Still readable, and the watcher has polled again since (a second watch fired): no second call.
            var (read2, write2) = Pipe();
            using var second = new SemaphoreSlim(0);
            PidFdWatcher.Shared.Watch(read2, () => second.Release());
            Assert.Equal(1, (int)Interop.Write(write2, &b, 1));
            Assert.True(second.Wait(HangGuard));
            _ = Interop.Close(read2);
            _ = Interop.Close(write2);
            Assert.Equal(1, calls);
        }
        finally
        {
            _ = Interop.Close(read);
            _ = Interop.Close(write);
        }
    }

    [Fact]
    public unsafe void AnUnwatchedFd_NeverFires()
    {
        var (read, write) = Pipe();
        try
        {
            int calls = 0;
            PidFdWatcher.Shared.Watch(read, () => Interlocked.Increment(ref calls));
            Assert.True(PidFdWatcher.Shared.Unwatch(read));
            byte b = 1;
            Assert.Equal(1, (int)Interop.Write(write, &b, 1));

            // A second watch on another fd that fires proves the watcher polled after the unwatch.
            var (read2, write2) = Pipe();
            using var fired = new SemaphoreSlim(0);
            PidFdWatcher.Shared.Watch(read2, () => fired.Release());
            Assert.Equal(1, (int)Interop.Write(write2, &b, 1));
            Assert.True(fired.Wait(HangGuard));
            _ = Interop.Close(read2);
            _ = Interop.Close(write2);
            Assert.Equal(0, calls);
        }
        finally
        {
            _ = Interop.Close(read);
            _ = Interop.Close(write);
        }
    }

    [Fact]
    public void AChildOutlivingItsProactorLoop_IsKilledAndReaped()
    {
        int pid;
        using (var loop = LoopKinds.Proactor.Create())
        {
            pid = loop.RunUntilComplete(async () =>
            {
                var (transport, _) = await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "sleep", ["100"]);
                return transport.Pid;
            });
        }

        // The loop is closed with the child running and the transport never closed: the loop's close killed the child,
        // and the watcher, whose callback finds the loop closed, reaps it. Nobody else signals it.
        var clock = Stopwatch.StartNew();
        // Gone from /proc altogether: killed, and reaped (a zombie keeps its entry; a killed child not yet reaped is one).
        while (Directory.Exists($"/proc/{pid}") && clock.Elapsed < HangGuard)
        {
            Thread.Sleep(10);
        }

        Assert.False(Directory.Exists($"/proc/{pid}"), $"child {pid} is still there (state: {(IsReaped(pid) ? "running" : "zombie")})");
    }

    private static unsafe (int Read, int Write) Pipe()
    {
        int* fds = stackalloc int[2];
        Assert.Equal(0, Interop.Pipe2(fds, Interop.O_CLOEXEC | Interop.O_NONBLOCK));
        return (fds[0], fds[1]);
    }
}
