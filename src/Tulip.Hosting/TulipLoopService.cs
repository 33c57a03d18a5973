using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tulip.Hosting.Diagnostics;
using Microsoft.Extensions.Options;

namespace Tulip.Hosting;

/// <summary>
/// The hosted service <c>services.AddTulip(...)</c> adds: runs one event loop on a dedicated thread (or
/// <see cref="TulipOptions.LoopCount"/> loops, an <see cref="EventLoopGroup"/>), starts the endpoints of
/// <see cref="TulipOptions"/> on it (on all of them) when the host starts, and shuts them down gracefully when the
/// host stops (see <see cref="TulipOptions"/> for the phases). Also registered as itself, for its
/// <see cref="Loop"/> and <see cref="Listeners"/>.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="StartAsync"/> returns once every endpoint listens; one that cannot (an address in use, no socket
/// from systemd) fails the host's start with an exception that names it, after the loop has closed what it had
/// opened. If the loop itself fails later, the error is logged and the host is asked to stop
/// (<see cref="IHostApplicationLifetime.StopApplication"/>), as a failing <c>BackgroundService</c> does.
/// </para>
/// <para>
/// The loop logs through the host's <see cref="ILoggerFactory"/> (category <c>Tulip</c>); the service's own lines
/// are under <c>Tulip.Hosting</c>.
/// </para>
/// </remarks>
public sealed partial class TulipLoopService : IHostedService, IDisposable
{
    private static int s_instances;

    private readonly TulipOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly IServiceProvider _services;
    private readonly IHostApplicationLifetime? _lifetime;
    private readonly string _threadName;
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Cancelled on the loop thread when the drain starts (TulipServerContext.Stopping).
    private readonly CancellationTokenSource _stopping = new();
    private readonly object _gate = new(); // guards _thread
    private Thread? _thread;
    // Published by the loop thread once the loop exists; read by any thread to post to it.
    private volatile IEventLoop? _loop;
    // Set by any thread; the loop thread looks at them after publishing _loop, so a request made before is not lost.
    private volatile bool _stopWanted;
    private volatile bool _forceWanted;
    // The loop thread's: completed (on the loop) by the requests above.
    private Future<VoidResult>? _stopRequested;
    private Future<VoidResult>? _hostTimeout;
    private volatile IReadOnlyList<TulipListener> _listeners = [];
    private volatile TulipShutdownReport? _report;
    // The loop thread's: every server started, for the shutdown (or the close after a failure).
    private readonly List<Server> _servers = new();

