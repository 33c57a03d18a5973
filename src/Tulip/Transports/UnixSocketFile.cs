using System;
using System.IO;

namespace Tulip;

/// <summary>
/// What the base loop asks about a UNIX socket's file (a stale one to remove before bind; the one a
/// server bound, to remove at close only if it is still that file, as asyncio 3.13 does), answered on
/// every platform: by statx(2) on Linux, and elsewhere, where Tulip's interop does not run, by .NET's
/// file API, which cannot tell a socket from another file (so nothing is removed as stale there) and
/// knows a file by its creation time rather than its inode.
/// </summary>
internal static class UnixSocketFile
{
    /// <summary>Whether <paramref name="path"/> names a socket file (false: none, not a socket, or unknown off Linux).</summary>
    public static bool IsSocket(string path) =>
        LinuxInterop.IsAvailable && Interop.TryGetFileType(path, out int type, out _) && type == Interop.S_IFSOCK;

    /// <summary>An identity of the file at <paramref name="path"/> that changes when it is replaced; false when there is no file.</summary>
    public static bool TryGetIdentity(string path, out ulong identity)
    {
        if (LinuxInterop.IsAvailable)
        {
            return Interop.TryGetFileType(path, out _, out identity);
        }

        try
        {
            var info = new FileInfo(path);
            identity = info.Exists || (info.Attributes & FileAttributes.ReparsePoint) != 0 ? (ulong)info.CreationTimeUtc.Ticks : 0;
            return identity != 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            identity = 0;
            return false;
        }
    }
}
