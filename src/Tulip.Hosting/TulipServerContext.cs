using System;
using System.Threading;

namespace Tulip.Hosting;

/// <summary>
/// What a handler of a <see cref="TulipEndpoint"/> gets beside its connection: the host's services, the loop,
/// and the token that says the host is stopping. One per endpoint; its members may be read on any thread.
/// </summary>
public sealed class TulipServerContext
{
    internal TulipServerContext(IServiceProvider services, IEventLoop loop, TulipEndpoint endpoint, CancellationToken stopping)
    {
        Services = services;
        Loop = loop;
        Endpoint = endpoint;
        Stopping = stopping;
    }

    /// <summary>The host's services.</summary>
    public IServiceProvider Services { get; }

    /// <summary>The loop the endpoint's connections run on.</summary>
    public IEventLoop Loop { get; }

    /// <summary>The endpoint served.</summary>
    public TulipEndpoint Endpoint { get; }

    /// <summary>
    /// Cancelled, on the loop thread, when the host begins to stop and the servers have stopped accepting: the
    /// drain period starts. A handler should finish the request in hand and end its connection; those still
    /// open when the drain period ends are closed, then aborted. Its callbacks run on the loop thread.
    /// </summary>
    public CancellationToken Stopping { get; }
}
