using System.Diagnostics;
using Tulip.IoUring;
using Tulip.Selectors;
using Tulip.Tests.Loop;

namespace Tulip.Tests.IoUring;

/// <summary>
/// <see cref="IoUringRing"/> on its own (issue 14): a submission reaches the kernel and its completion
/// comes back; a wait is ended by another thread; more operations than entries are queued, not refused;
/// completions beyond the completion ring are kept by the kernel and none is lost; the ring's fd goes
/// with Dispose; and the refusal messages say why and what to use instead.
/// </summary>
/// <remarks>In <see cref="NativeFdCollection"/>: one test checks what an fd number refers to after Dispose.</remarks>
[Collection(NativeFdCollection.Name)]
public sealed class IoUringRingTests
{
    /// <summary>Generous bound on a wait for something that is certain to come: a test fails after it rather than hangs.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private const uint POLLIN = 0x001;

    [Fact]
    public void A_NOP_is_submitted_and_its_completion_read_back_with_its_user_data()
    {
        using var ring = new IoUringRing(8);
        Assert.Equal(8u, ring.SubmissionEntries);
        Assert.Equal(16u, ring.CompletionEntries);

        ref IoUringSqe sqe = ref ring.GetSqe();
        sqe.Opcode = Interop.IoUring.OP_NOP;
        sqe.UserData = 0xDEAD_BEEF_1234_5678;
        Assert.Equal(1u, ring.Queued);
        Assert.False(ring.TryGetCompletion(out _), "nothing was submitted yet");

        Assert.Equal(1, ring.Submit());
        Assert.Equal(0u, ring.Queued);
        var cqe = NextCompletion(ring);
        Assert.Equal(0xDEAD_BEEF_1234_5678UL, cqe.UserData);
        Assert.Equal(0, cqe.Res);
        Assert.False(ring.TryGetCompletion(out _), "one submission, one completion");
    }

    [Fact]
    public void A_wait_without_deadline_is_ended_by_a_write_from_another_thread()
    {
        using var ring = new IoUringRing(8);
        using var wakeup = new Wakeup();
        // Both orders happen over the rounds: the other thread's signal before the wait (the poll then
        // completes at once) and during it (the kernel wakes the waiting thread). A lost wake-up hangs,
        // so the other thread gives up after Patience, which fails the round instead.
        for (int round = 0; round < 200; round++)
        {
            ref IoUringSqe sqe = ref ring.GetSqe();
            sqe.Opcode = Interop.IoUring.OP_POLL_ADD;
            sqe.Fd = wakeup.ReadFd;
            sqe.OpFlags = POLLIN;
            sqe.UserData = (ulong)round;

            using var started = new ManualResetEventSlim();
            using var done = new ManualResetEventSlim();
            var signaller = new Thread(() =>
            {
                started.Wait();
                wakeup.Signal();
                if (!done.Wait(Patience))
                {
                    // The waiting thread never came back: signal again so the test ends (and fails below).
                    wakeup.Signal();
                }
            });
            signaller.Start();
            started.Set();
            IoUringCqe cqe;
            var watch = Stopwatch.StartNew();
            while (!ring.TryGetCompletion(out cqe))
            {
                Assert.True(watch.Elapsed < Patience * 2, $"round {round}: no completion");
                ring.SubmitAndWait(-1); // returns early only for a signal (EINTR), then waits again
            }

            done.Set();
            signaller.Join();
            Assert.True(watch.Elapsed < Patience, $"round {round}: woken only by the second signal");
            Assert.Equal((ulong)round, cqe.UserData);
            Assert.True((cqe.Res & POLLIN) != 0, $"round {round}: poll result {cqe.Res}");
            wakeup.Drain();
        }
    }

    [Fact]
    public void A_wait_with_a_deadline_returns_without_a_completion_once_it_passed()
    {
        using var ring = new IoUringRing(8);
        // Nothing is in flight: only the deadline (IORING_ENTER_EXT_ARG's timeout) can end the wait.
        Assert.Equal(0, ring.SubmitAndWait(1_000_000)); // 1 ms
        Assert.False(ring.TryGetCompletion(out _));
    }

    [Fact]
    public void More_operations_than_submission_entries_are_queued_and_all_complete()
    {
        const int Count = 100;
        using var ring = new IoUringRing(4);
        Assert.Equal(4u, ring.SubmissionEntries);
        for (int i = 0; i < Count; i++)
        {
            // The fifth GetSqe finds the ring full and submits the four before it, and so on.
            ref IoUringSqe sqe = ref ring.GetSqe();
            sqe.Opcode = Interop.IoUring.OP_NOP;
            sqe.UserData = (ulong)i;
            Assert.InRange(ring.Queued, 1u, 4u);
        }

        ring.Submit();
        Assert.Equal(Enumerable.Range(0, Count).Select(i => (ulong)i), AllCompletions(ring, Count).Select(c => c.UserData));
    }

