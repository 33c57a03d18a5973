using Tulip.Selectors;
using static Tulip.Tests.Selectors.SelectorTestUtil;

namespace Tulip.Tests.Selectors;

/// <summary>
/// The selectors and fds that are closed while, or before, they are registered (issue 9): both
/// refuse a closed fd at Add, and poll reports a registered fd that was closed as
/// <see cref="SelectorEvents.Invalid"/> rather than as readable (which made the loop call the
/// reader on every iteration).
/// </summary>
[Collection(NativeFdCollection.Name)]
public sealed class SelectorClosedFdTests
{
    public static TheoryData<string> AllBackends => Backends();

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Add_of_a_closed_fd_fails_with_EBADF(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        NativePipe pipe = new();
        int fd = pipe.ReadFd;
        pipe.Dispose();

        IOException ex = Assert.Throws<IOException>(() => selector.Add(fd, SelectorEvents.Read, 1));
        Assert.Contains("EBADF", ex.Message, StringComparison.Ordinal);
        Assert.Empty(Poll(selector));
    }

    [Fact]
    public void Poll_reports_a_registered_fd_that_was_closed_as_Invalid_whatever_the_interest()
    {
        using ISelector selector = SelectorFactory.Create(SelectorFactory.Poll);
        NativePipe pipe = new();
        int fd = pipe.ReadFd;
        selector.Add(fd, SelectorEvents.Read, 7);
        pipe.Dispose();

        SelectorEvent ev = Assert.Single(WaitForEvents(selector));
        Assert.Equal(7UL, ev.Token);
        Assert.Equal(SelectorEvents.Invalid, ev.Events);

        selector.Remove(fd);
        Assert.Empty(Poll(selector));
    }

    [Fact]
    public void Epoll_forgets_a_registered_fd_that_was_closed()
    {
        using ISelector selector = SelectorFactory.Create(SelectorFactory.Epoll);
        NativePipe pipe = new();
        int fd = pipe.ReadFd;
        selector.Add(fd, SelectorEvents.Read, 7);
        pipe.Dispose();

        Assert.Empty(Poll(selector));
        Assert.False(selector.Modify(fd, SelectorEvents.Read, 8));
    }
}
