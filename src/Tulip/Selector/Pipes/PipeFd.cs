using System;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Tulip;

/// <summary>
/// The fd of a pipe transport: checked to be a pollable fd open the right way, made non-blocking,
/// and kept alive (the handle is add-ref'd) until the transport closes it. Owned by one transport.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class PipeFd
{
    private readonly SafeHandle _handle;
    private readonly IDisposable? _owner;
    private readonly int _savedFlags;
    private bool _released;

    private PipeFd(SafeHandle handle, IDisposable? owner, int fd, int fileType, int savedFlags)
    {
        _handle = handle;
        _owner = owner;
        Fd = fd;
        FileType = fileType;
        _savedFlags = savedFlags;
    }

    /// <summary>The fd number, valid until <see cref="Close"/>.</summary>
    internal int Fd { get; }

    /// <summary>The file-type bits (<see cref="Interop.S_IFMT"/>).</summary>
    internal int FileType { get; }

    /// <summary>What <c>GetExtraInfo("pipe")</c> returns: the stream the caller gave, or the handle.</summary>
    internal object Pipe => (object?)_owner ?? _handle;

    /// <summary>True once closed or given back.</summary>
    internal bool IsReleased => _released;

    /// <summary>
    /// Checks <paramref name="pipe"/> and takes it for a transport: asyncio's checks (a pipe, FIFO,
    /// socket or character device; anything else cannot be polled), plus the access mode, so a read
    /// end given for writing fails here with a clear message instead of with EBADF on the first write.
    /// </summary>
    /// <exception cref="ArgumentException">The fd is not open, is of the wrong kind, or is not open for <paramref name="forWriting"/>.</exception>
    internal static PipeFd Take(SafeHandle pipe, IDisposable? owner, bool forWriting)
    {
        var handle = pipe;
        var (fd, fileType, flags) = PipeHandleProbe.Check(pipe, forWriting);
        bool addedRef = false;
        handle.DangerousAddRef(ref addedRef);
        try
        {
            Interop.SetNonBlocking(fd, true);
        }
        catch
        {
            handle.DangerousRelease();
            throw;
        }

        return new PipeFd(handle, owner, fd, fileType, flags);
    }

    /// <summary>Gives the fd back untouched (blocking mode restored) when the transport is never made.</summary>
    internal void GiveBack()
    {
        if (_released)
        {
            return;
        }

        _released = true;
        _ = Interop.Fcntl(Fd, Interop.F_SETFL, _savedFlags); // best effort: the caller's fd, as it was
        _handle.DangerousRelease();
    }

    /// <summary>Closes the fd (through the stream the caller gave, if any). Idempotent.</summary>
    internal void Close()
    {
        if (_released)
        {
            return;
        }

        _released = true;
        _handle.DangerousRelease();
        _owner?.Dispose();
        // And the handle itself, even after its stream: a NetworkStream that does not own its
        // socket leaves it open, but the transport owns the pipe. A second Dispose is a no-op.
        _handle.Dispose();
    }
}
