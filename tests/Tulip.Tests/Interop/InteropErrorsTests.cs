using System.Net.Sockets;

// Not Tulip.Tests.Interop: a namespace of that name would hide Tulip.Interop from every test.
namespace Tulip.Tests.InteropTests;

public sealed class InteropErrorsTests
{
    [Theory]
    [InlineData(Interop.Errno.ECONNREFUSED, SocketError.ConnectionRefused)]
    [InlineData(Interop.Errno.ECONNRESET, SocketError.ConnectionReset)]
    [InlineData(Interop.Errno.ECONNABORTED, SocketError.ConnectionAborted)]
    [InlineData(Interop.Errno.EPIPE, SocketError.Shutdown)]
    [InlineData(Interop.Errno.ENOTCONN, SocketError.NotConnected)]
    [InlineData(Interop.Errno.EISCONN, SocketError.IsConnected)]
    [InlineData(Interop.Errno.ETIMEDOUT, SocketError.TimedOut)]
    [InlineData(Interop.Errno.EHOSTUNREACH, SocketError.HostUnreachable)]
    [InlineData(Interop.Errno.ENETUNREACH, SocketError.NetworkUnreachable)]
    [InlineData(Interop.Errno.ENETDOWN, SocketError.NetworkDown)]
    [InlineData(Interop.Errno.EADDRINUSE, SocketError.AddressAlreadyInUse)]
    [InlineData(Interop.Errno.EADDRNOTAVAIL, SocketError.AddressNotAvailable)]
    [InlineData(Interop.Errno.EINPROGRESS, SocketError.InProgress)]
    [InlineData(Interop.Errno.EALREADY, SocketError.AlreadyInProgress)]
    public void Connection_errnos_become_SocketException(int errno, SocketError expected)
    {
        Exception ex = Interop.GetExceptionForErrno(errno, "connect(fd 5)");

        SocketException socketEx = Assert.IsType<SocketException>(ex);
        Assert.Equal(expected, socketEx.SocketErrorCode);
        Assert.StartsWith("connect(fd 5) failed: ", socketEx.Message, StringComparison.Ordinal);
        Assert.EndsWith($"({Interop.Errno.GetName(errno)}, errno {errno})", socketEx.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Interop.Errno.EPIPE, "write(fd 7) failed: broken pipe: the reading end is closed (EPIPE, errno 32)")]
    [InlineData(Interop.Errno.EBADF, "write(fd 7) failed: bad file descriptor (EBADF, errno 9)")]
    public void Pipe_errnos_stay_IOExceptions_with_the_errno_as_HResult(int errno, string message)
    {
        // Never the SocketException the Call rule makes of EPIPE.
        IOException io = Assert.IsType<IOException>(Interop.GetExceptionForErrno(errno, "write(fd 7)", source: Interop.ErrnoSource.File));
        Assert.Equal(message, io.Message);
        Assert.Equal(errno, io.HResult);
    }

    [Fact]
    public void EIO_has_its_name()
    {
        var io = Assert.IsType<IOException>(Interop.GetExceptionForErrno(Interop.Errno.EIO, "read(fd 3)", source: Interop.ErrnoSource.File));
        Assert.EndsWith("(EIO, errno 5)", io.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EBADF_is_an_IOException_saying_bad_file_descriptor()
    {
        Exception ex = Interop.GetExceptionForErrno(Interop.Errno.EBADF, "read(fd 42)");

        IOException io = Assert.IsType<IOException>(ex);
        Assert.Equal("read(fd 42) failed: bad file descriptor (EBADF, errno 9)", io.Message);
        Assert.Equal(Interop.Errno.EBADF, io.HResult);
    }

    [Fact]
    public void ENOENT_is_FileNotFoundException_with_the_path()
    {
        Exception ex = Interop.GetExceptionForErrno(Interop.Errno.ENOENT, "open", "/no/such/file");

        FileNotFoundException fnf = Assert.IsType<FileNotFoundException>(ex);
        Assert.Equal("/no/such/file", fnf.FileName);
        Assert.StartsWith("open '/no/such/file' failed: ", fnf.Message, StringComparison.Ordinal);
        Assert.EndsWith("(ENOENT, errno 2)", fnf.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Interop.Errno.EACCES)]
    [InlineData(Interop.Errno.EPERM)]
    public void EACCES_and_EPERM_are_UnauthorizedAccessException(int errno)
    {
        Exception ex = Interop.GetExceptionForErrno(errno, "kill(1, SIGKILL)");

        Assert.IsType<UnauthorizedAccessException>(ex);
        Assert.Contains($"errno {errno}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("kill(1, SIGKILL)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EINVAL_is_ArgumentException()
    {
        Exception ex = Interop.GetExceptionForErrno(Interop.Errno.EINVAL, "epoll_wait");

        Assert.IsType<ArgumentException>(ex);
        Assert.Contains("epoll_wait failed: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains("(EINVAL, errno 22)", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Interop.Errno.EMFILE)]
    [InlineData(Interop.Errno.ENFILE)]
    public void Fd_exhaustion_says_what_to_do(int errno)
    {
        Exception ex = Interop.GetExceptionForErrno(errno, "pipe2");

        IOException io = Assert.IsType<IOException>(ex);
        Assert.Contains("too many open files (raise RLIMIT_NOFILE or close descriptors)", io.Message, StringComparison.Ordinal);
        Assert.Contains($"errno {errno}", io.Message, StringComparison.Ordinal);
        Assert.Equal(errno, io.HResult);
    }

    [Fact]
    public void Other_errnos_are_IOException_with_strerror_text()
    {
        Exception ex = Interop.GetExceptionForErrno(Interop.Errno.ENOMEM, "epoll_create1");

        IOException io = Assert.IsType<IOException>(ex);
        Assert.Equal(
            $"epoll_create1 failed: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(Interop.Errno.ENOMEM)} (ENOMEM, errno 12)",
            io.Message);
    }

    [Fact]
    public void Unnamed_errnos_still_give_the_number()
    {
        Exception ex = Interop.GetExceptionForErrno(200, "ioctl");

        Assert.IsType<IOException>(ex);
        Assert.EndsWith("(errno 200)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ThrowForErrno_throws_the_mapped_exception()
    {
        Assert.Throws<SocketException>(() => Interop.ThrowForErrno(Interop.Errno.ECONNRESET, "recv"));
        Assert.Throws<FileNotFoundException>(() => Interop.ThrowForErrno(Interop.Errno.ENOENT, "open", "/x"));
    }

    [Fact]
    public void A_real_failing_call_reports_its_errno()
    {
        Assert.Equal(-1, Interop.Close(-1));
        Assert.Equal(Interop.Errno.EBADF, Interop.GetLastErrno());

        IOException io = Assert.Throws<IOException>(() => Interop.ThrowForLastErrno("close(-1)"));
        Assert.Contains("EBADF", io.Message, StringComparison.Ordinal);
    }
}
