using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    internal const int SIGINT = 2;
    internal const int SIGKILL = 9;
    internal const int SIGUSR1 = 10;
    internal const int SIGTERM = 15;
    internal const int SIGCHLD = 17;

    /// <summary>kill(2). Signal 0 checks that <paramref name="pid"/> exists (ESRCH if not).</summary>
    [LibraryImport(Libc, EntryPoint = "kill", SetLastError = true)]
    internal static partial int Kill(int pid, int signal);

    /// <summary>getpid(2); cannot fail.</summary>
    [LibraryImport(Libc, EntryPoint = "getpid", SetLastError = true)]
    internal static partial int GetPid();
}
