using Tulip.Tests.Selectors;

// Not Tulip.Tests.Interop: a namespace of that name would hide Tulip.Interop from every test.
namespace Tulip.Tests.InteropTests;

[Collection(NativeFdCollection.Name)]
public sealed class InteropProcessTests
{
    [Fact]
    public void GetPid_is_this_process_and_signal_zero_finds_it()
    {
        Assert.Equal(Environment.ProcessId, Interop.GetPid());
        Assert.Equal(0, Interop.Kill(Interop.GetPid(), 0));
    }

    [Fact]
    public void Kill_of_a_missing_process_is_ESRCH()
    {
        // Above pid_max (at most 2^22 on Linux), so it cannot exist.
        Assert.Equal(-1, Interop.Kill(int.MaxValue, 0));
        Assert.Equal(Interop.Errno.ESRCH, Interop.GetLastErrno());
    }

    [Fact]
    public void GetRLimit_reads_the_fd_limit()
    {
        Assert.Equal(0, Interop.GetRLimit(Interop.RLIMIT_NOFILE, out Interop.RLimit limit));
        Assert.True(limit.Current > 0);
        Assert.True(limit.Current <= limit.Maximum);

        // Setting it to what it already is round-trips.
        Assert.Equal(0, Interop.SetRLimit(Interop.RLIMIT_NOFILE, limit));
    }

    [Fact]
    public void SetNonBlocking_and_SetCloseOnExec_change_the_fd_flags()
    {
        using NativePipe pipe = new(flags: 0);
        Assert.Equal(0, Interop.Fcntl(pipe.ReadFd, Interop.F_GETFL) & Interop.O_NONBLOCK);
        Assert.Equal(0, Interop.Fcntl(pipe.ReadFd, Interop.F_GETFD) & Interop.FD_CLOEXEC);

        Interop.SetNonBlocking(pipe.ReadFd, true);
        Interop.SetCloseOnExec(pipe.ReadFd);

        Assert.Equal(Interop.O_NONBLOCK, Interop.Fcntl(pipe.ReadFd, Interop.F_GETFL) & Interop.O_NONBLOCK);
        Assert.Equal(Interop.FD_CLOEXEC, Interop.Fcntl(pipe.ReadFd, Interop.F_GETFD) & Interop.FD_CLOEXEC);

        Interop.SetNonBlocking(pipe.ReadFd, false);
        Assert.Equal(0, Interop.Fcntl(pipe.ReadFd, Interop.F_GETFL) & Interop.O_NONBLOCK);
    }

    [Fact]
    public unsafe void Read_of_an_empty_non_blocking_pipe_is_EAGAIN()
    {
        using NativePipe pipe = new();
        byte b;
        Assert.Equal(-1, Interop.Read(pipe.ReadFd, &b, 1));
        Assert.Equal(Interop.Errno.EAGAIN, Interop.GetLastErrno());

        pipe.WriteByte(42);
        Assert.Equal(1, Interop.Read(pipe.ReadFd, &b, 1));
        Assert.Equal(42, b);
    }

    [Fact]
    public void Fcntl_helpers_on_a_bad_fd_throw_EBADF()
    {
        IOException ex = Assert.Throws<IOException>(() => Interop.SetNonBlocking(-1, true));
        Assert.Contains("fcntl(F_GETFL) failed: bad file descriptor (EBADF, errno 9)", ex.Message, StringComparison.Ordinal);
    }
}
