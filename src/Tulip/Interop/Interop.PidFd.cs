using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    // Child watching by pidfd (Linux 5.3 for pidfd_open and waitid(P_PIDFD), 5.1 for
    // pidfd_send_signal; glibc 2.36 wraps all three). A pidfd names one process for good: a signal
    // sent through it never reaches a later process that reused the pid, and waitid(P_PIDFD) reaps
    // only that child, so it neither steals System.Diagnostics.Process's children nor theirs ours.

    internal const int P_PID = 1;
    internal const int P_PIDFD = 3;
    internal const int WNOHANG = 1;
    internal const int WEXITED = 4;
    internal const int WNOWAIT = 0x01000000;

    /// <summary>siginfo_t's si_code for waitid: the child exited, was killed, or dumped core.</summary>
    internal const int CLD_EXITED = 1;
    internal const int CLD_KILLED = 2;
    internal const int CLD_DUMPED = 3;

    /// <summary>pidfd_open(2): a pollable fd, readable once the process has exited; always close-on-exec.</summary>
    [LibraryImport(Libc, EntryPoint = "pidfd_open", SetLastError = true)]
    internal static partial int PidFdOpen(int pid, uint flags);

    /// <summary>pidfd_send_signal(2) with no siginfo.</summary>
    [LibraryImport(Libc, EntryPoint = "pidfd_send_signal", SetLastError = true)]
    internal static unsafe partial int PidFdSendSignal(int pidfd, int signal, void* info, uint flags);

    /// <summary>waitid(2); <paramref name="info"/> is a 128-byte siginfo_t.</summary>
    [LibraryImport(Libc, EntryPoint = "waitid", SetLastError = true)]
    internal static unsafe partial int WaitId(int idType, int id, SigInfo* info, int options);

    /// <summary>The prefix of siginfo_t that waitid fills (x86_64 and aarch64 share it), padded to its 128 bytes.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 128)]
    internal struct SigInfo
    {
        [FieldOffset(0)] public int Signo;
        [FieldOffset(8)] public int Code;
        [FieldOffset(16)] public int Pid;
        [FieldOffset(24)] public int Status;
    }
}
