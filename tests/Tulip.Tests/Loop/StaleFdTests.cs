using Tulip.Tests.Selectors;
using Tulip.Tests.Transports;

namespace Tulip.Tests.Loop;

/// <summary>
/// Fds closed while the loop watches them (issue 9). A closed fd is refused up front; a registered fd
/// that is closed never makes the loop spin (poll reported POLLNVAL as readable on every iteration);
/// and a reader left behind on a closed fd never fires for the file that reuses its number (epoll turned
/// MOD's ENOENT into a silent ADD that carried the stale reader over to the new file).
/// </summary>
/// <remarks>
/// <para>
/// Readiness only, so theories over <see cref="LoopKinds.ReadinessNames"/> rather than a suite bound to
/// every kind: each test registers fds with <see cref="BaseEventLoop.AddReader"/> or
/// <see cref="BaseEventLoop.AddWriter"/>, which a completion loop refuses (PEP 3156 makes them optional;
/// the refusal is tested in <c>EventLoopContractTests</c>). A completion loop watches no fd numbers at
/// all: its transports own .NET sockets, whose operations complete or fail with the socket, so a stale
/// number has nothing to be mistaken for.
/// </para>
/// <para>In <see cref="NativeFdCollection"/>: the tests rely on fd numbers no other test takes meanwhile.</para>
/// </remarks>
[Collection(NativeFdCollection.Name)]
public sealed class StaleFdTests
{

    [Theory]
    [MemberData(nameof(LoopKinds.ReadinessNames), MemberType = typeof(LoopKinds))]
    public void AddReader_and_AddWriter_of_a_closed_fd_fail_up_front_with_EBADF(string kindName)
    {
        var kind = LoopKinds.Named(kindName);
        using var h = new LoopHarness(kind.Create);
        var pipe = new NativePipe();
        int fd = pipe.ReadFd;
        pipe.Dispose();

        var ex = Assert.Throws<IOException>(() => h.Loop.AddReader(fd, () => { }));
        Assert.Contains("EBADF", ex.Message, StringComparison.Ordinal);
        ex = Assert.Throws<IOException>(() => h.Loop.AddWriter(fd, () => { }));
        Assert.Contains("EBADF", ex.Message, StringComparison.Ordinal);
        Assert.False(kind.IsRegistered(h.Loop, fd));
    }

    [Theory]
    [MemberData(nameof(LoopKinds.ReadinessNames), MemberType = typeof(LoopKinds))]
    public void A_reader_whose_fd_is_closed_is_never_called_and_the_loop_does_not_spin(string kindName)
    {
        var kind = LoopKinds.Named(kindName);
        using var h = new LoopHarness(kind.Create);
        var loop = h.Loop;
        using var pipe = new NativePipe();
        int fd = pipe.ReadFd;
        int calls = 0;
        loop.AddReader(fd, () => calls++);
        h.RunOnce();

        pipe.CloseRead(); // no RemoveReader
        for (int i = 0; i < 5; i++)
        {
            h.RunOnce();
        }

        Assert.Equal(0, calls);
        var contexts = h.TakeContexts();
        if (kind.ReportsClosedFds)
        {
            var context = Assert.Single(contexts);
            Assert.Contains($"fd {fd} was closed while the event loop still watched it", context.Message, StringComparison.Ordinal);
            Assert.IsType<IOException>(context.Exception);
            Assert.False(kind.IsRegistered(loop, fd), "the registration of the closed fd should be gone");
        }
        else
        {
            Assert.Empty(contexts);
        }
    }

    [Theory]
    [MemberData(nameof(LoopKinds.ReadinessNames), MemberType = typeof(LoopKinds))]
    public unsafe void A_stale_reader_never_fires_for_the_file_that_reuses_its_number_when_the_new_owner_adds_a_writer(string kindName)
    {
        var kind = LoopKinds.Named(kindName);
        using var h = new LoopHarness(kind.Create);
        var loop = h.Loop;
        using var old = new NativePipe();
        int fd = old.ReadFd;
        int staleCalls = 0;
        loop.AddReader(fd, () => staleCalls++);
        h.RunOnce();

        old.CloseRead(); // no RemoveReader: the loop still has a reader for the number
        int peer = ReuseNumberForSocket(fd);
        try
        {
            // The new file is readable at once: a stale reader carried over would fire with the writer.
            PipeTestNative.WriteAll(peer, [1, 2, 3]);
            int writerCalls = 0;
            loop.AddWriter(fd, () =>
            {
                writerCalls++;
                loop.RemoveWriter(fd);
            });
            for (int i = 0; i < 3; i++)
            {
                h.RunOnce();
            }

            Assert.Equal(1, writerCalls);
            Assert.Equal(0, staleCalls);
            Assert.False(loop.RemoveReader(fd), "the stale reader should have been dropped");
        }
        finally
        {
            Interop.Close(fd);
            Interop.Close(peer);
        }
    }

    [Theory]
    [MemberData(nameof(LoopKinds.ReadinessNames), MemberType = typeof(LoopKinds))]
    public unsafe void AddReader_again_on_a_reused_number_replaces_the_stale_reader(string kindName)
    {
        var kind = LoopKinds.Named(kindName);
        using var h = new LoopHarness(kind.Create);
        var loop = h.Loop;
        using var old = new NativePipe();
        int fd = old.ReadFd;
        int staleCalls = 0;
        loop.AddReader(fd, () => staleCalls++);
        h.RunOnce();

        old.CloseRead();
        int peer = ReuseNumberForSocket(fd);
        try
        {
            int bytes = 0;
            loop.AddReader(fd, () =>
            {
                byte b;
                if (Interop.Read(fd, &b, 1) == 1)
                {
                    bytes++;
                }
            });
            PipeTestNative.WriteAll(peer, [1]);
            for (int i = 0; i < 3; i++)
            {
                h.RunOnce();
            }

            Assert.Equal(1, bytes);
            Assert.Equal(0, staleCalls);
            Assert.True(loop.RemoveReader(fd));
        }
        finally
        {
            Interop.Close(fd);
            Interop.Close(peer);
        }
    }

    /// <summary>Makes <paramref name="fd"/> (closed) one end of a new socketpair; returns the other end.</summary>
    private static int ReuseNumberForSocket(int fd)
    {
        var (a, b) = PipeTestNative.StreamSocketPair();
        if (a != fd)
        {
            Assert.Equal(fd, Interop.Dup2(a, fd));
            Interop.Close(a);
        }

        return b;
    }
}
