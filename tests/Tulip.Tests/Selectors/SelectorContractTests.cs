using Tulip.Selectors;
using static Tulip.Tests.Selectors.SelectorTestUtil;

namespace Tulip.Tests.Selectors;

/// <summary>The <see cref="ISelector"/> contract, written once and run against every backend.</summary>
[Collection(NativeFdCollection.Name)]
public sealed class SelectorContractTests
{
    public static TheoryData<string> AllBackends => Backends();

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Pipe_with_data_reports_Read_with_its_token(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe pipe = new();
        selector.Add(pipe.ReadFd, SelectorEvents.Read, 0xDEAD_BEEF_0000_0007UL);

        pipe.WriteByte();

        SelectorEvent ev = Assert.Single(WaitForEvents(selector));
        Assert.Equal(0xDEAD_BEEF_0000_0007UL, ev.Token);
        Assert.Equal(SelectorEvents.Read, ev.Events);
        selector.Remove(pipe.ReadFd);
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Nothing_ready_with_timeout_zero_returns_zero(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe pipe = new();
        selector.Add(pipe.ReadFd, SelectorEvents.Read, 1);

        Assert.Empty(Poll(selector));
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Empty_selector_with_timeout_zero_returns_zero(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        Assert.Empty(Poll(selector));
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Modify_changes_interest_and_token(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe pipe = new();

        // A pipe's write end never becomes readable.
        selector.Add(pipe.WriteFd, SelectorEvents.Read, 1);
        Assert.Empty(Poll(selector));

        Assert.True(selector.Modify(pipe.WriteFd, SelectorEvents.Write, 2));
        SelectorEvent ev = Assert.Single(WaitForEvents(selector));
        Assert.Equal(2UL, ev.Token);
        Assert.Equal(SelectorEvents.Write, ev.Events);

        Assert.True(selector.Modify(pipe.WriteFd, SelectorEvents.None, 3));
        Assert.Empty(Poll(selector));
        selector.Remove(pipe.WriteFd);
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Modify_of_an_unregistered_fd_registers_nothing_and_returns_false(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe pipe = new();

        Assert.False(selector.Modify(pipe.WriteFd, SelectorEvents.Write, 9));

        Assert.Empty(Poll(selector));
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Remove_stops_events_and_is_idempotent(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe pipe = new();
        using NativePipe other = new();
        selector.Add(pipe.ReadFd, SelectorEvents.Read, 1);
        selector.Add(other.WriteFd, SelectorEvents.Write, 2);
        pipe.WriteByte();

        selector.Remove(pipe.ReadFd);
        selector.Remove(pipe.ReadFd);
        selector.Remove(other.WriteFd);

        Assert.Empty(Poll(selector));
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Remove_of_a_closed_fd_is_not_an_error(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        NativePipe pipe = new();
        selector.Add(pipe.ReadFd, SelectorEvents.Read, 1);
        int fd = pipe.ReadFd;
        pipe.Dispose();

        selector.Remove(fd);

        Assert.Empty(Poll(selector));
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Add_of_a_registered_fd_fails_with_EEXIST(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe pipe = new();
        selector.Add(pipe.ReadFd, SelectorEvents.Read, 1);

        IOException ex = Assert.Throws<IOException>(() => selector.Add(pipe.ReadFd, SelectorEvents.Read, 2));
        Assert.Contains("EEXIST", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Add_of_a_bad_fd_fails_with_EBADF(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);

        IOException ex = Assert.Throws<IOException>(() => selector.Add(-1, SelectorEvents.Read, 1));
        Assert.Contains("EBADF", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Write_end_reports_Write(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe pipe = new();
        selector.Add(pipe.WriteFd, SelectorEvents.Write, 5);

        SelectorEvent ev = Assert.Single(WaitForEvents(selector));
        Assert.Equal(5UL, ev.Token);
        Assert.Equal(SelectorEvents.Write, ev.Events);
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Both_ends_report_in_one_select(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe pipe = new();
        selector.Add(pipe.ReadFd, SelectorEvents.Read, 1);
        selector.Add(pipe.WriteFd, SelectorEvents.Write, 2);
        pipe.WriteByte();

        SelectorEvent[] events = WaitForEvents(selector);

        Assert.Equal(
            [(1UL, SelectorEvents.Read), (2UL, SelectorEvents.Write)],
            events.Select(e => (e.Token, e.Events)).Order());
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Hang_up_of_the_writer_reports_Read_only(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe pipe = new();
        selector.Add(pipe.ReadFd, SelectorEvents.Read, 3);

        pipe.CloseWrite();

        SelectorEvent ev = Assert.Single(WaitForEvents(selector));
        Assert.Equal(3UL, ev.Token);
        Assert.Equal(SelectorEvents.Read, ev.Events);
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Hang_up_is_reported_as_every_registered_interest(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe pipe = new();
        // A read end is never writable, so Write here can only come from the hang-up.
        selector.Add(pipe.ReadFd, SelectorEvents.Read | SelectorEvents.Write, 3);

        pipe.CloseWrite();

        SelectorEvent ev = Assert.Single(WaitForEvents(selector));
        Assert.Equal(SelectorEvents.Read | SelectorEvents.Write, ev.Events);
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Closed_reader_reports_Write_only_on_the_write_end(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe pipe = new();
        // Fill nothing: the write end is writable already; after the reader goes, it reports an error.
        selector.Add(pipe.WriteFd, SelectorEvents.Write, 4);

        pipe.CloseRead();

        SelectorEvent ev = Assert.Single(WaitForEvents(selector));
        Assert.Equal(4UL, ev.Token);
        Assert.Equal(SelectorEvents.Write, ev.Events);
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Hang_up_with_no_interest_reports_nothing(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe pipe = new();
        selector.Add(pipe.ReadFd, SelectorEvents.None, 3);

        pipe.CloseWrite();

        Assert.Empty(Poll(selector));
        selector.Remove(pipe.ReadFd);
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Modify_after_the_fd_was_closed_and_its_number_reused_returns_false_and_does_not_carry_over(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        NativePipe first = new();
        int fd = first.ReadFd;
        selector.Add(fd, SelectorEvents.Read, 1);
        // Closing every fd of the pipe drops the epoll registration in the kernel (not the poll one).
        first.Dispose();

        using NativePipe second = new();
        // The kernel hands out the lowest free number; this collection runs alone, so it is ours.
        Assert.Equal(fd, second.ReadFd);

        // epoll: EPOLL_CTL_MOD fails with ENOENT; poll: the number names another inode. Either way the
        // old registration is gone and nothing is registered for the new file until it is added.
        Assert.False(selector.Modify(fd, SelectorEvents.Read, 2));
        second.WriteByte();
        Assert.Empty(Poll(selector));

        selector.Add(fd, SelectorEvents.Read, 3);
        SelectorEvent ev = Assert.Single(WaitForEvents(selector));
        Assert.Equal(3UL, ev.Token);
        Assert.Equal(SelectorEvents.Read, ev.Events);
        selector.Remove(fd);
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Reports_every_one_of_a_thousand_registered_fds(string backend)
    {
        const int PipeCount = 500; // 1000 fds
        using RaisedFdLimit limit = new(minimum: 4 * PipeCount);
        using ISelector selector = SelectorFactory.Create(backend);
        List<NativePipe> pipes = [];
        try
        {
            HashSet<ulong> expected = [];
            for (int i = 0; i < PipeCount; i++)
            {
                NativePipe pipe = new();
                pipes.Add(pipe);
                ulong readToken = (ulong)i * 2;
                ulong writeToken = readToken + 1;
                selector.Add(pipe.ReadFd, SelectorEvents.Read, readToken);
                selector.Add(pipe.WriteFd, SelectorEvents.Write, writeToken);
                expected.Add(writeToken);
                if (i % 2 == 0)
                {
                    pipe.WriteByte();
                    expected.Add(readToken);
                }
            }

            SelectorEvent[] events = WaitForEvents(selector, capacity: 4 * PipeCount);

            Assert.Equal(expected.Count, events.Length);
            Assert.True(expected.SetEquals(events.Select(e => e.Token)));
            Assert.All(events, e => Assert.Equal(e.Token % 2 == 0 ? SelectorEvents.Read : SelectorEvents.Write, e.Events));

            foreach (NativePipe pipe in pipes)
            {
                selector.Remove(pipe.ReadFd);
                selector.Remove(pipe.WriteFd);
            }

            Assert.Empty(Poll(selector));
        }
        finally
        {
            foreach (NativePipe pipe in pipes)
            {
                pipe.Dispose();
            }
        }
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void A_small_span_gets_the_rest_on_the_next_select(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe a = new();
        using NativePipe b = new();
        using NativePipe c = new();
        selector.Add(a.WriteFd, SelectorEvents.Write, 1);
        selector.Add(b.WriteFd, SelectorEvents.Write, 2);
        selector.Add(c.WriteFd, SelectorEvents.Write, 3);

        HashSet<ulong> seen = [];
        for (int i = 0; i < 3; i++)
        {
            SelectorEvent ev = Assert.Single(WaitForEvents(selector, capacity: 1));
            seen.Add(ev.Token);
        }

        Assert.Equal([1UL, 2UL, 3UL], seen.Order());
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Select_returns_when_the_wakeup_is_signalled_from_another_thread(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using Wakeup wakeup = new();
        selector.Add(wakeup.ReadFd, SelectorEvents.Read, 77);
        Assert.Empty(Poll(selector));

        Thread signaller = new(wakeup.Signal) { IsBackground = true, Name = "wakeup signaller" };
        signaller.Start();
        SelectorEvent[] events = WaitForEvents(selector);
        Assert.True(signaller.Join(Patience));

        SelectorEvent ev = Assert.Single(events);
        Assert.Equal(77UL, ev.Token);
        Assert.Equal(SelectorEvents.Read, ev.Events);

        wakeup.Drain();
        Assert.Empty(Poll(selector));
        selector.Remove(wakeup.ReadFd);
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Select_over_an_unchanged_set_allocates_nothing(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe pipe = new();
        selector.Add(pipe.ReadFd, SelectorEvents.Read, 1);
        selector.Add(pipe.WriteFd, SelectorEvents.Write, 2);
        pipe.WriteByte();
        SelectorEvent[] buffer = new SelectorEvent[8];
        int total = 0;
        for (int i = 0; i < 10; i++)
        {
            total += selector.Select(buffer, 0); // warm up: the epoll buffer is allocated on first use
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            total += selector.Select(buffer, 0);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(total > 0);
        Assert.Equal(0, allocated);
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Select_needs_room_for_one_event(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        Assert.Throws<ArgumentException>(() => selector.Select([], 0));
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Dispose_twice_is_fine_and_use_after_dispose_throws(string backend)
    {
        ISelector selector = SelectorFactory.Create(backend);
        selector.Dispose();
        selector.Dispose();

        Assert.Throws<ObjectDisposedException>(() => selector.Select(new SelectorEvent[1], 0));
        Assert.Throws<ObjectDisposedException>(() => selector.Add(0, SelectorEvents.Read, 1));
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Leaves_no_fd_open(string backend)
    {
        // The fds this test makes, by number and what each refers to, rather than a count of the
        // process's fds: a count moved by two in two of nine io_uring runs, up once and down once, from
        // fds of something else (child processes of the tests before, wound down by other threads).
        ISelector selector = SelectorFactory.Create(backend);
        Wakeup wakeup = new();
        NativePipe pipe = new();
        int[] own = selector switch
        {
            EpollSelector epoll => [epoll.EpollFd],
            IoUringSelector ring => [ring.Ring.Fd],
            _ => [], // poll(2) holds no fd
        };
        var made = own.Append(wakeup.ReadFd).Append(pipe.ReadFd).Append(pipe.WriteFd)
            .ToDictionary(fd => fd, fd => Tulip.Tests.Loop.LoopHarness.FdTarget(fd));
        Assert.All(made, kv => Assert.NotNull(kv.Value));
        selector.Add(wakeup.ReadFd, SelectorEvents.Read, 1);
        selector.Add(pipe.ReadFd, SelectorEvents.Read, 2);
        wakeup.Signal();
        Assert.NotEmpty(WaitForEvents(selector));
        pipe.Dispose();
        wakeup.Dispose();
        selector.Dispose();

        var open = made.Where(kv => Tulip.Tests.Loop.LoopHarness.FdTarget(kv.Key) == kv.Value).Select(kv => $"{kv.Key}:{kv.Value}").ToList();
        Assert.True(open.Count == 0, $"still open after Dispose: {string.Join(", ", open)}");
    }

    /// <summary>Raises the soft RLIMIT_NOFILE to at least <c>minimum</c> (within the hard limit) and restores it.</summary>
    private sealed class RaisedFdLimit : IDisposable
    {
        private readonly Interop.RLimit _original;
        private readonly bool _changed;

        public RaisedFdLimit(ulong minimum)
        {
            Assert.Equal(0, Interop.GetRLimit(Interop.RLIMIT_NOFILE, out _original));
            if (_original.Current < minimum)
            {
                Interop.RLimit raised = _original with { Current = Math.Min(minimum, _original.Maximum) };
                Assert.Equal(0, Interop.SetRLimit(Interop.RLIMIT_NOFILE, raised));
                _changed = true;
            }
        }

        public void Dispose()
        {
            if (_changed)
            {
                Interop.SetRLimit(Interop.RLIMIT_NOFILE, _original);
            }
        }
    }
}
