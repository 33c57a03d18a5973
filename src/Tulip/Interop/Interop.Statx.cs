using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    private const int AT_FDCWD = -100;
    private const int AT_SYMLINK_NOFOLLOW = 0x100;
    private const uint STATX_TYPE = 0x1;
    private const uint STATX_INO = 0x100;

    /// <summary>S_IFMT: the file-type bits of a mode.</summary>
    internal const int S_IFMT = 0xF000;

    /// <summary>S_IFSOCK: a socket.</summary>
    internal const int S_IFSOCK = 0xC000;

    /// <summary>S_IFIFO: a pipe or FIFO.</summary>
    internal const int S_IFIFO = 0x1000;

    /// <summary>S_IFCHR: a character device (a terminal, /dev/null...).</summary>
    internal const int S_IFCHR = 0x2000;

    /// <summary>S_IFDIR: a directory.</summary>
    internal const int S_IFDIR = 0x4000;

    /// <summary>S_IFBLK: a block device.</summary>
    internal const int S_IFBLK = 0x6000;

    /// <summary>S_IFREG: a regular file.</summary>
    internal const int S_IFREG = 0x8000;

    /// <summary>AT_EMPTY_PATH: with an empty path, statx describes the dirfd itself (fstat).</summary>
    private const int AT_EMPTY_PATH = 0x1000;

    /// <summary>
    /// struct statx (linux/stat.h): unlike struct stat its layout is the same on every architecture,
    /// which is why it is used here. Only the leading fields are named; the rest is padding to its 256 bytes.
    /// </summary>
    [StructLayout(LayoutKind.Sequential, Size = 256)]
    internal struct StatxBuffer
    {
        public uint Mask;
        public uint BlockSize;
        public ulong Attributes;
        public uint NLink;
        public uint Uid;
        public uint Gid;
        public ushort Mode;
        private ushort _spare0;
        public ulong Inode;
        public ulong Size;
        public ulong Blocks;
        public ulong AttributesMask;
        private StatxTimestamp _atime;
        private StatxTimestamp _btime;
        private StatxTimestamp _ctime;
        private StatxTimestamp _mtime;
        public uint RDevMajor;
        public uint RDevMinor;
        public uint DevMajor;
        public uint DevMinor;
    }

    /// <summary>struct statx_timestamp: only here to place the fields after it.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct StatxTimestamp
    {
        public long Seconds;
        public uint Nanoseconds;
        private int _reserved;
    }

    /// <summary>Which file an open fd refers to: the device and inode (sockets and pipes each have their own inode).</summary>
    internal readonly record struct FdIdentity(ulong Device, ulong Inode);

    /// <summary>
    /// The identity of the file <paramref name="fd"/> refers to, as fstat(2)'s st_dev and st_ino; false
    /// with <paramref name="errno"/> set (EBADF: the fd is not open). The poll selector uses it to see that
    /// a registered fd number now names another file.
    /// </summary>
    internal static bool TryGetFdIdentity(int fd, out FdIdentity identity, out int errno)
    {
        if (Statx(fd, string.Empty, AT_EMPTY_PATH, STATX_INO, out var buffer) != 0)
        {
            errno = GetLastErrno();
            identity = default;
            return false;
        }

        errno = 0;
        identity = new FdIdentity(((ulong)buffer.DevMajor << 32) | buffer.DevMinor, buffer.Inode);
        return true;
    }

    /// <summary>statx(2) (glibc 2.28+): 0, or -1 with errno set.</summary>
    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Statx(int dirFd, string path, int flags, uint mask, out StatxBuffer buffer);

    /// <summary>The file-type bits (<see cref="S_IFMT"/>) and inode of <paramref name="path"/>, not following a symlink; false if it does not exist.</summary>
    internal static bool TryGetFileType(string path, out int fileType, out ulong inode)
    {
        if (Statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_INO, out var buffer) != 0)
        {
            fileType = 0;
            inode = 0;
            return false;
        }

        fileType = buffer.Mode & S_IFMT;
        inode = buffer.Inode;
        return true;
    }

    /// <summary>The file-type bits (<see cref="S_IFMT"/>) of the open <paramref name="fd"/>, as fstat(2);
    /// false with <paramref name="errno"/> set (EBADF: the fd is not open).</summary>
    internal static bool TryGetFdFileType(int fd, out int fileType, out int errno)
    {
        if (Statx(fd, string.Empty, AT_EMPTY_PATH, STATX_TYPE, out var buffer) != 0)
        {
            errno = GetLastErrno();
            fileType = 0;
            return false;
        }

        errno = 0;
        fileType = buffer.Mode & S_IFMT;
        return true;
    }
}
