using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Tulip.Hosting.Diagnostics;

namespace Tulip.Hosting;

/// <summary>
/// The service with <see cref="TulipOptions.LoopCount"/> above 1: the loops are an <see cref="EventLoopGroup"/>'s,
/// every endpoint is served on all of them (<see cref="TulipOptions.Distribution"/>), and the shutdown runs the
/// same phases as on one loop on each loop at once (each loop's servers stop accepting, its handlers see
/// <see cref="TulipServerContext.Stopping"/>, its connections drain, close, abort, its tasks are cancelled), then
/// the group stops.
/// </summary>
public sealed partial class TulipLoopService
{
    // Set once by StartAsync (group mode); read by any thread after.
    private volatile EventLoopGroup? _group;
    private LoopShutdownState[] _groupStates = [];
    private readonly List<GroupServer> _groupServers = new(); // guarded by _gate
    private int _groupStopped; // 0 until StopGroupAsync began

    /// <summary>The loops, in order: one, or <see cref="TulipOptions.LoopCount"/>; empty until the host has started.</summary>
    public IReadOnlyList<IEventLoop> Loops => _group is { } group ? group.Loops : _loop is { } loop ? [loop] : [];

    private async Task StartGroupAsync(Func<IEventLoop> factory, CancellationToken cancellationToken)
    {
        EventLoopGroup group;
        lock (_gate)
        {
            if (_group is not null || _thread is not null)
            {
                throw new InvalidOperationException("The Tulip loop service was started already; a host starts it once.");
            }

            bool debug = _options.Debug;
            _group = group = new EventLoopGroup(_options.LoopCount, () =>
            {
                var loop = factory();
                loop.Debug = loop.Debug || debug;
                return loop;
            }, _loggerFactory.CreateLogger("Tulip.Hosting"));
        }

        try
        {
            _groupStates = new LoopShutdownState[group.Loops.Count];
            for (int i = 0; i < _groupStates.Length; i++)
            {
                var loop = group.Loops[i];
                _groupStates[i] = await loop.RunCoroutineThreadSafe(async () =>
                {
                    await Tasks.Yield();
                    return new LoopShutdownState(new CancellationTokenSource(), new Future<VoidResult>(loop));
                }, cancellationToken).ConfigureAwait(false);
            }

            var listeners = new List<TulipListener>();
            foreach (var endpoint in _options.Endpoints)
            {
                var byLoop = new Dictionary<IEventLoop, Func<IBaseProtocol>>(ReferenceEqualityComparer.Instance);
                for (int i = 0; i < group.Loops.Count; i++)
                {
                    var context = new TulipServerContext(_services, group.Loops[i], endpoint, _groupStates[i].Stopping.Token);
                    byLoop[group.Loops[i]] = endpoint.MakeProtocolFactory(context);
                }

                Func<IBaseProtocol> factoryOnLoop = () => byLoop[EventLoop.GetRunningLoop()]();
                IReadOnlyList<GroupServer> started;
                try
                {
                    started = await endpoint.StartOnGroupAsync(group, factoryOnLoop, _options.Distribution, _options.EnvironmentReader, cancellationToken)
                        .ConfigureAwait(false);
                }
                catch (SocketException socketError)
                {
                    throw new IOException($"Tulip could not listen on {endpoint}: {socketError.Message}" +
                        (socketError.SocketErrorCode == SocketError.AddressAlreadyInUse
                            ? " (another socket listens there: stop it, or choose another address or port)." : "."), socketError);
                }

                foreach (var server in started)
                {
                    lock (_gate)
                    {
                        _groupServers.Add(server);
                    }

                    listeners.Add(new TulipListener(endpoint, server));
                }
            }

            _listeners = listeners;
            if (_logger.IsEnabled(LogLevel.Information))
            {
                // Described into locals: CA1873 does not see the IsEnabled guard around a [LoggerMessage] call (dotnet/sdk#50893).
                string endPoints = Describe(listeners);
                string kind = EventLoopKinds.NameOf(group.Loops[0]) ?? group.Loops[0].GetType().Name;
                Log.ServingOnGroup(_logger, endPoints, group.Loops.Count, kind, _options.Distribution);
            }
        }
        catch
        {
            // A failed or cancelled start leaves nothing behind: what was opened is closed, and the threads end.
            await group.DisposeAsync().ConfigureAwait(false);
            DisposeStates();
            throw;
        }
    }

    /// <summary>The graceful shutdown on every loop at once, then the group's end.</summary>
    private async Task StopGroupAsync(EventLoopGroup group, CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _groupStopped, 1) != 0)
        {
            await group.ShutdownAsync(TimeSpan.Zero, TimeSpan.Zero, CancellationToken.None).ConfigureAwait(false); // waits for the first stop to end
            return;
        }

        List<GroupServer> servers;
        lock (_gate)
        {
            servers = [.. _groupServers];
        }

        using var force = cancellationToken.Register(static s =>
        {
            var self = (TulipLoopService)s!;
            foreach (var state in self._groupStates)
            {
                Post(state.HostTimeout.Loop, () => state.HostTimeout.TrySetResult(default));
            }
        }, this);

        var shutdowns = new List<Task<TulipShutdownReport>>();
        for (int i = 0; i < group.Loops.Count; i++)
        {
            var loop = group.Loops[i];
            var state = _groupStates[i];
            var onLoop = servers.SelectMany(static g => g.Servers).Where(s => ReferenceEquals(s.Loop, loop)).ToList();
            try
            {
                shutdowns.Add(loop.RunCoroutineThreadSafe(() =>
                    ShutdownAsync(loop, onLoop, new HashSet<Future>(ReferenceEqualityComparer.Instance), state), CancellationToken.None)); // the host's timeout is the state's
            }
            catch (InvalidOperationException)
            {
                // That loop has failed and closed (logged by the group): nothing of it is left to stop.
            }
        }

        var reports = new List<TulipShutdownReport>();
        foreach (var shutdown in shutdowns)
        {
            try
            {
                reports.Add(await shutdown.ConfigureAwait(false));
            }
            catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException)
            {
                // The loop ended meanwhile (it failed): the group logged why.
            }
        }

        // Each loop's servers are closed and its tasks cancelled by now; the group's own drain finds nothing
        // left, and with the host's timeout expired it leaves tasks that ignore their cancellation behind.
        await group.ShutdownAsync(TimeSpan.Zero, TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        _report = reports.Count == 0
            ? new TulipShutdownReport(TulipShutdownOutcome.Aborted, cancellationToken.IsCancellationRequested, 0, 0)
            : new TulipShutdownReport(reports.Max(static r => r.Outcome), reports.Any(static r => r.HostTimeoutExpired),
                reports.Sum(static r => r.TasksCancelled), reports.Sum(static r => r.TasksLeftRunning));
        DisposeStates();
    }

    private static void Post(IEventLoop loop, Action action)
    {
        try
        {
            loop.CallSoonThreadSafe(action);
        }
        catch (InvalidOperationException)
        {
            // closed: nothing left to tell
        }
    }

    private void DisposeStates()
    {
        foreach (var state in _groupStates)
        {
            state.Stopping.Dispose();
        }
    }
}
