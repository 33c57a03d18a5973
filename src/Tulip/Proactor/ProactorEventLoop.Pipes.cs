namespace Tulip;

// Pipes on the completion loop: the loop registers its own IPipeTransportFactory in its transport
// registry when it is made (ProactorPipeTransportFactory), and counts what it is watching for
// someone, for the tests' leak checks.
public sealed partial class ProactorEventLoop
{
    // Operations started and not yet completed on the loop (ProactorOperation.Pending), plus write
    // pipes looking out for their reader. Loop thread only.
    private int _watches;

    /// <summary>
    /// How much I/O the loop is watching for someone: operations in flight (their completion not yet
    /// run on the loop) and write pipes watching for their reader. Loop thread; for tests and diagnostics.
    /// </summary>
    internal int Watches => _watches;

    /// <summary>Counts a watch begun (+1) or ended (-1). Loop thread only.</summary>
    internal void AddWatch(int delta) => _watches += delta;
}
