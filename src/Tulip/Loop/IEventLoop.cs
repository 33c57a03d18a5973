using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip;

/// <summary>
/// The event loop: the PEP's <c>AbstractEventLoop</c>. It runs callbacks, timers and I/O on one
/// thread, in the order the PEP guarantees: callbacks scheduled with <c>CallSoon</c> run in the
/// order scheduled (FIFO), timers in the order they fall due.
/// </summary>
/// <remarks>
/// <para>
/// Thread rules: a loop belongs to the thread that runs it. <see cref="CallSoonThreadSafe(Action)"/>
/// (and <see cref="RunCoroutineThreadSafe{T}"/>) are the only members other threads may call; in
/// debug mode (<see cref="Debug"/>) the others throw when called from another thread while the loop runs.
/// </para>
/// <para>
/// Optional groups: the I/O members (connections, servers, sockets, readers and writers, pipes,
/// subprocesses, signals) need a multiplexer. A loop without one (the virtual-clock test loop)
/// throws <see cref="NotSupportedException"/> naming the loop that supports the call.
/// </para>
/// </remarks>
public interface IEventLoop : IDisposable
{
    // ---- Running and stopping -------------------------------------------------------------

    /// <summary>Runs until <see cref="Stop"/> is called.</summary>
    /// <remarks>Starting the loop is atomic: if two threads call this (or a <c>RunUntilComplete</c>)
    /// at once, exactly one runs the loop and the other gets the "already running" exception.</remarks>
    /// <exception cref="InvalidOperationException">The loop is closed, or already running (here or on another thread).</exception>
    void RunForever();

    /// <summary>Runs until <paramref name="future"/> is done, then returns its result (or throws its exception).</summary>
    /// <exception cref="InvalidOperationException">The loop stopped before the future was done.</exception>
    T RunUntilComplete<T>(Future<T> future);

    /// <summary>Runs until <paramref name="future"/> is done; throws its exception, if any.</summary>
    void RunUntilComplete(Future future);

    /// <summary>Starts <paramref name="coroutine"/> as a task on this loop and runs until it is done.</summary>
    T RunUntilComplete<T>(Func<LoopTask<T>> coroutine);

    /// <summary>Starts <paramref name="coroutine"/> as a task on this loop and runs until it is done.</summary>
    void RunUntilComplete(Func<LoopTask> coroutine);

    /// <summary>
    /// Stops the loop: the callbacks already due run, then <see cref="RunForever"/> returns without
    /// waiting for I/O. Nothing scheduled is lost; running the loop again continues.
    /// </summary>
    /// <remarks>
    /// <para>Thread-safe, unlike asyncio's <c>stop()</c>: called from another thread it also wakes the
    /// loop, so a loop waiting for I/O with nothing scheduled returns from <see cref="RunForever"/>
    /// promptly (the iteration under way completes first). On the loop thread it only sets a flag.</para>
    /// <para>Called while the loop is not running, the next <see cref="RunForever"/> runs one iteration
    /// and returns (as asyncio). On a closed loop it does nothing.</para>
    /// </remarks>
    void Stop();

    /// <summary>True while the loop runs.</summary>
    bool IsRunning { get; }

    /// <summary>True once <see cref="Close"/> was called.</summary>
    bool IsClosed { get; }

    /// <summary>
    /// Closes the loop: pending callbacks are dropped; the multiplexer, its wake-up fd and the default
    /// executor are released. Idempotent.
    /// </summary>
    /// <exception cref="InvalidOperationException">The loop is running.</exception>
    void Close();

    /// <summary>Waits for the work submitted to the default executor to finish, then stops using it.</summary>
    LoopTask ShutdownDefaultExecutorAsync(CancellationToken cancellationToken = default);

    // ---- Basic callbacks ---------------------------------------------------------------------

    /// <summary>Schedules <paramref name="callback"/> to run on the next iteration, after those already scheduled.</summary>
    Handle CallSoon(Action callback);

    /// <summary>Schedules <paramref name="callback"/>(<paramref name="state"/>) to run soon, without a closure.</summary>
    Handle CallSoon<TState>(Action<TState> callback, TState state);

    /// <summary>Schedules <paramref name="callback"/> to run after <paramref name="delay"/> seconds on the loop's clock.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The delay is NaN.</exception>
    TimerHandle CallLater(double delay, Action callback);

    /// <summary>Schedules <paramref name="callback"/>(<paramref name="state"/>) after <paramref name="delay"/> seconds.</summary>
    TimerHandle CallLater<TState>(double delay, Action<TState> callback, TState state);

    /// <summary>As <see cref="CallLater(double, Action)"/>, with a <see cref="TimeSpan"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is <see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: a timer must fire.</exception>
    TimerHandle CallLater(TimeSpan delay, Action callback) => CallLater(Tasks.FiniteSeconds(delay, nameof(delay)), callback);

    /// <summary>As <see cref="CallLater{TState}(double, Action{TState}, TState)"/>, with a <see cref="TimeSpan"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is <see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: a timer must fire.</exception>
    TimerHandle CallLater<TState>(TimeSpan delay, Action<TState> callback, TState state) => CallLater(Tasks.FiniteSeconds(delay, nameof(delay)), callback, state);

    /// <summary>Schedules <paramref name="callback"/> for the absolute time <paramref name="when"/> on <see cref="Time"/>'s clock.</summary>
    TimerHandle CallAt(double when, Action callback);

    /// <summary>Schedules <paramref name="callback"/>(<paramref name="state"/>) for the time <paramref name="when"/>.</summary>
    TimerHandle CallAt<TState>(double when, Action<TState> callback, TState state);

    /// <summary>The loop's clock, in seconds: monotonic, with an arbitrary origin.</summary>
    double Time();

    // ---- Threads -------------------------------------------------------------------------------