    [Fact]
    public void Completions_beyond_the_completion_ring_are_kept_by_the_kernel_and_none_is_lost()
    {
        const int Count = 64;
        using var ring = new IoUringRing(2);
        Assert.Equal(4u, ring.CompletionEntries);
        for (int i = 0; i < Count; i++)
        {
            ref IoUringSqe sqe = ref ring.GetSqe();
            sqe.Opcode = Interop.IoUring.OP_NOP;
            sqe.UserData = (ulong)i;
        }

        ring.Submit();
        // A NOP completes in the submitting call: 4 completions fit in the ring, the kernel holds the rest.
        Assert.True(ring.CompletionsOverflowed, "the kernel should hold the completions that did not fit");
        Assert.Equal(Enumerable.Range(0, Count).Select(i => (ulong)i), AllCompletions(ring, Count).Select(c => c.UserData));
        Assert.False(ring.CompletionsOverflowed);
        Assert.Equal(0u, ring.OverflowCount);
    }

    [Fact]
    public void Operations_queued_while_completions_overflow_are_still_submitted()
    {
        using var ring = new IoUringRing(2);
        for (int i = 0; i < 16; i++)
        {
            ref IoUringSqe sqe = ref ring.GetSqe();
            sqe.Opcode = Interop.IoUring.OP_NOP;
            sqe.UserData = (ulong)i;
        }

        ring.Submit();
        Assert.True(ring.CompletionsOverflowed);
        // No completion read yet: a full submission ring must still be taken by the kernel.
        for (int i = 16; i < 32; i++)
        {
            ref IoUringSqe sqe = ref ring.GetSqe();
            sqe.Opcode = Interop.IoUring.OP_NOP;
            sqe.UserData = (ulong)i;
        }

        ring.Submit();
        Assert.Equal(Enumerable.Range(0, 32).Select(i => (ulong)i), AllCompletions(ring, 32).Select(c => c.UserData));
    }

    [Fact]
    public void Entries_left_by_a_batch_the_kernel_cut_short_go_with_the_next_submission()
    {
        // Without IORING_SETUP_SUBMIT_ALL the kernel stops a batch at an entry it refuses at submission
        // (an unknown opcode: EINVAL) and leaves the rest in the ring; they must not be forgotten.
        using var ring = new IoUringRing(8);
        Assert.Equal(0u, ring.SetupFlags & Interop.IoUring.SETUP_SUBMIT_ALL);
        for (int i = 0; i < 4; i++)
        {
            ref IoUringSqe sqe = ref ring.GetSqe();
            sqe.Opcode = i == 1 ? (byte)250 : Interop.IoUring.OP_NOP;
            sqe.UserData = (ulong)i;
        }

        Assert.Equal(2, ring.Submit()); // the NOP and the refused entry
        Assert.Equal(2u, ring.Queued);
        Assert.Equal(2, ring.Submit());
        Assert.Equal(0u, ring.Queued);
        var all = AllCompletions(ring, 4);
        Assert.Equal([0UL, 1UL, 2UL, 3UL], all.Select(c => c.UserData));
        Assert.Equal(-Interop.Errno.EINVAL, all[1].Res);
    }

    [Fact]
    public void With_SUBMIT_ALL_a_refused_entry_does_not_stop_the_batch()
    {
        using var ring = new IoUringRing(8, Interop.IoUring.SETUP_SUBMIT_ALL);
        for (int i = 0; i < 4; i++)
        {
            ref IoUringSqe sqe = ref ring.GetSqe();
            sqe.Opcode = i == 1 ? (byte)250 : Interop.IoUring.OP_NOP;
            sqe.UserData = (ulong)i;
        }

        Assert.Equal(4, ring.Submit());
        Assert.Equal(0u, ring.Queued);
        Assert.Equal([0UL, 1UL, 2UL, 3UL], AllCompletions(ring, 4).Select(c => c.UserData));
    }

    [Fact]
    public void Dispose_closes_the_ring_fd_and_later_calls_fail_as_disposed()
    {
        var ring = new IoUringRing(8);
        int fd = ring.Fd;
        Assert.True(fd >= 0);
        Assert.Equal("anon_inode:[io_uring]", LoopHarness.FdTarget(fd));

        ring.Dispose();
        Assert.Equal(-1, ring.Fd);
        Assert.NotEqual("anon_inode:[io_uring]", LoopHarness.FdTarget(fd));
        ring.Dispose(); // idempotent
        Assert.Throws<ObjectDisposedException>(() => ring.Submit());
        Assert.Throws<ObjectDisposedException>(() => ring.TryGetCompletion(out _));
    }

