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
    public void More_ready_fds_than_the_ring_holds_are_all_reported()
    {
        // 16 submission and 32 completion entries for 100 ready fds: the arms are submitted in batches
        // as the submission ring fills, and the completions beyond 32 wait in the kernel's overflow list.
        const int Count = 100;
        using var selector = new IoUringSelector(entries: 16);
        Assert.Equal(32u, selector.Ring.CompletionEntries);
        var wakeups = new List<Wakeup>();
        try
        {
            for (int i = 0; i < Count; i++)
            {
                var w = new Wakeup();
                wakeups.Add(w);
                w.Signal();
                selector.Add(w.ReadFd, SelectorEvents.Read, (ulong)i);
            }

            var seen = new HashSet<ulong>();
            var buffer = new SelectorEvent[8]; // fewer than are ready: the rest wait for the next Select
            var watch = System.Diagnostics.Stopwatch.StartNew();
            while (seen.Count < Count)
            {
                Assert.True(watch.Elapsed < Patience, $"only {seen.Count} of {Count} fds were reported");
                int n = selector.Select(buffer, (int)Patience.TotalMilliseconds);
                for (int i = 0; i < n; i++)
                {
                    Assert.Equal(SelectorEvents.Read, buffer[i].Events);
                    Assert.InRange(buffer[i].Token, 0UL, (ulong)(Count - 1));
                    seen.Add(buffer[i].Token);
                }
            }

            Assert.Equal(0u, selector.Ring.OverflowCount);
            foreach (var w in wakeups)
            {
                selector.Remove(w.ReadFd);
            }
        }
        finally
        {
            foreach (var w in wakeups)
            {
                w.Dispose();
            }
        }
    }

    [Fact]
    public unsafe void Dispose_with_polls_armed_lets_go_of_their_files()
    {
        using var pipe = new NativePipe();
        var selector = new IoUringSelector();
        selector.Add(pipe.WriteFd, SelectorEvents.Read, 1);
        Assert.Empty(Poll(selector)); // armed, and never fires while the read end is open
        selector.Dispose(); // closing the ring cancels what is in flight
        pipe.CloseWrite();

        // The ring is torn down by the kernel after its fd closed, not within close(2): a bounded wait.
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
