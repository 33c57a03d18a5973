using System.Runtime.InteropServices;

namespace Tulip;

internal static partial class Interop
{
    /// <summary>dup(2): a new fd (the lowest free number) for the same open file description; -1 with errno set.</summary>
    [LibraryImport(Libc, EntryPoint = "dup", SetLastError = true)]
    internal static partial int Dup(int oldFd);

    /// <summary>dup2(2): makes <paramref name="newFd"/> name the file description of <paramref name="oldFd"/>,
    /// closing what it named before; -1 with errno set. The fd-reuse tests use it to force a number to be reused.</summary>
    [LibraryImport(Libc, EntryPoint = "dup2", SetLastError = true)]
    internal static partial int Dup2(int oldFd, int newFd);
}
