using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    internal const int F_GETFD = 1;
    internal const int F_SETFD = 2;
    internal const int F_GETFL = 3;
    internal const int F_SETFL = 4;
    internal const int FD_CLOEXEC = 1;

    /// <summary>The access-mode bits of F_GETFL's result, and their values.</summary>
    internal const int O_ACCMODE = 3;
    internal const int O_RDONLY = 0;
    internal const int O_WRONLY = 1;
    internal const int O_RDWR = 2;

    // fcntl is variadic in C. Declaring fixed-arity entry points is sound where variadic integer
    // arguments are passed like fixed ones: the x86_64 SysV and aarch64 Linux (AAPCS64) ABIs.
    // It is not sound on Apple arm64, where variadic arguments go on the stack.

    /// <summary>fcntl(fd, cmd) for the getters (F_GETFD, F_GETFL).</summary>
    [LibraryImport(Libc, EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int Fcntl(int fd, int cmd);

    /// <summary>fcntl(fd, cmd, arg) for the integer setters (F_SETFD, F_SETFL).</summary>
    [LibraryImport(Libc, EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int Fcntl(int fd, int cmd, int arg);

    /// <summary>Sets or clears O_NONBLOCK on <paramref name="fd"/>.</summary>
    /// <exception cref="System.IO.IOException">fcntl failed.</exception>
    internal static void SetNonBlocking(int fd, bool nonBlocking)
    {
        int flags = Fcntl(fd, F_GETFL);
        if (flags < 0)
        {
            ThrowForLastErrno("fcntl(F_GETFL)");
        }

        int wanted = nonBlocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
        if (wanted != flags && Fcntl(fd, F_SETFL, wanted) < 0)
        {
            ThrowForLastErrno("fcntl(F_SETFL, O_NONBLOCK)");
        }
    }

    /// <summary>Sets FD_CLOEXEC on <paramref name="fd"/> so child processes do not inherit it.</summary>
    /// <exception cref="System.IO.IOException">fcntl failed.</exception>
    internal static void SetCloseOnExec(int fd)
    {
        int flags = Fcntl(fd, F_GETFD);
        if (flags < 0)
        {
            ThrowForLastErrno("fcntl(F_GETFD)");
        }

        if ((flags & FD_CLOEXEC) == 0 && Fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
        {
            ThrowForLastErrno("fcntl(F_SETFD, FD_CLOEXEC)");
        }
    }
}
