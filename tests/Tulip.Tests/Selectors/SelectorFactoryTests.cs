using Tulip.Selectors;

namespace Tulip.Tests.Selectors;

public sealed class SelectorFactoryTests
{
    [Fact]
    public void Default_is_epoll_on_Linux()
    {
        using ISelector selector = SelectorFactory.Create(null);
        Assert.Equal(OperatingSystem.IsLinux() ? "epoll" : "poll", selector.Name);
    }

    [Theory]
    [InlineData("poll", "poll")]
    [InlineData("POLL", "poll")]
    [InlineData("epoll", "epoll")]
    public void Creates_the_named_backend(string name, string expected)
    {
        if (expected == "epoll" && !OperatingSystem.IsLinux())
        {
            Assert.Throws<PlatformNotSupportedException>(() => SelectorFactory.Create(name));
            return;
        }

        using ISelector selector = SelectorFactory.Create(name);
        Assert.Equal(expected, selector.Name);
    }

    [Fact]
    public void Unknown_name_lists_the_valid_ones()
    {
        ArgumentException ex = Assert.Throws<ArgumentException>(() => SelectorFactory.Create("kqueue"));
        Assert.Contains("kqueue", ex.Message, StringComparison.Ordinal);
        Assert.Contains("\"epoll\"", ex.Message, StringComparison.Ordinal);
        Assert.Contains("\"poll\"", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public unsafe void Epoll_event_layout_matches_the_platform_abi()
    {
        Assert.Equal(12, sizeof(Interop.EpollEventPacked));
        Assert.Equal(16, sizeof(Interop.EpollEventAligned));
        Interop.EpollEventPacked packed = default;
        Assert.Equal(4, (int)((byte*)&packed.Data - (byte*)&packed));
        bool packedAbi = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture
            is System.Runtime.InteropServices.Architecture.X64 or System.Runtime.InteropServices.Architecture.X86;
        Assert.Equal(packedAbi, Interop.EpollEventIsPacked);
        Assert.Equal(packedAbi ? 12 : 16, Interop.EpollEventSize);
    }
}
