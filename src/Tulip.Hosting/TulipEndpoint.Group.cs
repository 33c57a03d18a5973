using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip.Hosting;

public sealed partial class TulipEndpoint
{
    /// <summary>
    /// Starts this endpoint on every loop of <paramref name="group"/> (<see cref="TulipOptions.LoopCount"/> above 1):
    /// a TCP address as <paramref name="distribution"/> says; a UNIX path, a socket of the application's and the
    /// systemd sockets round robin, from one acceptor (a socket made already cannot be bound again per loop, and
    /// <c>SO_REUSEPORT</c> does not apply to UNIX sockets).
    /// </summary>
    /// <param name="group">The loops.</param>
    /// <param name="factory">Makes a connection's protocol; called on the loop that serves it.</param>
    /// <param name="distribution">How TCP connections are spread.</param>
    /// <param name="environment">Where a systemd endpoint reads LISTEN_FDS.</param>
    /// <param name="cancellationToken">The host's start token.</param>
    internal async Task<IReadOnlyList<GroupServer>> StartOnGroupAsync(EventLoopGroup group, Func<IBaseProtocol> factory, GroupDistribution distribution,
        Func<string, string?> environment, CancellationToken cancellationToken)
    {
        var options = ServerOptions ?? new ServerOptions();
        if (options.Socket is not null)
        {
            throw new InvalidOperationException($"The Tulip endpoint {this} has ServerOptions.Socket set; use TulipOptions.ListenSocket(socket) for a socket of your own.");
        }

        switch (Kind)
        {
            case TulipEndpointKind.Tcp:
                return [await group.StartServerAsync(factory, Address, Port, distribution, options, cancellationToken).ConfigureAwait(false)];
            case TulipEndpointKind.Unix:
                return [await group.StartUnixServerAsync(factory, Address!, options, cancellationToken).ConfigureAwait(false)];
            case TulipEndpointKind.Socket:
                return [await group.StartServerAsync(factory, Socket!, options, cancellationToken).ConfigureAwait(false)];
            default:
                var sockets = SystemdSocketActivation.TakeListenSockets(environment, Address, this);
                var servers = new List<GroupServer>();
                int started = 0;
                try
                {
                    // Systemd's backlog is kept unless the application asked for one (as on one loop).
                    var systemdOptions = ServerOptions is null ? options with { Backlog = int.MaxValue } : options;
                    for (; started < sockets.Count; started++)
                    {
                        servers.Add(await group.StartServerAsync(factory, sockets[started], systemdOptions, cancellationToken).ConfigureAwait(false));
                    }
                }
                catch
                {
                    // The servers started are closed by the caller (with the group); the sockets not yet given are closed here.
                    for (int i = started + 1; i < sockets.Count; i++)
                    {
                        sockets[i].Dispose();
                    }

                    if (started < sockets.Count)
                    {
                        sockets[started].Dispose(); // refused at once it is still ours; given, closing it again is harmless
                    }

                    throw;
                }

                return servers;
        }
    }
}
