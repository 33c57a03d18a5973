namespace Tulip;

/// <summary>
/// Every native call Tulip makes, one file per call group, all source-generated with
/// <c>[LibraryImport]</c> (trimming- and AOT-safe; no runtime marshalling stubs).
/// </summary>
/// <remarks>
/// Constants are the Linux values (identical on x86_64 and aarch64). Failures go through the one
/// errno -> exception helper in <c>Interop.Errors.cs</c>.
/// </remarks>
internal static partial class Interop
{
    /// <summary>The C library. The runtime probes "libc.so" then "libc"; on glibc the former is a
    /// linker script that dlopen rejects, and the runtime then resolves the bare name to the loaded libc.</summary>
    internal const string Libc = "libc";
}
