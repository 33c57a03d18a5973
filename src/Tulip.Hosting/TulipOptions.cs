using System;
using System.Collections.Generic;
using System.Threading;

namespace Tulip.Hosting;

/// <summary>
/// What <c>services.AddTulip(...)</c> runs: the kind of event loop, the endpoints it serves, and how long a
/// graceful shutdown lets connections finish.
/// </summary>
/// <remarks>
/// <para>
/// When the host stops (SIGTERM, Ctrl-C, <c>IHostApplicationLifetime.StopApplication</c>), every server stops
/// accepting and <see cref="TulipServerContext.Stopping"/> is cancelled; the connections then have
/// <see cref="DrainTimeout"/> to end by themselves, then each is closed (what it buffered is still sent) and has
/// <see cref="CloseTimeout"/> to finish sending, then whatever is left is aborted. The loop's tasks are then
/// cancelled and awaited. The host's shutdown timeout (<c>HostOptions.ShutdownTimeout</c>, the token
/// <c>StopAsync</c> is given) cuts this short: when it expires the connections still open are closed and at once
/// aborted (one with nothing left to send ends with a FIN, one with unsent data with a reset), and cancelled tasks
/// that have not ended a few loop iterations later are left behind (logged) so that the host can stop.
/// </para>
/// <para>
/// Every connection the server accepted before it stopped accepting is served through these phases. One
/// still in the kernel's listen backlog when the listening socket closes is reset by the kernel, as with
/// Kestrel or asyncio; a systemd socket (<see cref="ListenSystemd"/>) is not closed there, since systemd keeps
/// its own copy, so such connections wait for the next instance of the service.
/// </para>
/// </remarks>
public sealed class TulipOptions
{
    private readonly List<TulipEndpoint> _endpoints = new();

    /// <summary>
    /// The kind of event loop, as <see cref="EventLoopKinds"/> names it (<c>epoll</c>, <c>poll</c>,
    /// <c>proactor</c>, ...). Defaults to null: the kind the environment variable <c>TULIP_LOOP</c> names, or
    /// the best available (<see cref="EventLoopKinds.DefaultName"/>).
    /// </summary>
    public string? LoopKind { get; set; }

    /// <summary>
    /// How many event loops to run, each on a thread of its own (an <see cref="EventLoopGroup"/>); every endpoint is
    /// served on all of them, and a shutdown runs its phases on each at once. Defaults to 1 (one loop, one thread);
    /// <see cref="Environment.ProcessorCount"/> uses every core.
    /// </summary>
    /// <remarks>
    /// With more than one, a loop that fails ends alone (logged; the others serve on), where a single loop's failure
    /// stops the host. TCP addresses are spread as <see cref="Distribution"/> says; a UNIX path, a socket of the
    /// application's (<see cref="ListenSocket"/>) and the systemd sockets (<see cref="ListenSystemd"/>) always round
    /// robin from one acceptor: a socket made already cannot be bound again per loop, and <c>SO_REUSEPORT</c> does not
    /// apply to UNIX sockets. Each handler's <see cref="TulipServerContext"/> is its loop's.
    /// </remarks>
    public int LoopCount { get; set; } = 1;

    /// <summary>
    /// How TCP connections are spread over the loops when <see cref="LoopCount"/> is above 1: a listener per loop
    /// (<see cref="GroupDistribution.ReusePort"/>, the default) or one acceptor handing them out in turn
    /// (<see cref="GroupDistribution.RoundRobin"/>).
    /// </summary>
    public GroupDistribution Distribution { get; set; } = GroupDistribution.ReusePort;

    /// <summary>Turns on the loop's debug mode (<see cref="IEventLoop.Debug"/>). Defaults to false.</summary>
    public bool Debug { get; set; }

    /// <summary>
    /// How long open connections may take to end by themselves once the host stops, before they are closed.
    /// <see cref="Timeout.InfiniteTimeSpan"/>: until the host's shutdown timeout.
    /// </summary>
    /// <remarks>Defaults to 10 seconds (with <see cref="CloseTimeout"/>, within the host's default of 30).</remarks>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long closed connections may take to send what they buffered, before they are aborted.
    /// <see cref="Timeout.InfiniteTimeSpan"/>: until the host's shutdown timeout.
    /// </summary>
    /// <remarks>Defaults to 5 seconds.</remarks>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Where <see cref="ListenSystemd"/> reads <c>LISTEN_PID</c>, <c>LISTEN_FDS</c> and <c>LISTEN_FDNAMES</c>.
    /// Defaults to <see cref="Environment.GetEnvironmentVariable(string)"/>; tests give their own.
    /// </summary>
    public Func<string, string?> EnvironmentReader { get; set; } = Environment.GetEnvironmentVariable;

