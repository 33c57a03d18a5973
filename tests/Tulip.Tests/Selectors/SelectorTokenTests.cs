using Tulip.Selectors;
using static Tulip.Tests.Selectors.SelectorTestUtil;

namespace Tulip.Tests.Selectors;

/// <summary>
/// Error and hang-up events are filtered by the interest of the token they carry, for the loop's
/// tokens (the fd in the low 32 bits, a generation above: EpollSelector keeps these in a slot per fd)
/// as for any other token.
/// </summary>
[Collection(NativeFdCollection.Name)]
public sealed class SelectorTokenTests
{
    public static TheoryData<string> AllBackends => Backends();

    private static ulong LoopToken(int fd, uint generation) => ((ulong)generation << 32) | (uint)fd;

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Error_on_a_loop_token_reports_only_its_interest(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe pipe = new();
        selector.Add(pipe.WriteFd, SelectorEvents.Write, LoopToken(pipe.WriteFd, 1));
        selector.Modify(pipe.WriteFd, SelectorEvents.Write, LoopToken(pipe.WriteFd, 2));

        pipe.CloseRead();

        SelectorEvent ev = Assert.Single(WaitForEvents(selector));
        Assert.Equal(LoopToken(pipe.WriteFd, 2), ev.Token);
        Assert.Equal(SelectorEvents.Write, ev.Events);
        selector.Remove(pipe.WriteFd);
    }

    [Theory]
    [MemberData(nameof(AllBackends))]
    public void Hang_up_on_a_loop_token_reports_its_interest_after_a_modify(string backend)
    {
        using ISelector selector = SelectorFactory.Create(backend);
        using NativePipe pipe = new();
        // A read end is never writable: Write could only come from the hang-up filtered by a stale or lost interest.
        selector.Add(pipe.ReadFd, SelectorEvents.Read | SelectorEvents.Write, LoopToken(pipe.ReadFd, 1));
        selector.Modify(pipe.ReadFd, SelectorEvents.Read, LoopToken(pipe.ReadFd, 2));

        pipe.CloseWrite();

        SelectorEvent ev = Assert.Single(WaitForEvents(selector));
        Assert.Equal(LoopToken(pipe.ReadFd, 2), ev.Token);
        Assert.Equal(SelectorEvents.Read, ev.Events);
        selector.Remove(pipe.ReadFd);
    }
}
