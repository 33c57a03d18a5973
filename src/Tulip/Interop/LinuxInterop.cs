using System;
using System.Runtime.Versioning;

namespace Tulip;

/// <summary>
/// Whether code outside the selector loop may use Tulip's Linux interop (<see cref="Interop"/>): true
/// on Linux, unless the AppContext switch <see cref="ForbidSwitch"/> is on. Shared code (the base
/// loop, the transports' plumbing, the kinds of loop) guards every Linux-only path with this rather
/// than <see cref="OperatingSystem.IsLinux"/>, so that one switch makes a Linux process take the paths
/// Windows and macOS take: the loop kinds offered are the proactor alone (the default), and UNIX
/// socket files, pipes and Ctrl-C go the portable way. The portability test runs the proactor so, in a
/// child process where any call into the interop layer fails (tests/Tulip.Tests/Proactor/PortabilityTests.cs).
/// </summary>
/// <remarks>
/// Read once, when first used: set the switch (<c>AppContext.SetSwitch</c>, or
/// <c>&lt;RuntimeHostConfigurationOption&gt;</c> in a project) before the first loop is made.
/// The platform analyzer (CA1416) takes this as a Linux guard.
/// </remarks>
internal static class LinuxInterop
{
    /// <summary>The AppContext switch that forbids the Linux interop outside the selector loop.</summary>
    internal const string ForbidSwitch = "Tulip.ForbidLinuxInterop";

    /// <summary>Whether shared code may call <see cref="Interop"/>: Linux, and not forbidden.</summary>
    [SupportedOSPlatformGuard("linux")]
    internal static bool IsAvailable { get; } =
        OperatingSystem.IsLinux() && !(AppContext.TryGetSwitch(ForbidSwitch, out bool forbidden) && forbidden);
}
