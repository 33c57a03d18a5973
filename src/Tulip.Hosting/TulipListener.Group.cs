using System.Collections.Generic;
using System.Net;

namespace Tulip.Hosting;

public sealed partial class TulipListener
{
    internal TulipListener(TulipEndpoint endpoint, GroupServer group)
        : this(endpoint, group.Servers[0], group.LocalEndPoints)
    {
        Servers = group.Servers;
        Distribution = group.Distribution;
    }

    /// <summary>
    /// Every loop's server for this endpoint, in the order of <see cref="TulipLoopService.Loops"/> (one with a single
    /// loop). Use each on its own loop only (<see cref="Server.Loop"/>).
    /// </summary>
    public IReadOnlyList<Server> Servers { get; } = [];

    /// <summary>How the connections are spread over the loops; null with a single loop.</summary>
    public GroupDistribution? Distribution { get; }
}
