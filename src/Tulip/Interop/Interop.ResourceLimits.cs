using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>RLIMIT_NOFILE: one more than the highest fd number the process may open.</summary>
    internal const int RLIMIT_NOFILE = 7;

    /// <summary>RLIM_INFINITY: no limit.</summary>
    internal const ulong RLIM_INFINITY = ulong.MaxValue;

    /// <summary>struct rlimit (two rlim_t, 64-bit on every 64-bit Linux).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct RLimit
    {
        /// <summary>rlim_cur: the soft limit, which the kernel enforces.</summary>
        public ulong Current;

        /// <summary>rlim_max: the ceiling an unprivileged process may raise the soft limit to.</summary>
        public ulong Maximum;
    }

    [LibraryImport(Libc, EntryPoint = "getrlimit", SetLastError = true)]
    internal static partial int GetRLimit(int resource, out RLimit limit);

    [LibraryImport(Libc, EntryPoint = "setrlimit", SetLastError = true)]
    internal static partial int SetRLimit(int resource, in RLimit limit);
}
