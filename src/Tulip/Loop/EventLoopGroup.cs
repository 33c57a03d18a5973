using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Tulip.Diagnostics;

namespace Tulip;

/// <summary>
/// N event loops on N threads of their own, serving the same endpoints: the way to use more than one core
/// (a loop is single-threaded by design, as asyncio's and libuv's are). A server started on the group
/// spreads its connections over the loops as <see cref="GroupDistribution"/> says: a listener per loop on
/// the same port (<c>SO_REUSEPORT</c>: the kernel spreads the connections across the listeners by their
/// addresses), or one acceptor handing each accepted socket to the next loop in turn. Either way a
/// connection lives on one loop for its whole life and nothing is shared between loops.
/// </summary>
/// <remarks>
/// <para>
/// Threads: the group's own members may be called from any thread but a loop thread of the group. The
/// loops are the group's: give work to one with <see cref="IEventLoop.RunCoroutineThreadSafe{T}"/> or
/// <see cref="IEventLoop.CallSoonThreadSafe(Action)"/>, never close or stop one yourself.
/// </para>
/// <para>
/// A loop that fails (an exception escaping its run, which the loop's exception handler did not take)
/// ends alone: it is recorded in <see cref="Failures"/>, logged, and the other loops go on serving.
/// </para>
/// <para>
/// Shutdown (<see cref="ShutdownAsync"/>): every server stops accepting, its connections get the drain
/// time to end by themselves, then are closed, then aborted; then the loops stop, their tasks are
/// cancelled (<see cref="Runner"/>'s rule) and the threads end. <see cref="DisposeAsync"/> is a shutdown
/// that aborts at once.
/// </para>
/// </remarks>
public sealed partial class EventLoopGroup : IAsyncDisposable
{
    private readonly Member[] _members;
    private readonly IEventLoop[] _loops;
    private readonly List<GroupServer> _servers = [];
    private readonly ILogger? _logger;
    private readonly object _lock = new();
    private int _state; // 0 running, 1 shutting down, 2 done
    // Loop iterations cancelled tasks get when a shutdown's token cut it short (as Tulip.Hosting gives them).
    private const int IterationsForCancelledTasks = 3;

    /// <summary>Starts <paramref name="count"/> loops, each on a thread of its own.</summary>
    /// <param name="count">How many loops: 1 or more; <see cref="Environment.ProcessorCount"/> when null.</param>
    /// <param name="loopFactory">Makes each loop (the kind); null for what <see cref="EventLoopKinds.FromEnvironment"/> chooses (TULIP_LOOP, or the best available).</param>
    /// <param name="logger">Where a loop's failure is logged; null for nowhere but <see cref="Failures"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is less than 1.</exception>
    public EventLoopGroup(int? count = null, Func<IEventLoop>? loopFactory = null, ILogger? logger = null)
    {
        int n = count ?? Environment.ProcessorCount;
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1, nameof(count));
        loopFactory ??= EventLoopKinds.FromEnvironment();
        _logger = logger;
        _members = new Member[n];
        try
        {
            for (int i = 0; i < n; i++)
            {
                _members[i] = new Member(this, i, loopFactory);
            }
        }
        catch
        {
            foreach (var member in _members.Where(static m => m is not null))
            {
                member.Stop();
            }

            throw;
        }

