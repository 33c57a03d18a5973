namespace Tulip.Tests.Selectors;

/// <summary>A non-blocking, close-on-exec pipe for tests; Dispose closes whichever ends are still open.</summary>
internal sealed unsafe class NativePipe : IDisposable
{
    public NativePipe(int flags = Interop.O_NONBLOCK | Interop.O_CLOEXEC)
    {
        int* fds = stackalloc int[2];
        if (Interop.Pipe2(fds, flags) != 0)
        {
            Interop.ThrowForLastErrno("pipe2");
        }

        ReadFd = fds[0];
        WriteFd = fds[1];
    }

    public int ReadFd { get; private set; }

    public int WriteFd { get; private set; }

    public void WriteByte(byte value = 1)
    {
        if (Interop.Write(WriteFd, &value, 1) != 1)
        {
            Interop.ThrowForLastErrno("write(pipe)");
        }
    }

    /// <summary>Hands the read end over (to a transport, which will close it): Dispose no longer closes it.</summary>
    public int TakeRead()
    {
        int fd = ReadFd;
        ReadFd = -1;
        return fd;
    }

    /// <summary>Hands the write end over: Dispose no longer closes it.</summary>
    public int TakeWrite()
    {
        int fd = WriteFd;
        WriteFd = -1;
        return fd;
    }

    public void CloseWrite()
    {
        if (WriteFd >= 0)
        {
            Interop.Close(WriteFd);
            WriteFd = -1;
        }
    }

    public void CloseRead()
    {
        if (ReadFd >= 0)
        {
            Interop.Close(ReadFd);
            ReadFd = -1;
        }
    }

    public void Dispose()
    {
        CloseRead();
        CloseWrite();
    }
}
