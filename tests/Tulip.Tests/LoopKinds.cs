using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Tulip.Testing;

namespace Tulip.Tests;

/// <summary>
/// One kind of event loop the contract suites run on: a name for test output, a factory, and the
/// few probes into the loop that some tests need (what it holds, what it watches), so that the
/// suites see the loop only through <see cref="BaseEventLoop"/> (public API) and capabilities such
/// as <see cref="IReadinessEventLoop"/>, never through the concrete type.
/// </summary>
/// <remarks>
/// A probe a kind does not give throws <see cref="NotSupportedException"/> naming it, so a test that
/// needs it fails on that kind (it does not pass by doing nothing).
/// </remarks>
public sealed class LoopKind
{
    private readonly Func<ILoggerFactory?, BaseEventLoop> _create;
    private readonly Func<BaseEventLoop, int[]>? _ownFds;
    private readonly Func<BaseEventLoop, int>? _registrations;
    private readonly Action<BaseEventLoop, bool>? _useNativeSendFile;
    private readonly Func<Server, int>? _serverClients;
    private readonly Func<BaseEventLoop, int, bool>? _isRegistered;
    private readonly Func<BaseEventLoop, Socket, IBaseProtocol, Future<VoidResult>, ITransport>? _rawSocketTransport;
    private readonly Func<ITransport, int>? _undelivered;

    /// <summary>Describes a loop kind.</summary>
    /// <param name="name">Short name shown in test output and accepted by <see cref="LoopKinds.Named"/>.</param>
    /// <param name="create">Makes a new, open loop of this kind.</param>
    /// <param name="readiness">Whether its loops are <see cref="IReadinessEventLoop"/>s (fd
    /// readiness): the suites that need it run only on such kinds (<see cref="LoopKinds.ReadinessNames"/>).
    /// <c>LoopKindsTests</c> checks the declaration against a loop.</param>
    /// <param name="ownFds">The fds a loop of this kind holds itself (its multiplexer, its wake-up),
    /// which <see cref="BaseEventLoop.Close"/> must release.</param>
    /// <param name="registrations">How much I/O the loop is watching for someone: fds registered with
    /// a selector, operations outstanding on a completion loop. Back to where it was once the
    /// transports and calls that used it are gone.</param>
    /// <param name="useNativeSendFile">Turns the kernel's zero-copy file send on or off, so the
    /// fallback (read and write) runs on files the kernel would send natively.</param>
    /// <param name="serverClients">How many connections a server of this kind holds (accepted, not yet lost).</param>
    /// <param name="isRegistered">Whether the loop still watches an fd for anyone (reader or writer,
    /// its own or a transport's).</param>
    /// <param name="reportsClosedFds">Whether the loop sees a watched fd being closed behind its back
    /// and reports it to the exception handler (poll's POLLNVAL), rather than never hearing of it
    /// (epoll's kernel just forgets the fd). False by default.</param>
    /// <param name="rawSocketTransport">Makes the loop's stream transport over any socket, skipping the
    /// checks of the public calls (which want a connected stream socket), so a test can feed the
    /// transport errors a real connection cannot produce; the waiter completes once ConnectionMade ran.</param>
    /// <param name="undelivered">Bytes that reached a stream transport of this kind and were not given
    /// to its protocol yet: what the kernel holds for the socket, plus, on a completion loop, what a
    /// completed receive holds while reading is paused.</param>
    /// <param name="completionWrites">Whether a stream transport's backlog goes out by sends in flight that
    /// the kernel or runtime still reads from (the proactor, the io_uring loop): its arrays then go back when
    /// those sends complete, a few iterations after an abort, not at once. Null: the opposite of <paramref name="readiness"/>.</param>
    /// <param name="defersWrites">Whether a stream write stays buffered until the end of the loop iteration
    /// even when the socket could take it at once (the io_uring loop's ring writes), instead of every loop's
    /// default, a send inside Write. False by default.</param>
    public LoopKind(string name, Func<ILoggerFactory?, BaseEventLoop> create, bool readiness, Func<BaseEventLoop, int[]>? ownFds = null,
        Func<BaseEventLoop, int>? registrations = null, Action<BaseEventLoop, bool>? useNativeSendFile = null, Func<Server, int>? serverClients = null,
        Func<BaseEventLoop, int, bool>? isRegistered = null, bool reportsClosedFds = false,
        Func<BaseEventLoop, Socket, IBaseProtocol, Future<VoidResult>, ITransport>? rawSocketTransport = null,
        Func<ITransport, int>? undelivered = null, bool? completionWrites = null, bool defersWrites = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(create);
        Name = name;
        Readiness = readiness;
        _create = create;
        _ownFds = ownFds;
        _registrations = registrations;
        _useNativeSendFile = useNativeSendFile;
        _serverClients = serverClients;
        _isRegistered = isRegistered;
        ReportsClosedFds = reportsClosedFds;
        _rawSocketTransport = rawSocketTransport;
        _undelivered = undelivered;
        CompletionWrites = completionWrites ?? !readiness;
        DefersWrites = defersWrites;
    }