    [Fact]
    public void A_selector_loop_on_io_uring_closes_its_ring_with_the_loop()
    {
        var loop = new SelectorEventLoop(SelectorFactory.IoUring);
        Assert.Equal("io_uring", loop.SelectorName);
        Assert.Equal("io_uring", EventLoopKinds.NameOf(loop));
        int[] own = loop.OwnFds;
        Assert.Contains(own, fd => LoopHarness.FdTarget(fd) == "anon_inode:[io_uring]");
        loop.Close();
        Assert.All(own, fd => Assert.Null(LoopHarness.FdTarget(fd)));
    }

    [Fact]
    public void Setup_flags_this_kernel_refuses_are_dropped_and_the_ring_is_made_without_them()
    {
        // Bit 31 is no IORING_SETUP_* flag (EINVAL); COOP_TASKRUN is one (Linux 5.19).
        const uint Unknown = 1u << 31;
        using var ring = new IoUringRing(8, Unknown | Interop.IoUring.SETUP_COOP_TASKRUN);
        Assert.Equal(0u, ring.SetupFlags & Unknown);
        Assert.NotEqual(0u, ring.SetupFlags & Interop.IoUring.SETUP_COOP_TASKRUN);
    }

    [Fact]
    public void The_probe_says_which_operations_the_kernel_has()
    {
        using var ring = new IoUringRing(2);
        Assert.True(ring.Supports(Interop.IoUring.OP_NOP));
        Assert.True(ring.Supports(Interop.IoUring.OP_POLL_ADD));
        Assert.False(ring.Supports(255));
    }

    [Fact]
    public void Availability_is_the_probe_result_and_a_refusal_names_the_way_out()
    {
        // io_uring works on the machines this suite is meant for (Linux 5.11+, not disabled); where it
        // does not, what the probe kept is the refusal the loop kind reports.
        Assert.Equal(IoUringRing.IsAvailable, IoUringRing.UnavailableReason is null);
        if (IoUringRing.UnavailableReason is { } reason)
        {
            Assert.IsType<PlatformNotSupportedException>(reason);
            Assert.Contains("TULIP_LOOP=epoll", reason.Message, StringComparison.Ordinal);
            var ex = Assert.Throws<PlatformNotSupportedException>(() => EventLoopKinds.GetFactory("io_uring"));
            Assert.Contains(reason.Message, ex.Message, StringComparison.Ordinal);
        }
        else
        {
            Assert.Contains("io_uring", EventLoopKinds.AvailableNames);
        }
    }

    [Theory]
    [InlineData(Interop.Errno.ENOSYS, null, "ENOSYS", "seccomp")]
    [InlineData(Interop.Errno.EPERM, "2", "io_uring_disabled is 2", "disabled on this machine")]
    [InlineData(Interop.Errno.EPERM, "1", "io_uring_disabled is 1", "kernel.io_uring_group")]
    [InlineData(Interop.Errno.EPERM, "0", "EPERM", "seccomp")]
    [InlineData(Interop.Errno.EPERM, null, "EPERM", "seccomp")]
    public void Each_refusal_says_why_and_to_use_the_epoll_loop(int errno, string? sysctl, string why, string detail)
    {
        var ex = Assert.IsType<PlatformNotSupportedException>(IoUringRing.Unavailable(errno, sysctl));
        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
        Assert.Contains(detail, ex.Message, StringComparison.Ordinal);
        Assert.Contains("Use the epoll loop (TULIP_LOOP=epoll)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Another_setup_failure_is_an_IOException_naming_the_call_and_errno()
    {
        var ex = Assert.IsAssignableFrom<IOException>(IoUringRing.Unavailable(Interop.Errno.EMFILE, "0"));
        Assert.Contains("io_uring_setup", ex.Message, StringComparison.Ordinal);
        Assert.Contains("EMFILE", ex.Message, StringComparison.Ordinal);
    }

    private static IoUringCqe NextCompletion(IoUringRing ring)
    {
        var watch = Stopwatch.StartNew();
        IoUringCqe cqe;
        while (!ring.TryGetCompletion(out cqe))
        {
            Assert.True(watch.Elapsed < Patience, "no completion came");
            ring.SubmitAndWait(100_000_000); // 100 ms, then look again: a hang guard, not a timing
        }

        return cqe;
    }

    private static List<IoUringCqe> AllCompletions(IoUringRing ring, int count)
    {
        var all = new List<IoUringCqe>(count);
        while (all.Count < count)
        {
            all.Add(NextCompletion(ring));
        }

        Assert.False(ring.TryGetCompletion(out _), "more completions than submissions");
        return all;
    }
}
