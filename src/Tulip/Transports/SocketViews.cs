using System.Net;
using System.Net.Sockets;

namespace Tulip;

/// <summary>
/// What every socket transport (the selector's and the proactor's, stream and datagram) shows of its
/// socket: a view for <c>GetExtraInfo("socket")</c> that does not own the handle, and the addresses,
/// read once, for "sockname" and "peername".
/// </summary>
internal static class SocketViews
{
    /// <summary>
    /// A <see cref="Socket"/> over <paramref name="handle"/> that does not own it: options can be read and
    /// set on it, and disposing it leaves the handle open (on every OS). The handle is non-blocking already;
    /// the view is told so, which changes nothing underneath.
    /// </summary>
    public static Socket NonOwning(nint handle) => new(new SafeSocketHandle(handle, ownsHandle: false)) { Blocking = false };

    /// <summary>The socket's local or remote address, or null where it has none (not bound, not connected).</summary>
    public static EndPoint? TryEndPoint(Socket socket, bool local)
    {
        try
        {
            return local ? socket.LocalEndPoint : socket.RemoteEndPoint;
        }
        catch (SocketException)
        {
            // asyncio leaves the key out too.
            return null;
        }
    }
}