        _loops = Array.ConvertAll(_members, static m => m.Loop);
    }

    /// <summary>The loops, in the order of their threads ("tulip-loop-0", "tulip-loop-1", ...).</summary>
    public IReadOnlyList<IEventLoop> Loops => _loops;

    /// <summary>Completes once loop <paramref name="index"/>'s thread has ended (stopped, or failed); for tests.</summary>
    internal Task WhenLoopEnded(int index) => _members[index].Ended;

    /// <summary>The loops that failed, with what ended each; empty while all run.</summary>
    public IReadOnlyList<(IEventLoop Loop, Exception Error)> Failures
    {
        get
        {
            lock (_lock)
            {
                return _members.Where(static m => m.Error is not null).Select(static m => (m.Loop, m.Error!)).ToArray();
            }
        }
    }

    /// <summary>
    /// Serves <paramref name="host"/>:<paramref name="port"/> on every loop still running (not on one that
    /// failed): one listener per loop, all bound with <c>SO_REUSEPORT</c> to the same address. With port 0 the first loop's listener picks
    /// the port and the others join it.
    /// </summary>
    /// <param name="protocolFactory">Makes each connection's protocol; called on the loop that accepted it.</param>
    /// <param name="host">The address to listen on (one host; for several, start one server each).</param>
    /// <param name="port">The port; 0 for one the system picks.</param>
    /// <param name="options">Server options for each listener; <see cref="ServerOptions.ReusePort"/> is set, and <see cref="ServerOptions.Socket"/> must be null.</param>
    /// <param name="cancellationToken">Cancels the start: the listeners made so far are closed.</param>
    /// <exception cref="InvalidOperationException">The group is shutting down, or the call came from one of its loops.</exception>
    /// <exception cref="ArgumentException"><paramref name="options"/> gives a socket: a group listens on its own.</exception>
    public Task<GroupServer> StartServerAsync(Func<IBaseProtocol> protocolFactory, string host, int port, ServerOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        return StartServerAsync(protocolFactory, host, port, GroupDistribution.ReusePort, options, cancellationToken);
    }

    private async Task<GroupServer> StartReusePortAsync(Func<IBaseProtocol> protocolFactory, IReadOnlyList<string>? hosts, int port, ServerOptions? options,
        CancellationToken cancellationToken)
    {
        CheckRunning();
        CheckNotOnALoop(nameof(StartServerAsync));
        var each = (options ?? new ServerOptions()) with { ReusePort = true };
        var live = LiveMembers();
        var servers = new List<Server>();
        var endPoints = new List<System.Net.EndPoint>();
        try
        {
            foreach (var member in live)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int p = port;
                var server = await member.Loop.RunCoroutineThreadSafe(
                    () => member.Loop.CreateServerAsync(protocolFactory, hosts, p, each, cancellationToken), cancellationToken).ConfigureAwait(false);
                servers.Add(server);
                if (endPoints.Count == 0)
                {
                    endPoints.AddRange(await OnLoop(server.Loop, async () =>
                    {
                        await Tasks.Yield();
                        return server.Sockets.Select(static s => s.LocalEndPoint!).ToArray();
                    }).ConfigureAwait(false));
                }

                if (port == 0)
                {
                    port = ((System.Net.IPEndPoint)endPoints[0]).Port; // the others join the port the first was given
                }
            }
        }
        catch
        {
            await CloseAllAsync(servers).ConfigureAwait(false);
            throw;
        }

        var group = new GroupServer(servers, endPoints, GroupDistribution.ReusePort);
        lock (_lock)
        {
            _servers.Add(group);
        }

        return group;
    }

    /// <summary>
    /// Ends the group gracefully, as a host stops: every server stops accepting; the connections open
    /// then get <paramref name="drain"/> to finish by themselves; those still open are closed
    /// (<see cref="Server.CloseClients"/>: each sends what it has buffered, then ends) and get
    /// <paramref name="closeGrace"/> more; what is left then is aborted. Then each loop stops, its
    /// remaining tasks are cancelled and awaited, and its thread ends.
    /// </summary>
    /// <param name="drain">How long open connections may take to finish by themselves; <see cref="TimeSpan.Zero"/> to close them at once.</param>
    /// <param name="closeGrace">How long closed connections may take to send what they hold; null for 5 seconds, <see cref="TimeSpan.Zero"/> to abort at once.</param>
    /// <param name="cancellationToken">Cuts the waiting short (a host's shutdown timeout): what is still open is aborted, and the loops still stop.</param>
    /// <returns>True if every connection finished by itself within the drain; false if some were closed or aborted.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A time is negative.</exception>
    /// <exception cref="InvalidOperationException">Called from one of the group's loops.</exception>
    public async Task<bool> ShutdownAsync(TimeSpan drain, TimeSpan? closeGrace = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(drain, TimeSpan.Zero);
        var grace = closeGrace ?? TimeSpan.FromSeconds(5);
        ArgumentOutOfRangeException.ThrowIfLessThan(grace, TimeSpan.Zero, nameof(closeGrace));
        CheckNotOnALoop(nameof(ShutdownAsync));
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            foreach (var member in _members)
            {
                await member.Ended.ConfigureAwait(false);
            }

            return true;
        }

        List<GroupServer> servers;
        lock (_lock)
        {
            servers = [.. _servers];
            _servers.Clear();
        }

        var shutdowns = new List<Task<bool>>();
        foreach (var server in servers.SelectMany(static g => g.Servers))
        {
            if (IsRunning(server.Loop))
            {
                shutdowns.Add(OnLoop(server.Loop, () => Drain(server, drain.TotalSeconds, grace.TotalSeconds, cancellationToken)));
            }
        }

        bool clean = true;
        foreach (var shutdown in shutdowns)
        {
            try
            {
                clean &= await shutdown.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException)
            {
                clean = false; // the loop ended meanwhile (it failed): nothing left on it to wait for
            }
        }

        foreach (var member in _members)
        {
            member.Stop(abandonStubbornTasks: cancellationToken.IsCancellationRequested);
        }

        foreach (var member in _members)
        {
            await member.Ended.ConfigureAwait(false);
        }

        Volatile.Write(ref _state, 2);
        return clean;
    }

    /// <summary>One server's part of the shutdown, on its loop: stop accepting, drain, close, abort.</summary>
    private static async LoopTask<bool> Drain(Server server, double drain, double grace, CancellationToken cancellationToken)
    {
        server.Close();
        var closed = server.WaitClosedAsync(CancellationToken.None);
        try
        {
            if (await Finished(closed, drain, cancellationToken))
            {
                return true;
            }

            server.CloseClients();
            if (await Finished(closed, grace, cancellationToken))
            {
                return false;
            }
        }
        catch (OperationCanceledException)
        {
            // The host's time is up: what is left is aborted below.
        }

        server.AbortClients();
        await closed;
        return false;
    }

    private static async LoopTask<bool> Finished(LoopTask closed, double seconds, CancellationToken cancellationToken)
    {
        if (closed.Done)
        {
            return true;
        }

        var (done, _) = await Tasks.Wait([closed], seconds, cancellationToken: cancellationToken);
        return done.Count == 1;
    }

    /// <summary>Ends the group at once: <see cref="ShutdownAsync"/> with no drain.</summary>
    public async ValueTask DisposeAsync() => await ShutdownAsync(TimeSpan.Zero, TimeSpan.Zero).ConfigureAwait(false);

    private void CheckRunning()
    {
        if (Volatile.Read(ref _state) != 0)
        {
            throw new InvalidOperationException("The event loop group is shutting down or shut down: make a new one.");
        }
    }

    /// <summary>
    /// Refuses a call from one of the group's own loops: a shutdown there would wait for its own loop to
    /// end, and a start would await the loop it runs on, both from inside a callback of it.
    /// </summary>
    private void CheckNotOnALoop(string method)
    {
        if (EventLoop.TryGetRunningLoop() is { } running && Array.IndexOf(_loops, running) >= 0)
        {
            throw new InvalidOperationException(
                $"EventLoopGroup.{method} was called on one of the group's own loops: call it from another thread (the one that made the group, a host's), never from a loop of the group.");
        }
    }

    private bool IsRunning(IEventLoop loop) => _members.First(m => ReferenceEquals(m.Loop, loop)).Error is null && !loop.IsClosed;

    private static Task<T> OnLoop<T>(IEventLoop loop, Func<LoopTask<T>> body) => loop.RunCoroutineThreadSafe(body);

    private static Task OnLoop(IEventLoop loop, Func<LoopTask> body) => loop.RunCoroutineThreadSafe(async () =>
    {
        await body();
        return true;
    });

    private void OnFailed(Member member, Exception error)
    {
        if (_logger is not null)
        {
            Log.GroupLoopFailed(_logger, error, member.Index);
        }
    }

    /// <summary>One loop of the group and its thread.</summary>
    private sealed class Member
    {
        private readonly EventLoopGroup _group;
        private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Thread _thread;
        private volatile bool _stopRequested;
        private volatile bool _abandonStubbornTasks;
        // Connections the acceptor handed this loop that it has not taken yet; guarded by itself. Closed
        // (_inboxClosed) once the loop's thread ends, when what is left in it is closed.
        private readonly Queue<(RoundRobinServer Server, Socket Connection)> _inbox = new();
        private bool _inboxClosed;
        private readonly Action _takeHandedOver;

        public Member(EventLoopGroup group, int index, Func<IEventLoop> loopFactory)
        {
            _group = group;
            Index = index;
            _takeHandedOver = TakeHandedOver;
            Loop = loopFactory();
            var started = new ManualResetEventSlim();
            _thread = new Thread(() => Run(started)) { IsBackground = true, Name = $"tulip-loop-{index}" };
            _thread.Start();
            started.Wait();
            started.Dispose();
        }

        public int Index { get; }

        public EventLoopGroup Group => _group;

        public IEventLoop Loop { get; }

        public Exception? Error { get; private set; }

        public Task Ended => _ended.Task;

        /// <summary>
        /// From the acceptor's loop: queues <paramref name="connection"/> for <paramref name="server"/> on this
        /// loop and wakes it; false (the socket is not taken) if this loop has failed or ended.
        /// </summary>
        public bool TryHand(RoundRobinServer server, Socket connection)
        {
            lock (_inbox)
            {
                if (_inboxClosed || Error is not null || Loop.IsClosed)
                {
                    return false;
                }

                try
                {
                    Loop.CallSoonThreadSafe(_takeHandedOver);
                }
                catch (InvalidOperationException)
                {
                    return false; // closed meanwhile
                }

                _inbox.Enqueue((server, connection));
                return true;
            }
        }

        /// <summary>On this loop: serves what the acceptor handed over (each is closed if its server is closed).</summary>
        private void TakeHandedOver()
        {
            while (true)
            {
                (RoundRobinServer Server, Socket Connection) item;
                lock (_inbox)
                {
                    if (!_inbox.TryDequeue(out item))
                    {
                        return;
                    }
                }

                item.Server.Adopt(item.Connection);
            }
        }

        /// <summary>The loop's thread ends: sockets still queued for it are closed, not leaked.</summary>
        private void CloseInbox()
        {
            lock (_inbox)
            {
                _inboxClosed = true;
                while (_inbox.TryDequeue(out var item))
                {
                    item.Connection.Dispose();
                }
            }
        }

        public void Stop(bool abandonStubbornTasks = false)
        {
            _abandonStubbornTasks |= abandonStubbornTasks;
            _stopRequested = true;
            try
            {
                Loop.CallSoonThreadSafe(static l => l.Stop(), Loop);
            }
            catch (InvalidOperationException)
            {
                // closed already: it failed, or stopped
            }
        }

        private void Run(ManualResetEventSlim started)
        {
            try
            {
                EventLoop.SetEventLoop(Loop);
                Loop.CallSoon(started.Set);
                while (!_stopRequested)
                {
                    Loop.RunForever(); // returns on Stop(); a stop asked before it ran is honoured by the loop test
                }

                CancelRemainingTasks();
            }
            catch (Exception ex)
            {
                started.Set();
                lock (_group._lock)
                {
                    Error = ex;
                }

                _group.OnFailed(this, ex);
            }
            finally
            {
                try
                {
                    Loop.Close();
                }
                catch (InvalidOperationException)
                {
                    // still running after a failure inside RunForever: nothing more to do on this thread
                }

                CloseInbox();
                try
                {
                    _group.OnMemberEnded(this);
                }
                finally
                {
                    _ended.TrySetResult();
                }
            }
        }

        /// <summary>Runner's end: the tasks still on the loop are cancelled and awaited, then the default executor is shut down.</summary>
        private void CancelRemainingTasks()
        {
            if (_abandonStubbornTasks)
            {
                CancelTasksBriefly();
                return;
            }

            Runner.CancelAllTasks(Loop);
            Loop.RunUntilComplete(() => Loop.ShutdownDefaultExecutorAsync());
        }

        /// <summary>
        /// The shutdown's time ran out: the tasks are cancelled and get a few iterations to end (enough to
        /// see the CancelledError and run a finally that does not wait on I/O; counted in iterations, not time,
        /// so it is the same on a loaded machine); those still running are logged and left as the loop closes.
        /// </summary>
        private void CancelTasksBriefly()
        {
            var tasks = Loop.AllTasks().Where(static t => !t.Done).ToList();
            foreach (var task in tasks)
            {
                task.Cancel("The event loop group is shutting down.");
            }

            Loop.RunUntilComplete(async () =>
            {
                for (int i = 0; i < IterationsForCancelledTasks && tasks.Any(static t => !t.Done); i++)
                {
                    await Tasks.Yield();
                }

                return true;
            });
            foreach (var task in tasks.Where(static t => !t.Done))
            {
                if (_group._logger is { } logger)
                {
                    Log.GroupTaskLeftRunning(logger, Index, task);
                }
            }
        }
    }
}

