using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    // posix_spawn(3) and its file actions and attributes (glibc). glibc's posix_spawn_file_actions_t
    // (80 bytes on x86_64) and posix_spawnattr_t (336) are opaque: callers allocate SpawnObjectSize
    // bytes, a generous bound, and always destroy what they initialised. Every call returns the errno
    // itself (0 on success) rather than setting errno.

    /// <summary>Bytes allocated for a posix_spawn_file_actions_t or a posix_spawnattr_t: well above glibc's sizes (80 and 336 on x86_64).</summary>
    internal const int SpawnObjectSize = 1024;

    /// <summary>Bytes of a sigset_t (glibc: 1024 bits).</summary>
    internal const int SigSetSize = 128;

    internal const short POSIX_SPAWN_SETPGROUP = 0x02;
    internal const short POSIX_SPAWN_SETSIGDEF = 0x04;
    internal const short POSIX_SPAWN_SETSIGMASK = 0x08;
    internal const short POSIX_SPAWN_SETSID = 0x80;

    internal const int SIGPIPE = 13;
    internal const int SIGXFSZ = 25;

    /// <summary>posix_spawn(3): starts <paramref name="path"/> (no PATH search). glibc reports the child's exec failure as the result.</summary>
    [LibraryImport(Libc, EntryPoint = "posix_spawn")]
    internal static unsafe partial int PosixSpawn(int* pid, byte* path, void* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport(Libc, EntryPoint = "posix_spawn_file_actions_init")]
    internal static unsafe partial int SpawnFileActionsInit(void* actions);

    [LibraryImport(Libc, EntryPoint = "posix_spawn_file_actions_destroy")]
    internal static unsafe partial int SpawnFileActionsDestroy(void* actions);

    /// <summary>dup2(fd, newfd) in the child; with fd == newfd glibc (2.29+, bug 23640) clears FD_CLOEXEC instead, as POSIX.1-2024 asks.</summary>
    [LibraryImport(Libc, EntryPoint = "posix_spawn_file_actions_adddup2")]
    internal static unsafe partial int SpawnFileActionsAddDup2(void* actions, int fd, int newfd);

    [LibraryImport(Libc, EntryPoint = "posix_spawn_file_actions_addopen")]
    internal static unsafe partial int SpawnFileActionsAddOpen(void* actions, int fd, byte* path, int flags, int mode);

    /// <summary>close(fd) in the child; glibc ignores an fd that is not open but in range.</summary>
    [LibraryImport(Libc, EntryPoint = "posix_spawn_file_actions_addclose")]
    internal static unsafe partial int SpawnFileActionsAddClose(void* actions, int fd);

    /// <summary>chdir(path) in the child (glibc 2.29).</summary>
    [LibraryImport(Libc, EntryPoint = "posix_spawn_file_actions_addchdir_np")]
    internal static unsafe partial int SpawnFileActionsAddChdir(void* actions, byte* path);

    /// <summary>Closes every fd from <paramref name="from"/> up in the child (glibc 2.34, close_range).</summary>
    [LibraryImport(Libc, EntryPoint = "posix_spawn_file_actions_addclosefrom_np")]
    internal static unsafe partial int SpawnFileActionsAddCloseFrom(void* actions, int from);

    [LibraryImport(Libc, EntryPoint = "posix_spawnattr_init")]
    internal static unsafe partial int SpawnAttrInit(void* attributes);

    [LibraryImport(Libc, EntryPoint = "posix_spawnattr_destroy")]
    internal static unsafe partial int SpawnAttrDestroy(void* attributes);

    [LibraryImport(Libc, EntryPoint = "posix_spawnattr_setflags")]
    internal static unsafe partial int SpawnAttrSetFlags(void* attributes, short flags);

    [LibraryImport(Libc, EntryPoint = "posix_spawnattr_setsigmask")]
    internal static unsafe partial int SpawnAttrSetSigMask(void* attributes, void* sigset);

    [LibraryImport(Libc, EntryPoint = "posix_spawnattr_setsigdefault")]
    internal static unsafe partial int SpawnAttrSetSigDefault(void* attributes, void* sigset);

    [LibraryImport(Libc, EntryPoint = "posix_spawnattr_setpgroup")]
    internal static unsafe partial int SpawnAttrSetPGroup(void* attributes, int pgroup);

    [LibraryImport(Libc, EntryPoint = "sigemptyset", SetLastError = true)]
    internal static unsafe partial int SigEmptySet(void* sigset);

    [LibraryImport(Libc, EntryPoint = "sigaddset", SetLastError = true)]
    internal static unsafe partial int SigAddSet(void* sigset, int signal);

    internal const int X_OK = 1;

    /// <summary>access(2), for the PATH search: whether the caller may execute <paramref name="path"/>.</summary>
    [LibraryImport(Libc, EntryPoint = "access", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Access(string path, int mode);
}
