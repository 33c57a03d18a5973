namespace Tulip;

/// <summary>
/// Every native call Tulip makes, one file per call group, all source-generated with
/// <c>[LibraryImport]</c> (trimming- and AOT-safe; no runtime marshalling stubs).
/// </summary>
/// <remarks>
/// Constants are the Linux values (identical on x86_64 and aarch64). Failures go through the one
/// errno -> exception helper in <c>Interop.Errors.cs</c>.
/// </remarks>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static partial class Interop
{
    /// <summary>The C library. The runtime's loader special-cases the name "libc" (dotnet/runtime
    /// src/coreclr/pal/src/loader/module.cpp): on glibc it loads LIBC_SO ("libc.so.6"), because
    /// "libc.so" there is a linker script that dlopen rejects.</summary>
    internal const string Libc = "libc";
}