    /// <summary>
    /// Schedules <paramref name="callback"/> from any thread, waking the loop if it waits for I/O.
    /// The one method other threads may call.
    /// </summary>
    /// <exception cref="InvalidOperationException">The loop is closed.</exception>
    Handle CallSoonThreadSafe(Action callback);

    /// <summary>Schedules <paramref name="callback"/>(<paramref name="state"/>) from any thread.</summary>
    Handle CallSoonThreadSafe<TState>(Action<TState> callback, TState state);

    /// <summary>
    /// From another thread: runs <paramref name="coroutine"/> as a task on this loop and returns a
    /// .NET task for its result. Cancelling <paramref name="cancellationToken"/> cancels the loop task.
    /// </summary>
    Task<T> RunCoroutineThreadSafe<T>(Func<LoopTask<T>> coroutine, CancellationToken cancellationToken = default);

    /// <summary>
    /// Runs <paramref name="function"/> on the default executor (the thread pool unless set
    /// otherwise); see <see cref="RunInExecutor{T}(TaskScheduler?, Func{T}, CancellationToken)"/>.
    /// </summary>
    LoopTask<T> RunInExecutor<T>(Func<T> function, CancellationToken cancellationToken = default);

    /// <summary>Runs <paramref name="action"/> on the executor.</summary>
    LoopTask RunInExecutor(Action action, CancellationToken cancellationToken = default);

    /// <summary>
    /// Runs <paramref name="function"/> on <paramref name="executor"/> (asyncio's
    /// <c>run_in_executor(executor, func)</c>); null is the default executor. An executor is a
    /// <see cref="TaskScheduler"/>, as for <see cref="SetDefaultExecutor"/>: for a pool of one worker,
    /// <c>new ConcurrentExclusiveSchedulerPair().ExclusiveScheduler</c>.
    /// </summary>
    /// <remarks>
    /// The work runs in the caller's <see cref="ExecutionContext"/> (<c>AsyncLocal</c> values flow in;
    /// changes made there do not flow back). Cancelling the returned task (or
    /// <paramref name="cancellationToken"/>) ends it cancelled at once: work not started yet never
    /// starts; work already running goes on, and a disposable result it returns afterwards is
    /// disposed on the loop thread, never dropped. Only the default executor's work is waited for by
    /// <see cref="ShutdownDefaultExecutorAsync"/>.
    /// </remarks>
    /// <exception cref="InvalidOperationException"><paramref name="executor"/> is null and the default executor was shut down, or the loop is closed.</exception>
    LoopTask<T> RunInExecutor<T>(TaskScheduler? executor, Func<T> function, CancellationToken cancellationToken = default);

    /// <summary>
    /// As <see cref="RunInExecutor{T}(TaskScheduler?, Func{T}, CancellationToken)"/>, for a function
    /// that takes a token: cancelled when the returned task is cancelled, so the work can stop.
    /// </summary>
    /// <exception cref="InvalidOperationException"><paramref name="executor"/> is null and the default executor was shut down, or the loop is closed.</exception>
    LoopTask<T> RunInExecutor<T>(TaskScheduler? executor, Func<CancellationToken, T> function, CancellationToken cancellationToken = default);

    /// <summary>As <see cref="RunInExecutor{T}(TaskScheduler?, Func{T}, CancellationToken)"/>, for an action.</summary>
    /// <exception cref="InvalidOperationException"><paramref name="executor"/> is null and the default executor was shut down, or the loop is closed.</exception>
    LoopTask RunInExecutor(TaskScheduler? executor, Action action, CancellationToken cancellationToken = default);

    /// <summary>Sets the scheduler that <see cref="RunInExecutor{T}(Func{T}, CancellationToken)"/> uses. Defaults to the .NET thread pool.</summary>
    void SetDefaultExecutor(TaskScheduler executor);

    /// <summary>The PEP's <c>wrap_future</c>: a loop future that completes as <paramref name="task"/> does.</summary>
    Future<T> WrapTask<T>(Task<T> task);

    /// <summary>A loop future that completes as <paramref name="task"/> does.</summary>
    Future<VoidResult> WrapTask(Task task);

    // ---- Futures and tasks ---------------------------------------------------------------------

    /// <summary>Creates a pending future on this loop.</summary>
    Future<T> CreateFuture<T>();

    /// <summary>Creates a pending untyped future, as asyncio's <c>create_future</c>.</summary>
    Future<object?> CreateFuture();

    /// <summary>
    /// Runs <paramref name="coroutine"/> as a task (asyncio's <c>create_task</c>). On the loop thread
    /// while the loop runs, it starts at once, up to its first pending await, unless
    /// <paramref name="eagerStart"/> is false; otherwise it starts on the loop's next iteration.
    /// </summary>
    /// <remarks>
    /// <para>
    /// <paramref name="eagerStart"/> defaults to true: an <c>async LoopTask</c> method called directly
    /// always starts eagerly (C#'s model, and asyncio 3.12's <c>eager_start=True</c>), and
    /// <c>CreateTask</c> agrees with it. With false the task is lazy, as asyncio's default
    /// <c>create_task</c>: the caller goes on first, and the body's first step runs on the next loop
    /// iteration in the caller's <see cref="System.Threading.ExecutionContext"/>. A lazy task
    /// cancelled before that step ends cancelled without running its body. The option applies to the
    /// first <c>async LoopTask</c> method that <paramref name="coroutine"/> calls (normally the one it
    /// returns); a coroutine that returns a task already started is returned as it is.
    /// </para>
    /// <para>
    /// There is no <c>set_task_factory</c>: tasks are made by the compiler's async method builder
    /// when an <c>async LoopTask</c> method is called, not by the loop, so a factory could only see
    /// the tasks made through <c>CreateTask</c>.
    /// </para>
    /// </remarks>
    /// <param name="coroutine">Called (once) to start the task.</param>
    /// <param name="name">The task's <see cref="LoopTask{T}.Name"/>; null leaves the default <c>Task-N</c>.</param>
    /// <param name="eagerStart">Run the body up to its first pending await now (true, the default), or from the next iteration (false).</param>
    /// <exception cref="InvalidOperationException">The loop is closed.</exception>
    LoopTask<T> CreateTask<T>(Func<LoopTask<T>> coroutine, string? name = null, bool eagerStart = true);

