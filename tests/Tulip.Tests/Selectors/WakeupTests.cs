using Tulip.Selectors;
using static Tulip.Tests.Selectors.SelectorTestUtil;

namespace Tulip.Tests.Selectors;

[Collection(NativeFdCollection.Name)]
public sealed class WakeupTests
{
    public static TheoryData<bool> Kinds()
    {
        TheoryData<bool> data = new() { false };
        if (OperatingSystem.IsLinux())
        {
            data.Add(true);
        }

        return data;
    }

    [Fact]
    public void Default_is_an_eventfd_on_Linux()
    {
        using Wakeup wakeup = new();
        Assert.Equal(OperatingSystem.IsLinux(), wakeup.IsEventFd);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Signal_makes_it_readable_and_Drain_clears_it(bool useEventFd)
    {
        using ISelector selector = SelectorFactory.Create("poll");
        using Wakeup wakeup = new(useEventFd);
        selector.Add(wakeup.ReadFd, SelectorEvents.Read, 1);
        Assert.Empty(Poll(selector));

        wakeup.Signal();
        wakeup.Signal();
        Assert.Single(WaitForEvents(selector));

        wakeup.Drain();
        Assert.Empty(Poll(selector));
        wakeup.Drain(); // nothing pending: EAGAIN straight away
        selector.Remove(wakeup.ReadFd);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Signal_when_full_is_not_an_error(bool useEventFd)
    {
        using ISelector selector = SelectorFactory.Create("poll");
        using Wakeup wakeup = new(useEventFd);
        selector.Add(wakeup.ReadFd, SelectorEvents.Read, 1);

        // A pipe holds 64 KiB by default (pipe(7)); more one-byte signals than that hit EAGAIN.
        for (int i = 0; i < 70_000; i++)
        {
            wakeup.Signal();
        }

        Assert.Single(WaitForEvents(selector));
        wakeup.Drain();
        Assert.Empty(Poll(selector));
        selector.Remove(wakeup.ReadFd);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Signal_from_many_threads_at_once(bool useEventFd)
    {
        using ISelector selector = SelectorFactory.Create("poll");
        using Wakeup wakeup = new(useEventFd);
        selector.Add(wakeup.ReadFd, SelectorEvents.Read, 1);

        Parallel.For(0, 1000, new ParallelOptions { MaxDegreeOfParallelism = 4 }, _ => wakeup.Signal());

        Assert.Single(WaitForEvents(selector));
        wakeup.Drain();
        Assert.Empty(Poll(selector));
        selector.Remove(wakeup.ReadFd);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Dispose_closes_the_fds_and_is_idempotent(bool useEventFd)
    {
        int before = CountOpenFds();
        Wakeup wakeup = new(useEventFd);
        Assert.Equal(before + (useEventFd ? 1 : 2), CountOpenFds());

        wakeup.Dispose();
        wakeup.Dispose();

        Assert.Equal(-1, wakeup.ReadFd);
        Assert.Equal(before, CountOpenFds());
    }
}
