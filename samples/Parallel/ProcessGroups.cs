using System.Runtime.InteropServices;

namespace Tulip.Samples.Parallel;

/// <summary>
/// Signals to a whole process group, which Tulip's transports do not send (their <c>SendSignal</c> reaches the child
/// alone): kill(2) with a negative pid. Each job leads its own group (<see cref="SubprocessOptions.ProcessGroup"/> = 0),
/// so the group id is the job's pid and reaches every process the job's shell forked.
/// </summary>
internal static partial class ProcessGroups
{
    public const int SigTerm = 15;
    public const int SigKill = 9;

    /// <summary>Sends <paramref name="signal"/> to every process of group <paramref name="pgid"/>; false when none is left (ESRCH).</summary>
    public static bool Signal(int pgid, int signal) => pgid > 1 && Kill(-pgid, signal) == 0;

    /// <summary>Whether any process of group <paramref name="pgid"/> is still alive (a zombie counts until it is reaped).</summary>
    public static bool Alive(int pgid) => Signal(pgid, 0);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
