using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>The default disposition for <see cref="Signal"/>: SIG_DFL.</summary>
    internal const nint SIG_DFL = 0;

    /// <summary>signal(2): sets the disposition of <paramref name="signum"/>; returns the previous one, or SIG_ERR (-1).</summary>
    [LibraryImport(Libc, EntryPoint = "signal", SetLastError = true)]
    internal static partial nint Signal(int signum, nint handler);
}