/// <summary>
/// A server of an <see cref="EventLoopGroup"/>: a <see cref="Server"/> per loop, which serves the connections
/// that loop gets (<see cref="GroupDistribution.ReusePort"/>: each has a listener of its own;
/// <see cref="GroupDistribution.RoundRobin"/>: the first holds the one listener, and each serves what it is handed).
/// </summary>
public sealed class GroupServer
{
    internal GroupServer(IReadOnlyList<Server> servers, IReadOnlyList<System.Net.EndPoint> localEndPoints, GroupDistribution distribution)
    {
        Servers = servers;
        LocalEndPoints = localEndPoints;
        Distribution = distribution;
        Port = localEndPoints.Count > 0 && localEndPoints[0] is System.Net.IPEndPoint ip ? ip.Port : 0;
    }

    /// <summary>Each running loop's server, in the order of the group's loops. Use each on its own loop only.</summary>
    public IReadOnlyList<Server> Servers { get; }

    /// <summary>How the connections are spread over the loops.</summary>
    public GroupDistribution Distribution { get; }

    /// <summary>The addresses listened on, as bound at the start (the port the system chose for port 0); any thread may read them.</summary>
    public IReadOnlyList<System.Net.EndPoint> LocalEndPoints { get; }

    /// <summary>The TCP port every listener is bound to; 0 for a UNIX socket.</summary>
    public int Port { get; }
}