    /// <summary>Whether stream writes wait for the end of the iteration (see the constructor).</summary>
    public bool DefersWrites { get; }

    /// <summary>Whether stream writes go out by sends in flight (see the constructor).</summary>
    public bool CompletionWrites { get; }

    /// <summary>Short name: "epoll", "poll", ...</summary>
    public string Name { get; }

    /// <summary>Whether its loops are <see cref="IReadinessEventLoop"/>s.</summary>
    public bool Readiness { get; }

    /// <summary>Whether a watched fd closed behind the loop's back is reported (see the constructor).</summary>
    public bool ReportsClosedFds { get; }

    /// <summary>Makes a new loop of this kind; the caller closes it.</summary>
    public BaseEventLoop Create(ILoggerFactory? loggerFactory = null) => _create(loggerFactory);

    /// <summary>The fds <paramref name="loop"/> (made by <see cref="Create"/>) holds itself.</summary>
    /// <exception cref="NotSupportedException">This kind gives no such probe.</exception>
    public int[] OwnFds(BaseEventLoop loop) => (_ownFds ?? throw Missing("ownFds"))(loop);

    /// <summary>How much I/O <paramref name="loop"/> is watching (see the constructor).</summary>
    /// <exception cref="NotSupportedException">This kind gives no such probe.</exception>
    public int Registrations(BaseEventLoop loop) => (_registrations ?? throw Missing("registrations"))(loop);

    /// <summary>Turns <paramref name="loop"/>'s native file send on or off (see the constructor).</summary>
    /// <exception cref="NotSupportedException">This kind gives no such probe.</exception>
    public void UseNativeSendFile(BaseEventLoop loop, bool native) => (_useNativeSendFile ?? throw Missing("useNativeSendFile"))(loop, native);

    /// <summary>How many connections <paramref name="server"/> (made by a loop of this kind) holds (see the constructor).</summary>
    /// <exception cref="NotSupportedException">This kind gives no such probe.</exception>
    public int ServerClients(Server server) => (_serverClients ?? throw Missing("serverClients"))(server);

    /// <summary>Whether <paramref name="loop"/> still watches <paramref name="fd"/> (see the constructor).</summary>
    /// <exception cref="NotSupportedException">This kind gives no such probe.</exception>
    public bool IsRegistered(BaseEventLoop loop, int fd) => (_isRegistered ?? throw Missing("isRegistered"))(loop, fd);

    /// <summary>The stream transport of <paramref name="loop"/> over <paramref name="socket"/>, unchecked (see the constructor).</summary>
    /// <exception cref="NotSupportedException">This kind gives no such probe.</exception>
    public ITransport RawSocketTransport(BaseEventLoop loop, Socket socket, IBaseProtocol protocol, Future<VoidResult> waiter) =>
        (_rawSocketTransport ?? throw Missing("rawSocketTransport"))(loop, socket, protocol, waiter);

    /// <summary>Bytes that reached <paramref name="transport"/> (a stream transport of this kind) and were not delivered yet (see the constructor).</summary>
    /// <exception cref="NotSupportedException">This kind gives no such probe.</exception>
    public int Undelivered(ITransport transport) => (_undelivered ?? throw Missing("undelivered"))(transport);

