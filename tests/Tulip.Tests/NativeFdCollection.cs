namespace Tulip.Tests;

/// <summary>
/// Tests that open native fds, count /proc/self/fd, depend on the kernel handing out the lowest free fd
/// number, or change RLIMIT_NOFILE: run alone, so no other test's fds disturb them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NativeFdCollection
{
    public const string Name = "Native fds";
}
