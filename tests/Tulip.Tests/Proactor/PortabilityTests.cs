using System.Reflection;
using System.Runtime.Versioning;
using Tulip.Tests.Loop;

namespace Tulip.Tests.Proactor;

/// <summary>
/// "Portable" shown, not promised (issue 12), in two halves. At build time,
/// tests/Tulip.PortabilityCheck compiles src/Tulip for Linux, macOS and Windows with the platform
/// analyzer (CA1416) as an error, so the proactor and the shared code it runs on cannot call Linux-only
/// code unguarded (building the tests fails first); these tests hold the premises that build
/// relies on. At run time, the test program's "portable" mode runs the proactor on Linux with every
/// Linux-specific path of Tulip forbidden (the switch <c>Tulip.ForbidLinuxInterop</c>, and the
/// Tulip assembly's native library refused), through the loop's own calls, streams over TCP and UNIX
/// sockets, a UDP endpoint, the Sock* calls and sendfile, TLS, and a subprocess (the portable implementation on
/// System.Diagnostics.Process, the fallback without Linux interop, its pipes the proactor's).
/// </summary>
[Collection(NativeFdCollection.Name)] // a child process, whose pipes the fd-counting tests would see
public sealed class PortabilityTests
{
    [Fact]
    public void The_proactor_serves_tcp_unix_udp_sock_calls_sendfile_tls_and_subprocesses_with_every_Linux_specific_path_of_Tulip_forbidden()
    {
        using var child = ChildProgram.Start("portable", new Dictionary<string, string?> { ["TULIP_LOOP"] = null });
        int status = child.WaitForExit();
        Assert.True(status == 0, $"exit {status}; stdout: [{string.Join(" | ", child.Lines)}]; stderr: {child.StandardError}");
        Assert.Equal(
            [
                "kinds: proactor", // off Linux interop, the selector loop is not offered: the proactor is the default
                "poll: The 'poll' loop kind is not available on this platform; available: proactor.",
                "loop: proactor",
                "threads: 3, resolved: True",
                "signal handler: True",
                "tcp: echoed",
                "unix: echoed",
                "unix file left: False",
                "udp: echoed",
                "sock calls: sent",
                "tls: echoed",
                "subprocess: ProcessSubprocessTransport echoed", // the fallback on System.Diagnostics.Process, on the proactor's pipes
                "killed: 137",
                "refused: 0",
            ],
            child.Lines);
        Assert.DoesNotContain("refused:", child.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public void The_interop_layer_and_the_selector_loop_say_they_are_Linux_only_and_the_proactor_does_not()
    {
        // The build check sees Linux-only code by these attributes: without them it would pass anything.
        Assert.Equal("linux", LinuxOnly(typeof(Interop)));
        Assert.Equal("linux", LinuxOnly(typeof(SelectorEventLoop)));
        var proactorTypes = typeof(ProactorEventLoop).Assembly.GetTypes()
            .Where(t => t.Name.StartsWith("Proactor", StringComparison.Ordinal))
            .ToList();
        Assert.Contains(typeof(ProactorEventLoop), proactorTypes);
        Assert.All(proactorTypes, t => Assert.Null(LinuxOnly(t)));
    }

    [Fact]
    public void The_portability_check_is_built_with_the_tests_and_fails_on_CA1416()
    {
        string root = RepositoryRoot();
        Assert.Contains("tests/Tulip.PortabilityCheck/Tulip.PortabilityCheck.csproj", File.ReadAllText(Path.Combine(root, "Tulip.slnx")), StringComparison.Ordinal);
        // dotnet test builds test projects and what they reference, not the rest of the solution.
        Assert.Contains("<ProjectReference Include=\"../Tulip.PortabilityCheck/Tulip.PortabilityCheck.csproj\" ReferenceOutputAssembly=\"false\" />",
            File.ReadAllText(Path.Combine(root, "tests", "Tulip.Tests", "Tulip.Tests.csproj")), StringComparison.Ordinal);
        string dir = Path.Combine(root, "tests", "Tulip.PortabilityCheck");
        string project = File.ReadAllText(Path.Combine(dir, "Tulip.PortabilityCheck.csproj"));
        Assert.Contains("<ImportDirectoryBuildProps>false</ImportDirectoryBuildProps>", project, StringComparison.Ordinal);
        Assert.Contains("<SupportedPlatform Include=\"Linux;macOS;Windows\" />", project, StringComparison.Ordinal);
        Assert.Contains("dotnet_diagnostic.CA1416.severity = error", File.ReadAllText(Path.Combine(dir, "portability.globalconfig")), StringComparison.Ordinal);
    }

    [Fact]
    public void LinuxInterop_is_available_on_Linux_when_not_forbidden()
    {
        Assert.Equal(OperatingSystem.IsLinux(), LinuxInterop.IsAvailable);
        Assert.Equal("Tulip.ForbidLinuxInterop", LinuxInterop.ForbidSwitch);
    }

    private static string? LinuxOnly(Type type) =>
        type.GetCustomAttributes<SupportedOSPlatformAttribute>(inherit: false).SingleOrDefault()?.PlatformName;

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Tulip.slnx")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        return dir.FullName;
    }
}
