using System;
using System.IO;
using System.Net.Sockets;

namespace Tulip;

/// <summary>
/// The argument checks of <see cref="IEventLoop.SockSendFileAsync"/> and <see cref="IEventLoop.SendFileAsync"/>,
/// shared by every loop so that the same mistake gets the same exception on each.
/// </summary>
internal static class SendFileArguments
{
    /// <summary>asyncio's <c>_check_sendfile_params</c>, plus the checks C# needs on the file itself.</summary>
    internal static void Check(Socket socket, FileStream file, long offset, long? count)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (!file.CanRead && !file.CanWrite && !file.CanSeek)
        {
            throw new ObjectDisposedException(nameof(file), "The file is closed: open it again to send it.");
        }

        if (!file.CanRead)
        {
            throw new ArgumentException($"The file '{file.Name}' is not open for reading: open it with FileAccess.Read.", nameof(file));
        }

        if (socket.SocketType != SocketType.Stream)
        {
            throw new ArgumentException($"Only stream sockets can send a file; got a {socket.SocketType} socket.", nameof(socket));
        }

        if (offset < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, "The offset must be non-negative.");
        }

        if (offset > 0 && !file.CanSeek)
        {
            throw new ArgumentException($"The file '{file.Name}' is not seekable: only offset 0 can be sent from it.", nameof(offset));
        }

        if (count is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "The count must be positive, or null for the rest of the file.");
        }
    }
}