    /// <inheritdoc/>
    public override string ToString() => Name;

    /// <summary>
    /// The kind called <paramref name="name"/>: keeps the older bindings by selector name
    /// (<c>base("epoll")</c>) compiling against suites that now take a <see cref="LoopKind"/>.
    /// </summary>
    /// <exception cref="ArgumentException">No kind has that name.</exception>
    public static implicit operator LoopKind(string name) => LoopKinds.Named(name);

    private NotSupportedException Missing(string probe) =>
        new($"Loop kind '{Name}' gives no {probe} probe: add it to its entry in tests/Tulip.Tests/LoopKinds.cs.");
}

/// <summary>
/// The loop kinds every contract suite runs on, in one place. Running the suites on a new loop:
/// add its <see cref="LoopKind"/> here and to <see cref="All"/>; <c>LoopKindsTests</c> then names
/// each suite that still lacks a binding for it (one line per suite:
/// <c>public sealed class XxxStreamTransportTests() : StreamTransportContractTests(LoopKinds.Xxx);</c>).
/// Suites written as theories over <see cref="Names"/> pick the new kind up by themselves.
/// </summary>
/// <remarks>
/// This file is the one place outside the selector's own tests that names
/// <see cref="SelectorEventLoop"/>: what is selector-specific about a kind (its own fds, its
/// registrations, its sendfile switch, its servers' clients, whether it sees closed fds, its raw
/// socket transport) is said here, so the suites need not know.
/// </remarks>
public static class LoopKinds
{
    /// <summary>The selector loop over epoll(7).</summary>
    public static LoopKind Epoll { get; } = Selector("epoll", reportsClosedFds: false);

    /// <summary>The selector loop over poll(2).</summary>
    public static LoopKind Poll { get; } = Selector("poll", reportsClosedFds: true);

    /// <summary>
    /// The selector loop over io_uring poll requests (issue 14's first step; the completion backend is
    /// to come). Its bindings are in IoUring/IoUringBindings.cs. A closed fd is reported when its poll
    /// fires and cannot be re-armed (EBADF), as poll's POLLNVAL; the kernel never reports one whose poll
    /// is still armed (the poll holds the file), so it does not claim <c>reportsClosedFds</c>.
    /// </summary>
    public static LoopKind IoUring { get; } = IoUringKind("io_uring", ringWrites: false);

    /// <summary>
    /// The io_uring loop with ring writes on (<see cref="IoUringEventLoop.RingWrites"/>, <c>TULIP_URING_WRITES=ring</c>):
    /// every stream write leaves by a ring send at the end of the iteration instead of a send(2) inside
    /// Write. Not in <see cref="All"/> (it is the same loop with one switch): bound to the stream suites only,
    /// in IoUring/IoUringRingWritesBindings.cs.
    /// </summary>
    public static LoopKind IoUringRingWrites { get; } = IoUringKind("io_uring-ringwrites", ringWrites: true);

    /// <summary>
    /// The completion loop (<see cref="ProactorEventLoop"/>, .NET's asynchronous sockets), in
    /// <see cref="All"/> since issue 12: every contract suite is bound to it but DuplexPipeSocketTests, marked
    /// NotYetOnLoopKind for an intermittent hang there. The readiness-only tests
    /// (AddReader/AddWriter, stale fds) are theories over <see cref="ReadinessNames"/>. Its registrations
    /// probe is <see cref="ProactorEventLoop.OutstandingOperations"/> (operations in flight, and write
    /// pipes watching for their reader); its undelivered probe adds a held receive to what the kernel holds.
    /// </summary>
    public static LoopKind Proactor { get; } = new("proactor", static lf => new ProactorEventLoop(lf), readiness: false,
        ownFds: static _ => [],
        registrations: static loop => ((ProactorEventLoop)loop).OutstandingOperations,
        useNativeSendFile: static (loop, native) => ((ProactorEventLoop)loop).UseNativeSendFile = native,
        serverClients: static server => ((BaseEventLoop.SocketServer)server).ClientCount,
        rawSocketTransport: static (loop, socket, protocol, waiter) => new ProactorSocketTransport((ProactorEventLoop)loop, socket, protocol, waiter, null),
        undelivered: static transport => ((ProactorSocketTransport)transport).UndeliveredBytes);