    /// <summary>Runs <paramref name="coroutine"/> as a task; see <see cref="CreateTask{T}"/>.</summary>
    /// <param name="coroutine">Called (once) to start the task.</param>
    /// <param name="name">The task's name; null leaves the default.</param>
    /// <param name="eagerStart">Start now (true, the default) or on the next iteration (false).</param>
    /// <exception cref="InvalidOperationException">The loop is closed.</exception>
    LoopTask CreateTask(Func<LoopTask> coroutine, string? name = null, bool eagerStart = true);

    /// <summary>The task running now on this loop (asyncio's <c>current_task(loop)</c>), or null when a plain callback runs.</summary>
    ILoopTask? CurrentTask { get; }

    /// <summary>The tasks of this loop that are not done (asyncio's <c>all_tasks(loop)</c>).</summary>
    IReadOnlyCollection<ILoopTask> AllTasks();

    // ---- Name lookups ---------------------------------------------------------------------------

    /// <summary>
    /// Resolves <paramref name="host"/> without blocking the loop, as getaddrinfo. A numeric address
    /// is not looked up. A null host is the loopback address (the wildcard with <see cref="AddressInfoFlags.Passive"/>).
    /// </summary>
    /// <remarks>
    /// <paramref name="family"/> is <see cref="AddressFamily.Unspecified"/> (AF_UNSPEC, the default:
    /// IPv4 and IPv6), <see cref="AddressFamily.InterNetwork"/> or <see cref="AddressFamily.InterNetworkV6"/>.
    /// Other families are refused as getaddrinfo refuses them (EAI_FAMILY), AF_UNIX included: a UNIX
    /// socket's address is its path, which asyncio passes to the socket without resolving it.
    /// </remarks>
    /// <exception cref="SocketException">The name does not resolve; or <paramref name="family"/> is not resolvable (<see cref="SocketError.AddressFamilyNotSupported"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="port"/> is not between 0 and 65535.</exception>
    LoopTask<IReadOnlyList<AddressInfo>> GetAddrInfoAsync(string? host, int port,
        AddressFamily family = AddressFamily.Unspecified, SocketType type = SocketType.Unknown,
        ProtocolType protocol = ProtocolType.Unknown, AddressInfoFlags flags = AddressInfoFlags.None,
        CancellationToken cancellationToken = default);

    /// <summary>
    /// As <see cref="GetAddrInfoAsync(string?, int, AddressFamily, SocketType, ProtocolType, AddressInfoFlags, CancellationToken)"/>
    /// with the port given as a service, as getaddrinfo's: a number ("8080") or a name from
    /// <c>/etc/services</c> ("http"). A name gives only the protocols it is listed for ("http" is
    /// tcp only, so no datagram results). A null or empty service is port 0.
    /// </summary>
    /// <exception cref="SocketException">
    /// The name does not resolve; the service is not known for the socket type asked for
    /// (<see cref="SocketError.TypeNotFound"/>, getaddrinfo's EAI_SERVICE); neither a host nor a
    /// service was given (<see cref="SocketError.HostNotFound"/>); or <paramref name="family"/> is
    /// not resolvable (<see cref="SocketError.AddressFamilyNotSupported"/>).
    /// </exception>
    LoopTask<IReadOnlyList<AddressInfo>> GetAddrInfoAsync(string? host, string? service,
        AddressFamily family = AddressFamily.Unspecified, SocketType type = SocketType.Unknown,
        ProtocolType protocol = ProtocolType.Unknown, AddressInfoFlags flags = AddressInfoFlags.None,
        CancellationToken cancellationToken = default);

    /// <summary>
    /// The host name and service of <paramref name="endPoint"/>, without blocking the loop, as
    /// getnameinfo. The service is the port's tcp name in <c>/etc/services</c> ("http" for 80), or
    /// the number with <see cref="NameInfoFlags.NumericService"/> or when it has no name.
    /// </summary>
    LoopTask<(string Host, string Service)> GetNameInfoAsync(IPEndPoint endPoint, NameInfoFlags flags = NameInfoFlags.None,
        CancellationToken cancellationToken = default);

    // ---- Internet connections (optional: needs a multiplexer) --------------------------------

