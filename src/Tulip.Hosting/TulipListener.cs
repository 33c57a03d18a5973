using System.Collections.Generic;
using System.Net;

namespace Tulip.Hosting;

/// <summary>A server started for an endpoint (a systemd endpoint has one per socket passed).</summary>
public sealed partial class TulipListener
{
    internal TulipListener(TulipEndpoint endpoint, Server server, IReadOnlyList<EndPoint> localEndPoints)
    {
        Endpoint = endpoint;
        Server = server;
        Servers = [server];
        LocalEndPoints = localEndPoints;
    }

    /// <summary>The endpoint it serves.</summary>
    public TulipEndpoint Endpoint { get; }

    /// <summary>The loop's server (with several loops, the first loop's: see <see cref="Servers"/>): its members are for the loop thread (<see cref="Server.Loop"/>).</summary>
    public Server Server { get; }

    /// <summary>The addresses it listens on, as bound when it started (the port the system chose for port 0); any thread may read them.</summary>
    public IReadOnlyList<EndPoint> LocalEndPoints { get; }
}