    /// <summary>
    /// Tulip.Testing's in-memory loop (virtual clock, connections joined in memory, no fd). A fake, so
    /// not in <see cref="All"/>: it is bound only to the suites whose tests need no real socket.
    /// </summary>
    public static LoopKind Memory { get; } = new("memory", static lf => new MemoryEventLoop(loggerFactory: lf), readiness: false,
        ownFds: static _ => [], registrations: static _ => 0, serverClients: static server => ((MemoryServer)server).Clients.Count);

    /// <summary>Every real loop: each contract suite is bound to each of these.</summary>
    public static IReadOnlyList<LoopKind> All { get; } = [Epoll, Poll, IoUring, Proactor];

    /// <summary>The names of <see cref="All"/>, as theory data (<c>[MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]</c>).</summary>
    public static TheoryData<string> Names => new(All.Select(k => k.Name));

    /// <summary>The names of the kinds in <see cref="All"/> with fd readiness, as theory data: for tests of <see cref="IReadinessEventLoop"/>.</summary>
    public static TheoryData<string> ReadinessNames => new(All.Where(k => k.Readiness).Select(k => k.Name));

    /// <summary>The kind called <paramref name="name"/> (in <see cref="All"/>, <see cref="Proactor"/> or <see cref="Memory"/>).</summary>
    /// <exception cref="ArgumentException">No kind has that name; the message lists the known ones.</exception>
    public static LoopKind Named(string name) =>
        All.Append(Proactor).Append(IoUringRingWrites).Append(Memory).Distinct().FirstOrDefault(k => k.Name == name)
        ?? throw new ArgumentException($"No loop kind is called '{name}'; known kinds: {string.Join(", ", All.Append(Proactor).Append(IoUringRingWrites).Append(Memory).Distinct().Select(k => k.Name))}.", nameof(name));

    private static LoopKind IoUringKind(string name, bool ringWrites) => new(name, lf => new IoUringEventLoop(lf) { RingWrites = ringWrites }, readiness: true,
        ownFds: static loop => ((SelectorEventLoop)loop).OwnFds,
        registrations: static loop => ((SelectorEventLoop)loop).WatchingRegistrationCount + ((IoUringEventLoop)loop).OperationsInKernel,
        useNativeSendFile: static (loop, native) => ((SelectorEventLoop)loop).UseNativeSendFile = native,
        serverClients: static server => ((BaseEventLoop.SocketServer)server).ClientCount,
        isRegistered: static (loop, fd) => ((SelectorEventLoop)loop).IsRegistered(fd),
        reportsClosedFds: false,
        rawSocketTransport: static (loop, socket, protocol, waiter) => new IoUringSocketTransport((IoUringEventLoop)loop, socket, protocol, waiter, null),
        undelivered: static transport => ((IoUringSocketTransport)transport).UndeliveredBytes, completionWrites: true,
        defersWrites: ringWrites);

    private static LoopKind Selector(string selector, bool reportsClosedFds) => new(selector, lf => new SelectorEventLoop(selector, lf), readiness: true,
        ownFds: static loop => ((SelectorEventLoop)loop).OwnFds,
        registrations: static loop => ((SelectorEventLoop)loop).RegistrationCount,
        useNativeSendFile: static (loop, native) => ((SelectorEventLoop)loop).UseNativeSendFile = native,
        serverClients: static server => ((BaseEventLoop.SocketServer)server).ClientCount,
        isRegistered: static (loop, fd) => ((SelectorEventLoop)loop).IsRegistered(fd),
        reportsClosedFds: reportsClosedFds,
        rawSocketTransport: static (loop, socket, protocol, waiter) => new SelectorSocketTransport((SelectorEventLoop)loop, socket, protocol, waiter, null),
        undelivered: static transport => ((SelectorSocketTransport)transport).Socket.Available);
}
