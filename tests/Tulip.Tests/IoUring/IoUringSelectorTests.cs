using Tulip.Selectors;
using Tulip.Tests.Selectors;
using static Tulip.Tests.Selectors.SelectorTestUtil;

namespace Tulip.Tests.IoUring;

/// <summary>
/// What is particular to <see cref="IoUringSelector"/> beyond the selector contract (which
/// <c>SelectorContractTests</c> runs on it with the other backends): an armed poll holds its file, so
/// Remove must hand every pending cancellation to the kernel before the caller closes the fd.
/// </summary>
public sealed class IoUringSelectorTests
{
    private const short POLLIN = 0x001;
    private const short POLLHUP = 0x010;

    /// <summary>
    /// The hang of the first full io_uring run (PipeTransportContractTests.WritePipe_Abort_DropsTheBuffer):
    /// a write pipe's close clears its reader (interest Read|Write to Write: a Modify, which queued the
    /// removal of the armed poll and a re-arm for the next Select) and then its writer (Remove, which saw
    /// no armed poll and submitted nothing), and closed the fd. The loop had nothing left to watch, so no
    /// Select came; the queued removal never reached the kernel, its poll kept the pipe's write end open,
    /// and the test's reader waited for an EOF forever.
    /// </summary>
    [Fact]
    public unsafe void Remove_after_a_Modify_lets_go_of_the_file_without_another_Select()
    {
        using var selector = new IoUringSelector();
        using var pipe = new NativePipe();
        // POLLIN on a pipe's write end fires only once the read end is closed: the poll stays armed.
        selector.Add(pipe.WriteFd, SelectorEvents.Read, 1);
        Assert.Empty(Poll(selector)); // arms it

        Assert.True(selector.Modify(pipe.WriteFd, SelectorEvents.Write, 2));
        selector.Remove(pipe.WriteFd);
        pipe.CloseWrite();

        // The read end sees the hang-up once the last reference to the write end is gone. Bounded, so a
        // poll that still holds the file fails the test instead of hanging it.
        var pfd = new Interop.PollFd { Fd = pipe.ReadFd, Events = POLLIN };
        int n = Interop.Poll(&pfd, 1, (int)Patience.TotalMilliseconds);
        Assert.Equal(1, n);
        Assert.True((pfd.REvents & POLLHUP) != 0, $"revents {pfd.REvents}: the write end is still open");
    }

    [Fact]
    public unsafe void Remove_of_an_armed_poll_lets_go_of_the_file_at_once()
    {
        using var selector = new IoUringSelector();
        using var pipe = new NativePipe();
        selector.Add(pipe.WriteFd, SelectorEvents.Read, 1);
        Assert.Empty(Poll(selector));

        selector.Remove(pipe.WriteFd);
        pipe.CloseWrite();

        var pfd = new Interop.PollFd { Fd = pipe.ReadFd, Events = POLLIN };
        Assert.Equal(1, Interop.Poll(&pfd, 1, (int)Patience.TotalMilliseconds));
        Assert.True((pfd.REvents & POLLHUP) != 0, $"revents {pfd.REvents}: the write end is still open");
    }

    [Fact]
    public void Select_without_deadline_is_ended_by_a_wakeup_from_another_thread()
    {
        using var selector = new IoUringSelector();
        using var wakeup = new Wakeup();
        selector.Add(wakeup.ReadFd, SelectorEvents.Read, 7);
        var events = new SelectorEvent[4];
        for (int round = 0; round < 100; round++)
        {
            var signaller = new Thread(wakeup.Signal);
            signaller.Start();
            int n = 0;
            var watch = System.Diagnostics.Stopwatch.StartNew();
            while (n == 0)
            {
                Assert.True(watch.Elapsed < Patience, $"round {round}: the wake-up was lost");
                // A bounded wait as a hang guard (the ring tests wait without deadline); it returns early
                // only for a signal (EINTR) or the wake-up.
                n = selector.Select(events, (int)Patience.TotalMilliseconds);
            }

            signaller.Join();
            Assert.Equal(1, n);
            Assert.Equal(7UL, events[0].Token);
            Assert.Equal(SelectorEvents.Read, events[0].Events);
            wakeup.Drain();
        }

        selector.Remove(wakeup.ReadFd);
    }
}
