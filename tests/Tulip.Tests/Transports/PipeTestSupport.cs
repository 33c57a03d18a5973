using System.Runtime.InteropServices;
using Tulip;

namespace Tulip.Tests.Transports;

/// <summary>Syscalls only the pipe tests need (FIFOs, socketpairs, opening without blocking); the library has no use for them.</summary>
internal static partial class PipeTestNative
{
    public const int O_RDONLY = 0;
    public const int O_WRONLY = 1;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;

    [LibraryImport("libc", EntryPoint = "mkfifo", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MkFifo(string path, int mode);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "socketpair", SetLastError = true)]
    public static unsafe partial int SocketPair(int domain, int type, int protocol, int* fds);

    /// <summary>A connected AF_UNIX SOCK_STREAM pair, close-on-exec.</summary>
    public static unsafe (int A, int B) StreamSocketPair()
    {
        int* fds = stackalloc int[2];
        const int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_CLOEXEC = 0x80000;
        if (SocketPair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        {
            Interop.ThrowForLastErrno("socketpair");
        }

        return (fds[0], fds[1]);
    }

    /// <summary>Whether <paramref name="fd"/> is open (fcntl succeeds).</summary>
    public static bool IsOpen(int fd) => Interop.Fcntl(fd, Interop.F_GETFD) >= 0;

    /// <summary>Writes all of <paramref name="data"/> to a blocking fd.</summary>
    public static unsafe void WriteAll(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                nint n = Interop.Write(fd, p + done, (nuint)(data.Length - done));
                if (n < 0)
                {
                    Interop.ThrowForLastErrno("write");
                }

                done += (int)n;
            }
        }
    }
}

/// <summary>A protocol for either pipe side that records every call, checking the PEP's order as it goes.</summary>
internal class PipeRecorder : IProtocol
{
    private readonly WritePauses _pauses;
    private readonly ReceivedBytes _received = new();
    public PipeRecorder(IEventLoop loop)
    {
        _pauses = new WritePauses(Errors);
        Made = loop.CreateFuture<IBaseTransport>();
        Eof = loop.CreateFuture<bool>();
        Lost = loop.CreateFuture<Exception?>();
        Paused = loop.CreateFuture<bool>();
    }

    public Future<IBaseTransport> Made { get; }

    public Future<bool> Eof { get; }

    public Future<Exception?> Lost { get; }

    public Future<bool> Paused { get; }

    public List<string> Calls { get; } = new();

    public List<string> Errors { get; } = new();

    public int PauseCount => _pauses.Pauses;

    public int ResumeCount => _pauses.Resumes;

    public long ReceivedCount => _received.Count;

    public byte[] Received => _received.ToArray();

    public Action? OnResume { get; set; }

    public Action? OnData { get; set; }

    public Future<bool> WaitBytes(IEventLoop loop, long count) => _received.WaitFor(loop, count);

    public virtual void ConnectionMade(IBaseTransport transport)
    {
        Calls.Add("made");
        if (Made.Done) Errors.Add("ConnectionMade twice");
        Made.SetResult(transport);
    }

    public virtual void DataReceived(ReadOnlySpan<byte> data)
    {
        if (!Made.Done) Errors.Add("DataReceived before ConnectionMade");
        if (Eof.Done) Errors.Add("DataReceived after EofReceived");
        if (Lost.Done) Errors.Add("DataReceived after ConnectionLost");
        if (Calls.Count == 0 || Calls[^1] != "data") Calls.Add("data");
        _received.Add(data);

        OnData?.Invoke();
    }

    public virtual bool EofReceived()
    {
        Calls.Add("eof");
        if (Eof.Done) Errors.Add("EofReceived twice");
        if (Lost.Done) Errors.Add("EofReceived after ConnectionLost");
        Eof.TrySetResult(true);
        return false;
    }

    public virtual void ConnectionLost(Exception? exception)
    {
        Calls.Add("lost");
        if (Lost.Done) Errors.Add("ConnectionLost twice");
        Lost.TrySetResult(exception);
        _received.End();
    }

    public virtual void PauseWriting()
    {
        _pauses.Pause();
        Paused.TrySetResult(true);
    }

    public virtual void ResumeWriting()
    {
        _pauses.Resume();
        OnResume?.Invoke();
    }
}
