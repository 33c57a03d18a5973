using System.Net.Sockets;
using System.Runtime.Versioning;

namespace Tulip;

/// <summary>
/// A stream transport of the selector loop that <see cref="SelectorEventLoop.SendFileAsync"/> can
/// send a file on: the readiness transport, and the io_uring loop's completion transport. It enters
/// sendfile mode (reading paused, writes refused, the buffer drained first) and leaves it. Loop thread.
/// </summary>
[SupportedOSPlatform("linux")]
internal interface ISelectorSendFileTransport
{
    /// <summary>The loop the transport belongs to.</summary>
    SelectorEventLoop Loop { get; }

    /// <summary>Whether the transport is closing (its socket is then no longer to be used).</summary>
    bool IsClosing { get; }

    /// <summary>The connection's socket (a view that does not own the fd, for an accepted connection).</summary>
    Socket Socket { get; }

    /// <summary>Enters sendfile mode; the session's <see cref="SendFileSession.Drained"/> completes once what was written before has gone.</summary>
    SendFileSession BeginSendFile();

    /// <summary>Leaves sendfile mode however the send ended.</summary>
    void EndSendFile(SendFileSession session);
}
