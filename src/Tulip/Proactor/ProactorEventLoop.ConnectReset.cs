using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Tulip;

// A connect the peer reset before the runtime saw it complete. .NET finishes a non-blocking connect on
// its own thread by reading SO_ERROR; when the peer accepted and reset the connection before that read
// (a loaded machine, a server that aborts at once), the read returns ECONNRESET, and clears it. The
// connection was made (a reset while connecting is ECONNREFUSED), so the connect succeeds, as on the
// selector loop, whose connect reads SO_ERROR first; the reset is then what the first read of the
// socket's transport reports, as the selector loop's first recv would. The note is kept per socket
// until a transport takes it (a socket that never gets one lets it go with itself).
public sealed partial class ProactorEventLoop
{
    private readonly ConditionalWeakTable<Socket, EndPoint> _resetAtConnect = new();

    /// <summary>Notes that <paramref name="socket"/>'s connect to <paramref name="address"/> was made and then reset by the peer.</summary>
    internal void NoteResetAtConnect(Socket socket, EndPoint address) => _resetAtConnect.AddOrUpdate(socket, address);

    /// <summary>
    /// True (once) if <paramref name="socket"/>'s connect was reset by the peer before it completed:
    /// its transport's first receive then fails with ECONNRESET; <paramref name="connectedTo"/> is
    /// the address it connected to (the socket no longer knows its peer).
    /// </summary>
    internal bool TakeResetAtConnect(Socket socket, out EndPoint? connectedTo)
    {
        if (_resetAtConnect.TryGetValue(socket, out connectedTo))
        {
            _resetAtConnect.Remove(socket);
            return true;
        }

        return false;
    }
}
