using System.Globalization;
using System.Threading;

namespace Tulip;

public sealed partial class ProactorEventLoop
{
    /// <inheritdoc/>
    internal override string MetricKind => "proactor";

    /// <summary>
    /// One line of the loop's completion hand-off: completions queued and not drained, whether the
    /// wake-up is set or taken, the operations outstanding and the ready callbacks. For a hang guard to
    /// tell a lost wake-up (completions queued while the loop waits) from a lost operation; loop thread.
    /// </summary>
    internal string DescribeState() => string.Create(CultureInfo.InvariantCulture,
        $"completionsQueued={_completions.Count} wakeupSet={_wakeup.IsSet} wakeupTaken={Volatile.Read(ref _wakeupSignalled)} " +
        $"outstanding={_outstanding} ready={ReadyCount}");
}
