using Tulip.Tests.Selectors;

namespace Tulip.Tests.Loop;

/// <summary>
/// The readiness callbacks of PEP 3156 (<c>add_reader</c>, <c>add_writer</c>): what a loop with fd
/// readiness (<see cref="IReadinessEventLoop"/>) does with them, on every such kind.
/// </summary>
/// <remarks>
/// Theories over <see cref="LoopKinds.ReadinessNames"/>, not part of <see cref="EventLoopContractTests"/>:
/// the PEP makes these methods optional and a completion loop (the proactor, asyncio's too) refuses
/// them, which the contract checks on every kind (<c>Readiness_callbacks_work_where_the_loop_has_readiness_and_are_refused_naming_the_selector_loop_elsewhere</c>).
/// In <see cref="NativeFdCollection"/>: the fd-reuse test relies on the kernel handing out the lowest free number.
/// </remarks>
[Collection(NativeFdCollection.Name)]
public sealed class ReadinessEventLoopTests
{
    [Theory]
    [MemberData(nameof(LoopKinds.ReadinessNames), MemberType = typeof(LoopKinds))]
    public void AddReader_calls_back_when_the_fd_is_readable_and_RemoveReader_stops_it(string kindName)
    {
        using var h = new LoopHarness(LoopKinds.Named(kindName).Create, checkFds: true);
        using (var pipe = new NativePipe())
        {
            int calls = 0;
            h.Loop.AddReader(pipe.ReadFd, () =>
            {
                calls++;
                Assert.True(h.Loop.RemoveReader(pipe.ReadFd));
                h.Loop.Stop();
            });
            pipe.WriteByte();
            h.RunForever();
            Assert.Equal(1, calls);
            Assert.False(h.Loop.RemoveReader(pipe.ReadFd));
        }
    }

    [Theory]
    [MemberData(nameof(LoopKinds.ReadinessNames), MemberType = typeof(LoopKinds))]
    public void AddWriter_calls_back_when_the_fd_is_writable(string kindName)
    {
        using var h = new LoopHarness(LoopKinds.Named(kindName).Create);
        using var pipe = new NativePipe();
        int calls = 0;
        h.Loop.AddWriter(pipe.WriteFd, () =>
        {
            calls++;
            h.Loop.RemoveWriter(pipe.WriteFd);
            h.Loop.Stop();
        });
        h.RunForever();
        Assert.Equal(1, calls);
    }

    /// <summary>
    /// The fd-reuse case: a reader registered on a pipe whose fd is closed without RemoveReader, the
    /// number reused by a new pipe with another reader, and the OLD file description (kept alive by a
    /// dup, so epoll still watches it under the old registration) made readable. Only the new pipe's
    /// data may call the new reader, and the old reader never runs again.
    /// </summary>
    [Theory]
    [MemberData(nameof(LoopKinds.ReadinessNames), MemberType = typeof(LoopKinds))]
    public unsafe void A_reused_fd_number_never_delivers_the_old_file_events_to_the_new_reader(string kindName)
    {
        using var h = new LoopHarness(LoopKinds.Named(kindName).Create);
        var loop = h.Loop;
        using var oldPipe = new NativePipe();
        int fd = oldPipe.ReadFd;
        int keepOld = Interop.Dup(fd);
        Assert.True(keepOld >= 0, "dup failed");
        var newPipe = new NativePipe();
        try
        {
            int oldCalls = 0;
            loop.AddReader(fd, () => oldCalls++);
            h.RunOnce();

            oldPipe.CloseRead(); // no RemoveReader: the loop still has a registration for the number
            newPipe.Dispose();
            newPipe = new NativePipe();
            if (newPipe.ReadFd != fd)
            {
                Assert.Equal(fd, Interop.Dup2(newPipe.ReadFd, fd));
                Interop.Close(newPipe.ReadFd);
            }

            int newReadFd = fd;
            int newCalls = 0;
            int newBytes = 0;
            loop.AddReader(newReadFd, () =>
            {
                newCalls++;
                byte b;
                if (Interop.Read(newReadFd, &b, 1) == 1)
                {
                    newBytes++;
                }

                if (newBytes == 1)
                {
                    loop.Stop();
                }
            });

            // The old description becomes readable and stays readable (level-triggered).
            oldPipe.WriteByte();
            for (int i = 0; i < 5; i++)
            {
                // Each iteration waits at most a millisecond: the stale event, if delivered, would show.
                loop.CallLater(0.001, loop.Stop);
                loop.RunForever();
            }

            Assert.Equal(0, newCalls);
            Assert.Equal(0, oldCalls);

            // Data on the new pipe reaches the new reader, exactly once per byte.
            newPipe.WriteByte();
            h.RunForever();
            Assert.Equal(1, newBytes);
            Assert.Equal(0, oldCalls);
            Assert.True(loop.RemoveReader(newReadFd));
            if (newPipe.ReadFd != fd)
            {
                Interop.Close(fd);
            }
        }
        finally
        {
            Interop.Close(keepOld);
            newPipe.Dispose();
        }
    }
}