    /// <summary>
    /// Connects a TCP stream to <paramref name="host"/>:<paramref name="port"/> and joins it to a new
    /// protocol. Every resolved address is tried in turn; when all fail, the errors are reported together.
    /// </summary>
    LoopTask<(ITransport Transport, TProtocol Protocol)> CreateConnectionAsync<TProtocol>(Func<TProtocol> protocolFactory,
        string? host, int port, ConnectionOptions? options = null, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol;

    /// <summary>
    /// Listens on <paramref name="hosts"/> (null: every interface, IPv4 and IPv6) at <paramref name="port"/>
    /// and joins each accepted connection to a new protocol.
    /// </summary>
    LoopTask<Server> CreateServerAsync(Func<IBaseProtocol> protocolFactory, IReadOnlyList<string>? hosts, int port,
        ServerOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Connects a UNIX stream socket at <paramref name="path"/> and joins it to a new protocol.</summary>
    LoopTask<(ITransport Transport, TProtocol Protocol)> CreateUnixConnectionAsync<TProtocol>(Func<TProtocol> protocolFactory,
        string? path, ConnectionOptions? options = null, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol;

    /// <summary>Listens on the UNIX socket <paramref name="path"/> (a stale socket file is replaced; removed on close).</summary>
    LoopTask<Server> CreateUnixServerAsync(Func<IBaseProtocol> protocolFactory, string? path,
        ServerOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Wraps an accepted socket in a transport joined to a new protocol (asyncio's <c>connect_accepted_socket</c>).</summary>
    LoopTask<(ITransport Transport, TProtocol Protocol)> ConnectAcceptedSocketAsync<TProtocol>(Func<TProtocol> protocolFactory,
        Socket socket, SslServerAuthenticationOptions? ssl = null, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol;

    /// <summary>
    /// Wraps an accepted socket in a TLS transport joined to a new protocol, with the TLS timeouts given
    /// (asyncio's <c>connect_accepted_socket(ssl=, ssl_handshake_timeout=, ssl_shutdown_timeout=)</c>).
    /// </summary>
    LoopTask<(ITransport Transport, TProtocol Protocol)> ConnectAcceptedSocketAsync<TProtocol>(Func<TProtocol> protocolFactory,
        Socket socket, SslServerAuthenticationOptions ssl, double handshakeTimeout, double shutdownTimeout = SslProtocol.DefaultShutdownTimeout,
        CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol;

    /// <summary>
    /// Upgrades a connected stream transport to TLS as its client side (asyncio's <c>start_tls</c>):
    /// returns the TLS transport, which <paramref name="protocol"/> must use from then on instead of
    /// <paramref name="transport"/>. The protocol's ConnectionMade is not called again.
    /// </summary>
    /// <param name="transport">The transport to upgrade: any stream transport, even a TLS one (TLS inside TLS).</param>
    /// <param name="protocol">The protocol that gets the decrypted data (usually the transport's protocol until now).</param>
    /// <param name="options">What to verify and offer; <see cref="SslClientAuthenticationOptions.TargetHost"/> is required.</param>
    /// <param name="handshakeTimeout">Seconds the handshake may take (60 by default).</param>
    /// <param name="shutdownTimeout">Seconds a close waits for the peer's close_notify (30 by default).</param>
    /// <param name="cancellationToken">Cancels the upgrade; the transport is then closed.</param>
    /// <exception cref="System.Security.Authentication.AuthenticationException">The handshake failed; the message says why. The transport is closed.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="transport"/> is closing, or already carries TLS (its protocol is a TLS
    /// layer: upgrade the TLS transport it gave instead).</exception>
    LoopTask<ITransport> StartTlsAsync(ITransport transport, IBaseProtocol protocol, SslClientAuthenticationOptions options,
        double handshakeTimeout = SslProtocol.DefaultHandshakeTimeout, double shutdownTimeout = SslProtocol.DefaultShutdownTimeout,
        CancellationToken cancellationToken = default);

    /// <summary>
    /// Upgrades a connected stream transport to TLS as its server side (asyncio's <c>start_tls(server_side=True)</c>):
    /// returns the TLS transport, which <paramref name="protocol"/> must use from then on.
    /// </summary>
    /// <param name="transport">The transport to upgrade.</param>
    /// <param name="protocol">The protocol that gets the decrypted data.</param>
    /// <param name="options">The certificate (or selection callback), client-certificate policy, ALPN protocols.</param>
    /// <param name="handshakeTimeout">Seconds the handshake may take (60 by default).</param>
    /// <param name="shutdownTimeout">Seconds a close waits for the peer's close_notify (30 by default).</param>
    /// <param name="cancellationToken">Cancels the upgrade; the transport is then closed.</param>
    /// <exception cref="System.Security.Authentication.AuthenticationException">The handshake failed; the message says why. The transport is closed.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="transport"/> is closing, or already carries TLS (its protocol is a TLS
    /// layer: upgrade the TLS transport it gave instead).</exception>
    LoopTask<ITransport> StartTlsAsync(ITransport transport, IBaseProtocol protocol, SslServerAuthenticationOptions options,
        double handshakeTimeout = SslProtocol.DefaultHandshakeTimeout, double shutdownTimeout = SslProtocol.DefaultShutdownTimeout,
        CancellationToken cancellationToken = default);

    /// <summary>
    /// Sends <paramref name="count"/> bytes of <paramref name="file"/> from <paramref name="offset"/>
    /// (null: to the end) over <paramref name="transport"/>, with sendfile(2) where possible; returns
    /// the bytes sent. asyncio's <c>loop.sendfile</c>.
    /// </summary>
    /// <remarks>
    /// <para>
    /// What was written before is sent first: the call waits for the transport's write buffer to
    /// drain. While it runs the transport does not read, and <see cref="IWriteTransport.Write"/>
    /// throws; both resume when it ends, however it ends. <see cref="IBaseTransport.Close"/> lets it
    /// finish and then closes; <see cref="IWriteTransport.Abort"/> stops it.
    /// </para>
    /// <para>
    /// With <paramref name="fallback"/> true (the default), a file sendfile(2) cannot send is read and
    /// written instead. The file's position ends at <c>offset + sent</c>, also when cancelled.
    /// </para>
    /// </remarks>
    /// <exception cref="SendfileNotAvailableError"><paramref name="fallback"/> is false and sendfile(2) cannot be used.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="offset"/> is negative or <paramref name="count"/> is not positive.</exception>
    /// <exception cref="InvalidOperationException">The transport is closing, or already sending a file.</exception>
    LoopTask<long> SendFileAsync(ITransport transport, FileStream file, long offset = 0, long? count = null,
        bool fallback = true, CancellationToken cancellationToken = default);

    /// <summary>Creates a datagram endpoint bound to <paramref name="localAddress"/> and/or connected to <paramref name="remoteAddress"/>.</summary>
    LoopTask<(IDatagramTransport Transport, TProtocol Protocol)> CreateDatagramEndpointAsync<TProtocol>(Func<TProtocol> protocolFactory,
        EndPoint? localAddress, EndPoint? remoteAddress, DatagramOptions? options = null, CancellationToken cancellationToken = default)
        where TProtocol : IDatagramProtocol;

    // ---- Wrapped socket methods (optional) -------------------------------------------------

    /// <summary>Receives up to <paramref name="buffer"/>.Length bytes from a non-blocking socket; 0 at EOF.</summary>
    LoopTask<int> SockRecvAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>Receives into <paramref name="buffer"/> (asyncio's <c>sock_recv_into</c>); returns the count.</summary>
    LoopTask<int> SockRecvIntoAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>Sends all of <paramref name="data"/>.</summary>
    LoopTask SockSendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default);

    /// <summary>
    /// <see cref="SockRecvAsync"/> as a .NET <see cref="ValueTask{TResult}"/>: receives up to
    /// <paramref name="buffer"/>.Length bytes from a non-blocking socket; 0 at EOF. Allocates nothing
    /// when the bytes are there, nor in the steady state when it waits (the loop reuses the operation).
    /// </summary>
    /// <remarks>
    /// <para>
    /// Call it on the loop thread and await it once, right away (as any <see cref="ValueTask{TResult}"/>;
    /// <c>AsTask()</c> to keep it). It is not a loop task: it cannot be given to <see cref="Tasks"/>
    /// combinators as a future, and <see cref="SockRecvAsync"/> is the form that is one.
    /// </para>
    /// <para>
    /// Cancellation: <paramref name="cancellationToken"/> cancels this receive only; the cancellation
    /// of the loop task that called it (<c>Cancel()</c>, a timeout, a task group) cancels it too. A
    /// cancelled receive is withdrawn before it took any byte, and the await throws
    /// <see cref="CancelledError"/> (an <see cref="OperationCanceledException"/>); bytes that arrived
    /// first are returned instead, never lost. One receive at a time per socket (a readiness loop refuses a second while one waits).
    /// </para>
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    /// <exception cref="ArgumentException">The socket is blocking.</exception>
    /// <exception cref="InvalidOperationException">Not on the loop thread, the loop is closed, a transport owns the socket, or (on a readiness loop) a receive is already waiting on it.</exception>
    /// <exception cref="NotSupportedException">The loop has no sockets.</exception>
    ValueTask<int> SockRecvValueAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>
    /// <see cref="SockSendAllAsync"/> as a .NET <see cref="ValueTask"/>: sends all of
    /// <paramref name="data"/>. Allocates nothing when the kernel takes it at once, nor in the steady
    /// state when it waits for room.
    /// </summary>
    /// <remarks>As <see cref="SockRecvValueAsync"/>: the loop thread, one await, cancelled by the token or
    /// the calling task; a cancelled send stops between writes (what the kernel took is sent). One send at a time per socket (a readiness loop refuses a second while one waits).</remarks>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    /// <exception cref="ArgumentException">The socket is blocking.</exception>
    /// <exception cref="InvalidOperationException">Not on the loop thread, the loop is closed, a transport owns the socket, or (on a readiness loop) a send is already waiting on it.</exception>
    /// <exception cref="NotSupportedException">The loop has no sockets.</exception>
    ValueTask SockSendAllValueAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default);

    /// <summary>
    /// <see cref="SockRecvIntoAsync"/> as a .NET <see cref="ValueTask{TResult}"/>: receives into
    /// <paramref name="buffer"/> and returns the count (0 at EOF). The same operation as
    /// <see cref="SockRecvValueAsync"/> (asyncio's <c>sock_recv_into</c> beside <c>sock_recv</c>), with its rules.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    /// <exception cref="ArgumentException">The socket is blocking.</exception>
    /// <exception cref="InvalidOperationException">As for <see cref="SockRecvValueAsync"/>.</exception>
    /// <exception cref="NotSupportedException">The loop has no sockets.</exception>
    ValueTask<int> SockRecvIntoValueAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>
    /// <see cref="SockRecvFromAsync"/> as a .NET <see cref="ValueTask{TResult}"/>, in the shape of
    /// <see cref="Socket.ReceiveFromAsync(Memory{byte}, SocketFlags, SocketAddress, CancellationToken)"/>:
    /// receives one datagram into <paramref name="buffer"/> (cut to its length if longer, as asyncio's
    /// <c>sock_recvfrom</c>), writes the sender's address into <paramref name="receivedAddress"/> and
    /// returns the count. Allocates nothing when a datagram is waiting; one that waits costs, on a
    /// readiness loop, the fd's registration while it waits (as asyncio's <c>add_reader</c>).
    /// </summary>
    /// <remarks>As <see cref="SockRecvValueAsync"/>: the loop thread, one await, cancelled by the token or
    /// the calling task (a cancelled receive takes no datagram). Make the address once,
    /// <c>new SocketAddress(socket.AddressFamily)</c>, and reuse it; <c>endPoint.Create(address)</c> makes an
    /// <see cref="EndPoint"/> of it when one is needed.</remarks>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> or <paramref name="receivedAddress"/> is null.</exception>
    /// <exception cref="ArgumentException">The socket is blocking, or the address is of another family or has less room than its family's largest address.</exception>
    /// <exception cref="InvalidOperationException">As for <see cref="SockRecvValueAsync"/>.</exception>
    /// <exception cref="NotSupportedException">The loop has no sockets.</exception>
    ValueTask<int> SockRecvFromValueAsync(Socket socket, Memory<byte> buffer, SocketAddress receivedAddress, CancellationToken cancellationToken = default);

    /// <summary>
    /// <see cref="SockSendToAsync"/> as a .NET <see cref="ValueTask{TResult}"/>, in the shape of
    /// <see cref="Socket.SendToAsync(ReadOnlyMemory{byte}, SocketFlags, SocketAddress, CancellationToken)"/>:
    /// sends <paramref name="data"/> as one datagram to <paramref name="address"/> and returns its length.
    /// Allocates nothing when the kernel takes it at once; one that waits for room costs what a waiting
    /// <see cref="SockRecvFromValueAsync"/> does.
    /// </summary>
    /// <remarks>As <see cref="SockSendAllValueAsync"/>: the loop thread, one await, cancelled by the token
    /// or the calling task (a cancelled send sends nothing).</remarks>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> or <paramref name="address"/> is null.</exception>
    /// <exception cref="ArgumentException">The socket is blocking, or the address is of another family.</exception>
    /// <exception cref="InvalidOperationException">As for <see cref="SockSendAllValueAsync"/>.</exception>
    /// <exception cref="NotSupportedException">The loop has no sockets.</exception>
    ValueTask<int> SockSendToValueAsync(Socket socket, ReadOnlyMemory<byte> data, SocketAddress address, CancellationToken cancellationToken = default);

    /// <summary>
    /// <see cref="SockAcceptAsync"/> as a .NET <see cref="ValueTask{TResult}"/>: accepts a connection on
    /// a non-blocking listening socket and returns it, non-blocking. Beyond the accepted socket itself,
    /// allocates nothing when a connection is waiting, nor in the steady state when it waits (the loop
    /// reuses the operation).
    /// </summary>
    /// <remarks>As <see cref="SockRecvValueAsync"/>: the loop thread, one await, cancelled by the token or the
    /// calling task. A cancelled accept is withdrawn before it took a connection (the connection stays in
    /// the listener's backlog for the next accept); one accepted first is returned instead, never lost.
    /// One accept at a time per listener (a readiness loop refuses a second while one waits).</remarks>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    /// <exception cref="ArgumentException">The socket is blocking.</exception>
    /// <exception cref="InvalidOperationException">Not on the loop thread, the loop is closed, a transport owns the socket, or (on a readiness loop) an accept is already waiting on it.</exception>
    /// <exception cref="NotSupportedException">The loop has no sockets.</exception>
    ValueTask<Socket> SockAcceptValueAsync(Socket socket, CancellationToken cancellationToken = default);

    /// <summary>
    /// <see cref="SockConnectAsync"/> as a .NET <see cref="ValueTask"/>: connects a non-blocking socket to
    /// a resolved <paramref name="address"/>. Allocates no loop object in the steady state (what the
    /// runtime's <see cref="Socket"/> allocates to connect is its own).
    /// </summary>
    /// <remarks>As <see cref="SockRecvValueAsync"/>: the loop thread, one await, cancelled by the token or the
    /// calling task; a cancelled connect is abandoned (close the socket: it may be half-way through the
    /// handshake). An AF_UNIX connect to a full backlog retries as <see cref="SockConnectAsync"/> does.</remarks>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> or <paramref name="address"/> is null.</exception>
    /// <exception cref="ArgumentException">The socket is blocking, or <paramref name="address"/> is a <see cref="DnsEndPoint"/> (resolve it with <c>GetAddrInfoAsync</c> first).</exception>
    /// <exception cref="InvalidOperationException">Not on the loop thread, the loop is closed, a transport owns the socket, or (on a readiness loop) a send or connect is already waiting on it.</exception>
    /// <exception cref="NotSupportedException">The loop has no sockets.</exception>
    ValueTask SockConnectValueAsync(Socket socket, EndPoint address, CancellationToken cancellationToken = default);

    /// <summary>Connects a non-blocking socket.</summary>
    LoopTask SockConnectAsync(Socket socket, EndPoint address, CancellationToken cancellationToken = default);

    /// <summary>Accepts a connection on a listening socket.</summary>
    LoopTask<Socket> SockAcceptAsync(Socket socket, CancellationToken cancellationToken = default);

    /// <summary>
    /// Receives a datagram into <paramref name="buffer"/> and returns its length and its sender
    /// (asyncio's <c>sock_recvfrom</c>, with the caller's buffer). A datagram longer than the buffer is cut.
    /// </summary>
    LoopTask<(int Count, EndPoint Address)> SockRecvFromAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>
    /// Receives a datagram into the first <paramref name="count"/> bytes of <paramref name="buffer"/>
    /// (0, the default: all of it) and returns the bytes received and the sender: asyncio's
    /// <c>sock_recvfrom_into(sock, buf, nbytes)</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative or larger than the buffer.</exception>
    /// <exception cref="ArgumentException">The socket is blocking.</exception>
    LoopTask<(int Count, EndPoint Address)> SockRecvFromIntoAsync(Socket socket, Memory<byte> buffer, int count = 0,
        CancellationToken cancellationToken = default);

    /// <summary>Sends a datagram to <paramref name="address"/>; returns the bytes sent.</summary>
    LoopTask<int> SockSendToAsync(Socket socket, ReadOnlyMemory<byte> data, EndPoint address, CancellationToken cancellationToken = default);

    /// <summary>
    /// Sends <paramref name="count"/> bytes of <paramref name="file"/> from <paramref name="offset"/>
    /// (null: to the end) over a connected, non-blocking stream socket, with sendfile(2) where
    /// possible; returns the bytes sent. asyncio's <c>loop.sock_sendfile</c>.
    /// </summary>
    /// <remarks>
    /// With <paramref name="fallback"/> true (the default), a file sendfile(2) cannot send (not a
    /// regular file, or refused by the kernel) is read and sent instead. The file's position ends at
    /// <c>offset + sent</c>, also when the call is cancelled, so the bytes that reached the socket and
    /// the position agree and the socket stays usable.
    /// </remarks>
    /// <exception cref="SendfileNotAvailableError"><paramref name="fallback"/> is false and sendfile(2) cannot be used.</exception>
    /// <exception cref="ArgumentException">The socket is blocking or not a stream socket, or the file is not readable.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="offset"/> is negative or <paramref name="count"/> is not positive.</exception>
    /// <exception cref="ObjectDisposedException">The file is closed.</exception>
    LoopTask<long> SockSendFileAsync(Socket socket, FileStream file, long offset = 0, long? count = null,
        bool fallback = true, CancellationToken cancellationToken = default);

    // ---- I/O callbacks (optional: readiness multiplexers) ----------------------------------

    /// <summary>
    /// Calls <paramref name="callback"/> whenever <paramref name="fd"/> is readable, until removed.
    /// Adding again for the same fd replaces the callback (the old handle is cancelled).
    /// </summary>
    Handle AddReader(int fd, Action callback);

    /// <summary>As <see cref="AddReader(int, Action)"/> for a handle's fd.</summary>
    Handle AddReader(SafeHandle handle, Action callback);

    /// <summary>As <see cref="AddReader(int, Action)"/> for a socket.</summary>
    Handle AddReader(Socket socket, Action callback);

    /// <summary>Stops watching <paramref name="fd"/> for reading; returns whether a reader was registered.</summary>
    bool RemoveReader(int fd);

    /// <summary>As <see cref="RemoveReader(int)"/> for a handle's fd.</summary>
    bool RemoveReader(SafeHandle handle);

    /// <summary>As <see cref="RemoveReader(int)"/> for a socket.</summary>
    bool RemoveReader(Socket socket);

    /// <summary>Calls <paramref name="callback"/> whenever <paramref name="fd"/> is writable, until removed.</summary>
    Handle AddWriter(int fd, Action callback);

    /// <summary>As <see cref="AddWriter(int, Action)"/> for a handle's fd.</summary>
    Handle AddWriter(SafeHandle handle, Action callback);

    /// <summary>As <see cref="AddWriter(int, Action)"/> for a socket.</summary>
    Handle AddWriter(Socket socket, Action callback);

    /// <summary>Stops watching <paramref name="fd"/> for writing; returns whether a writer was registered.</summary>
    bool RemoveWriter(int fd);

    /// <summary>As <see cref="RemoveWriter(int)"/> for a handle's fd.</summary>
    bool RemoveWriter(SafeHandle handle);

    /// <summary>As <see cref="RemoveWriter(int)"/> for a socket.</summary>
    bool RemoveWriter(Socket socket);

    // ---- Pipes and subprocesses (optional) -------------------------------------------------

    /// <summary>
    /// Joins the read end of a pipe (or a FIFO, a character device, a socketpair end: any pollable
    /// fd) to a new protocol, an <see cref="IProtocol"/> or <see cref="IBufferedProtocol"/>. The fd
    /// is made non-blocking. The transport owns the pipe and closes it when the connection is lost.
    /// At the end of the data the protocol gets <see cref="IProtocol.EofReceived"/>, then
    /// <see cref="IBaseProtocol.ConnectionLost"/> with null.
    /// </summary>
    /// <remarks>If the call throws, the pipe is left open and is still the caller's, unless the
    /// transport had been made (ConnectionMade threw, or the call was cancelled waiting for it): then it is closed.</remarks>
    /// <exception cref="ArgumentException">The fd is not open, not readable, or not pollable (a regular file or a directory).</exception>
    /// <exception cref="ObjectDisposedException">The handle is closed.</exception>
    LoopTask<(IReadTransport Transport, TProtocol Protocol)> ConnectReadPipeAsync<TProtocol>(Func<TProtocol> protocolFactory,
        SafeHandle pipe, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol;

    /// <summary>
    /// As <see cref="ConnectReadPipeAsync{TProtocol}(Func{TProtocol}, SafeHandle, CancellationToken)"/>
    /// for a stream that wraps an fd: a <see cref="FileStream"/>, a <see cref="System.IO.Pipes.PipeStream"/>
    /// or a <see cref="NetworkStream"/>. The transport owns the stream and disposes it at the end.
    /// </summary>
    /// <exception cref="ArgumentException">The stream wraps no fd, or the fd is not a readable pollable one.</exception>
    LoopTask<(IReadTransport Transport, TProtocol Protocol)> ConnectReadPipeAsync<TProtocol>(Func<TProtocol> protocolFactory,
        Stream pipe, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol;

    /// <summary>As <see cref="ConnectReadPipeAsync{TProtocol}(Func{TProtocol}, SafeHandle, CancellationToken)"/> for a raw fd, which the transport then owns and closes.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The fd is negative.</exception>
    LoopTask<(IReadTransport Transport, TProtocol Protocol)> ConnectReadPipeAsync<TProtocol>(Func<TProtocol> protocolFactory,
        int fd, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol;

    /// <summary>
    /// Joins the write end of a pipe (or a FIFO, a character device, a socketpair end) to a new
    /// protocol. The fd is made non-blocking; the transport owns the pipe and closes it when the
    /// connection is lost. For pipes and sockets the transport also notices the reader going away
    /// (the fd turns readable or reports an error) and ends with <see cref="IBaseProtocol.ConnectionLost"/>:
    /// null if nothing was left to send, an <see cref="IOException"/> for EPIPE if data was lost.
    /// A write the kernel refuses with EPIPE ends the same way; the process never gets SIGPIPE (.NET ignores it).
    /// </summary>
    /// <remarks>Ownership on failure as for <see cref="ConnectReadPipeAsync{TProtocol}(Func{TProtocol}, SafeHandle, CancellationToken)"/>.
    /// <see cref="IWriteTransport.WriteEof"/> closes the pipe once the buffer is sent, as <see cref="IBaseTransport.Close"/> does.</remarks>
    /// <exception cref="ArgumentException">The fd is not open, not writable, or not pollable.</exception>
    /// <exception cref="ObjectDisposedException">The handle is closed.</exception>
    LoopTask<(IWriteTransport Transport, TProtocol Protocol)> ConnectWritePipeAsync<TProtocol>(Func<TProtocol> protocolFactory,
        SafeHandle pipe, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol;

    /// <summary>As <see cref="ConnectWritePipeAsync{TProtocol}(Func{TProtocol}, SafeHandle, CancellationToken)"/> for a stream that wraps an fd (see the read overload).</summary>
    /// <exception cref="ArgumentException">The stream wraps no fd, or the fd is not a writable pollable one.</exception>
    LoopTask<(IWriteTransport Transport, TProtocol Protocol)> ConnectWritePipeAsync<TProtocol>(Func<TProtocol> protocolFactory,
        Stream pipe, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol;

    /// <summary>As <see cref="ConnectWritePipeAsync{TProtocol}(Func{TProtocol}, SafeHandle, CancellationToken)"/> for a raw fd, which the transport then owns and closes.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The fd is negative.</exception>
    LoopTask<(IWriteTransport Transport, TProtocol Protocol)> ConnectWritePipeAsync<TProtocol>(Func<TProtocol> protocolFactory,
        int fd, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol;

    /// <summary>
    /// Starts <paramref name="program"/> with <paramref name="arguments"/> (asyncio's <c>subprocess_exec</c>)
    /// and joins it to a new protocol; completes once <see cref="IBaseProtocol.ConnectionMade"/> has run.
    /// </summary>
    /// <remarks>
    /// <para>The child's argv is <paramref name="program"/> followed by <paramref name="arguments"/>; the file run is
    /// <see cref="SubprocessOptions.Executable"/> if given, else <paramref name="program"/>, looked up in the child's
    /// PATH when it has no '/'. Its stdin, stdout and stderr are pipes unless the options say otherwise; the
    /// protocol hears of them through <see cref="ISubprocessProtocol"/>, in asyncio's order.</para>
    /// <para>No fd of this process leaks into the child but those of <see cref="SubprocessOptions.PassFds"/>.
    /// The implementation is the loop's <see cref="ISubprocessTransportFactory"/> (<see cref="Transports"/>);
    /// readiness loops on Linux have the library's (posix_spawn, watched by pidfd). A program that cannot be
    /// started fails the call and leaves no fd, pipe or child behind; a call cancelled after the start kills and
    /// reaps the child.</para>
    /// </remarks>
    /// <exception cref="ArgumentException">An argument or option is invalid (an empty program, a NUL in a string,
    /// stderr-to-stdout given for stdin or stdout, a pass fd below 3 or not open, both a new session and a process group).</exception>
    /// <exception cref="System.IO.FileNotFoundException">The program does not exist (ENOENT), as System.Diagnostics.Process throws.</exception>
    /// <exception cref="System.IO.DirectoryNotFoundException">The working directory does not exist.</exception>
    /// <exception cref="System.ComponentModel.Win32Exception">The program cannot be started for another reason (not executable: EACCES, ENOEXEC...).</exception>
    /// <exception cref="NotSupportedException">The loop has no subprocess implementation.</exception>
    LoopTask<(ISubprocessTransport Transport, TProtocol Protocol)> SubprocessExecAsync<TProtocol>(Func<TProtocol> protocolFactory,
        string program, IReadOnlyList<string> arguments, SubprocessOptions? options = null, CancellationToken cancellationToken = default)
        where TProtocol : ISubprocessProtocol;

    /// <summary>
    /// Runs <paramref name="command"/> through <c>/bin/sh -c</c> (asyncio's <c>subprocess_shell</c>) and joins it to
    /// a new protocol, as <see cref="SubprocessExecAsync{TProtocol}"/> does for /bin/sh; the command is the shell's, quoting included.
    /// </summary>
    /// <exception cref="ArgumentException">The command is empty or holds a NUL, or an option is invalid.</exception>
    /// <exception cref="NotSupportedException">The loop has no subprocess implementation.</exception>
    LoopTask<(ISubprocessTransport Transport, TProtocol Protocol)> SubprocessShellAsync<TProtocol>(Func<TProtocol> protocolFactory,
        string command, SubprocessOptions? options = null, CancellationToken cancellationToken = default)
        where TProtocol : ISubprocessProtocol;

    // ---- Transports that third parties add (seed 002) -----------------------------------------

    /// <summary>
    /// This loop's registry of transport implementations, keyed by feature type: how a transport that
    /// is not a method of the loop finds the implementation that suits the loop's multiplexer.
    /// See <see cref="TransportRegistry"/>, <see cref="IReadinessEventLoop"/> and <see cref="ICompletionEventLoop"/>.
    /// </summary>
    TransportRegistry Transports { get; }

    // ---- Signals (optional) ------------------------------------------------------------------

    /// <summary>Runs <paramref name="callback"/> on the loop thread whenever <paramref name="signal"/> arrives.</summary>
    /// <exception cref="ArgumentException">The signal cannot be handled.</exception>
    void AddSignalHandler(PosixSignal signal, Action callback);

    /// <summary>Removes the handler for <paramref name="signal"/>, restoring the default behaviour; returns whether one was set.</summary>
    bool RemoveSignalHandler(PosixSignal signal);

    // ---- Errors and debugging ----------------------------------------------------------------

    /// <summary>
    /// Sets the handler for errors nobody else can take (an exception from a callback, a task
    /// exception never retrieved...). Null restores the default, which logs.
    /// </summary>
    void SetExceptionHandler(Action<IEventLoop, ExceptionContext>? handler);

    /// <summary>The handler set with <see cref="SetExceptionHandler"/>, or null for the default.</summary>
    Action<IEventLoop, ExceptionContext>? GetExceptionHandler();

    /// <summary>Hands <paramref name="context"/> to the exception handler.</summary>
    void CallExceptionHandler(ExceptionContext context);

    /// <summary>The default handler: logs the context through the loop's logger.</summary>
    void DefaultExceptionHandler(ExceptionContext context);

    /// <summary>
    /// Debug mode: wrong-thread calls throw, slow callbacks are logged, handles and futures remember
    /// where they were created. Defaults to on when the environment variable TULIP_DEBUG is 1.
    /// </summary>
    bool Debug { get; set; }

    /// <summary>In debug mode, callbacks that take longer than this many seconds are logged. Defaults to 0.1.</summary>
    double SlowCallbackDuration { get; set; }
}