    /// <summary>The endpoints added so far, in the order they start.</summary>
    public IReadOnlyList<TulipEndpoint> Endpoints => _endpoints;

    /// <summary>
    /// Serves TCP on <paramref name="host"/>:<paramref name="port"/> (host null: every interface, IPv4 and
    /// IPv6; port 0: one the system picks, see <see cref="TulipListener.LocalEndPoints"/>). Give its handler
    /// with <see cref="TulipEndpoint.UseProtocol(Func{IBaseProtocol})"/> or <c>UseStreams</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="port"/> is not 0 to 65535.</exception>
    public TulipEndpoint ListenTcp(string? host, int port)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        return Add(new TulipEndpoint(TulipEndpointKind.Tcp, host, port, null));
    }

    /// <summary>Serves the UNIX stream socket <paramref name="path"/> (a stale socket file is replaced; removed when the server closes).</summary>
    /// <exception cref="ArgumentException"><paramref name="path"/> is null or empty.</exception>
    public TulipEndpoint ListenUnix(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return Add(new TulipEndpoint(TulipEndpointKind.Unix, path, 0, null));
    }

    /// <summary>
    /// Serves the listening sockets systemd passed (socket activation: <c>LISTEN_FDS</c> fds from 3, for this
    /// process's <c>LISTEN_PID</c>), or only those whose <c>FileDescriptorName=</c> is <paramref name="name"/>.
    /// </summary>
    /// <remarks>
    /// <para>
    /// The sockets must be listening stream sockets (a <c>.socket</c> unit with <c>Accept=no</c>, the default);
    /// anything else fails the host's start with a message naming the fd. No socket passed (not started by
    /// systemd, or <c>LISTEN_PID</c> names another process) fails the start too. The server closes this
    /// process's copy of the socket when it stops; systemd keeps its own, so connections that arrive while the
    /// service restarts wait in the backlog for the next instance.
    /// </para>
    /// <para>
    /// For <c>Type=notify</c> and journal logging, add <c>Microsoft.Extensions.Hosting.Systemd</c>'s
    /// <c>UseSystemd()</c> beside this; it does not pass sockets.
    /// </para>
    /// </remarks>
    /// <param name="name">A <c>LISTEN_FDNAMES</c> name to serve only those sockets; null: every socket passed.</param>
    public TulipEndpoint ListenSystemd(string? name = null) =>
        Add(new TulipEndpoint(TulipEndpointKind.Systemd, name, 0, null));

    /// <summary>Serves a listening (or bound) stream socket the application made; the server takes it and closes it when it stops.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    public TulipEndpoint ListenSocket(System.Net.Sockets.Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        return Add(new TulipEndpoint(TulipEndpointKind.Socket, null, 0, socket));
    }

    private TulipEndpoint Add(TulipEndpoint endpoint)
    {
        _endpoints.Add(endpoint);
        return endpoint;
    }

    /// <summary>Checks the options before the host starts; the message says what to change.</summary>
    internal void Validate()
    {
        CheckTimeout(DrainTimeout, nameof(DrainTimeout));
        CheckTimeout(CloseTimeout, nameof(CloseTimeout));
        ArgumentNullException.ThrowIfNull(EnvironmentReader, nameof(EnvironmentReader));
        if (LoopCount < 1)
        {
            throw new InvalidOperationException($"TulipOptions.LoopCount is {LoopCount}: give 1 or more (Environment.ProcessorCount for a loop per core).");
        }

        if (!Enum.IsDefined(Distribution))
        {
            throw new InvalidOperationException($"TulipOptions.Distribution is {(int)Distribution}: give GroupDistribution.ReusePort or GroupDistribution.RoundRobin.");
        }
        foreach (var endpoint in _endpoints)
        {
            if (!endpoint.HasHandler)
            {
                throw new InvalidOperationException(
                    $"The Tulip endpoint {endpoint} has no handler: call UseProtocol(...) or UseStreams(...) on what {endpoint.AddedBy} returned.");
            }
        }
    }

    private static void CheckTimeout(TimeSpan value, string name)
    {
        if (value < TimeSpan.Zero && value != Timeout.InfiniteTimeSpan)
        {
            throw new InvalidOperationException(
                $"TulipOptions.{name} is {value}: give 0 or more, or Timeout.InfiniteTimeSpan to wait until the host's shutdown timeout.");
        }
    }
}