    /// <summary>Makes the service; <c>AddTulip</c> does this, and most applications never need to.</summary>
    /// <param name="options">The options (endpoints, loop kind, drain and close periods).</param>
    /// <param name="loggerFactory">Where the loop and the service log; null: nowhere.</param>
    /// <param name="services">The host's services, handed to the endpoints' handlers.</param>
    /// <param name="lifetime">Asked to stop the host when the loop fails; null: nobody is.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> or <paramref name="services"/> is null.</exception>
    public TulipLoopService(IOptions<TulipOptions> options, ILoggerFactory? loggerFactory, IServiceProvider services, IHostApplicationLifetime? lifetime)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(services);
        _options = options.Value;
        _loggerFactory = loggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger("Tulip.Hosting");
        _services = services;
        _lifetime = lifetime;
        _threadName = $"tulip-loop-{Interlocked.Increment(ref s_instances)}";
    }

    /// <summary>The loop, from the host's start until the service is disposed (closed once stopped).</summary>
    /// <exception cref="InvalidOperationException">The host has not started the service yet.</exception>
    /// <remarks>With <see cref="TulipOptions.LoopCount"/> above 1, the first of <see cref="Loops"/>.</remarks>
    public IEventLoop Loop => _loop ?? (_group is { } group ? group.Loops[0] : null)
        ?? throw new InvalidOperationException("The Tulip loop is not started: it starts with the host (IHost.StartAsync or RunAsync).");

    /// <summary>The servers started, in the order of <see cref="TulipOptions.Endpoints"/>; empty until the host has started.</summary>
    public IReadOnlyList<TulipListener> Listeners => _listeners;

    /// <summary>What the last graceful shutdown did; null until one has ended.</summary>
    public TulipShutdownReport? ShutdownReport => _report;

    /// <summary>The name of the loop's thread (<c>tulip-loop-N</c>; also its name in the OS, as <c>/proc/self/task/*/comm</c> shows).</summary>
    public string ThreadName => _threadName;

    /// <summary>True while the loop's thread runs (started and not yet ended); for tests.</summary>
    internal bool LoopThreadAlive
    {
        get
        {
            lock (_gate)
            {
                return _thread?.IsAlive ?? false;
            }
        }
    }

    /// <summary>Starts the loop's thread and every endpoint; completes once all listen.</summary>
    /// <param name="cancellationToken">The host's start token: cancelled, the loop is stopped and the call ends cancelled.</param>
    /// <exception cref="InvalidOperationException">The options are not valid (the message says what to change), or the service was started already.</exception>
    /// <exception cref="ArgumentException"><see cref="TulipOptions.LoopKind"/> is not a known kind.</exception>
    /// <exception cref="IOException">An endpoint could not listen (its address is in use, for one); the message names it.</exception>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _options.Validate();
        var factory = EventLoopKinds.CreateFactory(_options.LoopKind, _loggerFactory);
        if (_options.LoopCount > 1)
        {
            await StartGroupAsync(factory, cancellationToken).ConfigureAwait(false);
            return;
        }

        lock (_gate)
        {
            if (_thread is not null || _group is not null)
            {
                throw new InvalidOperationException("The Tulip loop service was started already; a host starts it once.");
            }

            _thread = new Thread(() => RunLoopThread(factory)) { Name = _threadName, IsBackground = true };
        }

        _thread.Start();
        try
        {
            await _started.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // A failed or cancelled start leaves nothing behind: the loop closes what it opened, and its thread ends.
            RequestStop();
            await _done.Task.ConfigureAwait(false);
            _thread.Join();
            throw;
        }
    }

    /// <summary>
    /// Shuts down gracefully: stop accepting, drain, close, abort, then cancel and await the loop's tasks;
    /// completes once the loop is closed and its thread has ended.
    /// </summary>
    /// <param name="cancellationToken">The host's shutdown timeout: once cancelled, connections still open are aborted at once and tasks are no longer waited for.</param>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_group is { } group)
        {
            await StopGroupAsync(group, cancellationToken).ConfigureAwait(false);
            return;
        }

        Thread? thread;
        lock (_gate)
        {
            thread = _thread;
        }

        if (thread is null)
        {
            return;
        }

        RequestStop();
        using (cancellationToken.Register(static s => ((TulipLoopService)s!).RequestForce(), this))
        {
            await _done.Task.ConfigureAwait(false);
        }

        thread.Join();
    }

    /// <summary>Stops the loop at once if the host did not (connections aborted, tasks cancelled) and waits for its thread.</summary>
    public void Dispose()
    {
        if (_group is { } group)
        {
            if (Interlocked.Exchange(ref _groupStopped, 1) == 0)
            {
                group.DisposeAsync().AsTask().GetAwaiter().GetResult(); // not stopped by the host: abort and end at once
                DisposeStates();
            }
        }

        Thread? thread;
        lock (_gate)
        {
            thread = _thread;
        }

        if (thread is not null && thread.IsAlive)
        {
            RequestForce();
            RequestStop();
            thread.Join();
        }

        _stopping.Dispose();
    }

    private void RequestStop()
    {
        _stopWanted = true;
        Post(static s => s._stopRequested!.TrySetResult(default));
    }

    private void RequestForce()
    {
        _forceWanted = true;
        Post(static s => s._hostTimeout!.TrySetResult(default));
    }

    /// <summary>Runs <paramref name="action"/> on the loop thread, if the loop is there and open; a request made before is seen by the loop thread itself.</summary>
    private void Post(Action<TulipLoopService> action)
    {
        if (_loop is { } loop)
        {
            try
            {
                loop.CallSoonThreadSafe(() => action(this));
            }
            catch (InvalidOperationException)
            {
                // The loop has closed: nothing is left to stop.
            }
        }
    }

    private void RunLoopThread(Func<IEventLoop> factory)
    {
        IEventLoop loop;
        try
        {
            loop = factory();
            loop.Debug = loop.Debug || _options.Debug;
            _stopRequested = new Future<VoidResult>(loop);
            _hostTimeout = new Future<VoidResult>(loop);
        }
        catch (Exception ex)
        {
            _started.TrySetException(ex);
            _done.TrySetResult();
            return;
        }

        bool clean = false;
        try
        {
            EventLoop.SetEventLoop(loop);
            _loop = loop;
            // Requests made before _loop was published could not post: see them here.
            if (_forceWanted)
            {
                _hostTimeout.TrySetResult(default);
            }

            if (_stopWanted)
            {
                _stopRequested.TrySetResult(default);
            }

            // MainAsync is made a task from a callback, not by RunUntilComplete(MainAsync): that wraps a
            // coroutine given before the loop runs in a task of its own, which the shutdown would see among
            // the loop's tasks and cancel, cancelling MainAsync with it.
            var finished = new Future<VoidResult>(loop);
            loop.CallSoon(() => loop.CreateTask(MainAsync).AddDoneCallback(task =>
            {
                if (task.Cancelled)
                {
                    finished.Cancel();
                }
                else if (task.Exception() is { } error)
                {
                    finished.SetException(error);
                }
                else
                {
                    finished.SetResult(default);
                }
            }));
            loop.RunUntilComplete(finished);
            clean = _report is { TasksLeftRunning: 0 };
        }
        catch (Exception ex)
        {
            if (!_started.TrySetException(ex))
            {
                Log.LoopFailed(_logger, ex);
                _lifetime?.StopApplication();
                CloseAfterFailure(loop);
            }
        }
        finally
        {
            try
            {
                if (clean)
                {
                    loop.RunUntilComplete(() => loop.ShutdownDefaultExecutorAsync());
                }
            }
            catch (Exception ex)
            {
                Log.DefaultExecutorShutdownFailed(_logger, ex);
            }
            finally
            {
                EventLoop.SetEventLoop(null);
                loop.Close();
                _done.TrySetResult();
            }
        }
    }

    /// <summary>
    /// After the loop failed (or was stopped by someone else) while serving: the servers are closed and their
    /// connections aborted, and the tasks cancelled, as when the host's timeout has expired, so that nothing is
    /// left listening once the loop closes.
    /// </summary>
    private void CloseAfterFailure(IEventLoop loop)
    {
        try
        {
            _hostTimeout!.TrySetResult(default);
            _report = loop.RunUntilComplete(() => ShutdownAsync(loop, _servers, new HashSet<Future>(ReferenceEqualityComparer.Instance),
                new LoopShutdownState(_stopping, _hostTimeout!)));
        }
        catch (Exception ex)
        {
            Log.ServersNotClosedAfterFailure(_logger, ex);
        }
    }

    private async LoopTask MainAsync()
    {
        var loop = _loop!;
        var listeners = new List<TulipListener>();
        var servers = _servers;
        foreach (var endpoint in _options.Endpoints)
        {
            var context = new TulipServerContext(_services, loop, endpoint, _stopping.Token);
            IReadOnlyList<Server> started;
            try
            {
                started = await endpoint.StartAsync(loop, context, _options.EnvironmentReader);
            }
            catch (Exception ex) when (ex is not CancelledError)
            {
                foreach (var server in servers)
                {
                    server.Close();
                    server.AbortClients();
                }

                foreach (var server in servers)
                {
                    await server.WaitClosedAsync();
                }

                throw ex is SocketException socketError
                    ? new IOException($"Tulip could not listen on {endpoint}: {socketError.Message}" +
                        (socketError.SocketErrorCode == SocketError.AddressAlreadyInUse
                            ? " (another socket listens there: stop it, or choose another address or port)." : "."), ex)
                    : ex;
            }

            foreach (var server in started)
            {
                servers.Add(server);
                listeners.Add(new TulipListener(endpoint, server, server.Sockets.Select(static s => s.LocalEndPoint!).ToArray()));
            }
        }

        _listeners = listeners;
        if (_logger.IsEnabled(LogLevel.Information))
        {
            // Described into locals: CA1873 does not see the IsEnabled guard around a [LoggerMessage] call (dotnet/sdk#50893).
            string endPoints = Describe(listeners);
            string kind = EventLoopKinds.NameOf(loop) ?? loop.GetType().Name;
            Log.Serving(_logger, endPoints, kind, _threadName);
        }

        _started.TrySetResult();
        await _stopRequested!;
        _report = await ShutdownAsync(loop, servers, new HashSet<Future>(ReferenceEqualityComparer.Instance) { Tasks.CurrentTask()!.AsFuture },
            new LoopShutdownState(_stopping, _hostTimeout!));
    }

    /// <summary>The listeners' end points for the start's log line: "tcp://127.0.0.1:80, unix:/run/app.sock", or "nothing".</summary>
    private static string Describe(List<TulipListener> listeners) =>
        listeners.Count == 0 ? "nothing" : string.Join(", ", listeners.SelectMany(static l => l.LocalEndPoints).Select(Describe));

    private static string Describe(EndPoint endPoint) => endPoint switch
    {
        UnixDomainSocketEndPoint unix => $"unix:{unix}",
        _ => $"tcp://{endPoint}",
    };
}
