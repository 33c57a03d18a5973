using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace Tulip;

// The PEP's optional groups. The base loop has no multiplexer, so each member refuses with a
// NotSupportedException that says what is missing and what to do instead; the multiplexers
// override what they provide. Subprocesses (BaseEventLoop.Subprocesses.cs) and TLS (BaseEventLoop.Tls.cs)
// are the base loop's own: subprocesses resolve their implementation in the registry, TLS is layered
// over whatever stream transport the multiplexer makes.
// The connection, server and datagram-endpoint methods are not here: the base loop implements
// them (BaseEventLoop.Streams.cs, .Datagrams.cs) on the hooks of BaseEventLoop.TransportHooks.cs
// and on the Sock* primitives below.
public abstract partial class BaseEventLoop
{
    /// <summary>
    /// The exception an unsupported optional member throws: it names the loop and the member, and
    /// <see cref="SupportHint"/> says what to do instead.
    /// </summary>
    protected NotSupportedException Unsupported([CallerMemberName] string member = "") =>
        new($"{GetType().Name} does not support {member}. {SupportHint(member)}");

    /// <summary>What to do instead of <paramref name="member"/>, for <see cref="Unsupported"/>'s message.</summary>
    /// <remarks>
    /// The base answers for the subprocess members (<see cref="SubprocessExecAsync{TProtocol}"/>,
    /// <see cref="SubprocessShellAsync{TProtocol}"/>), which a loop lacks when its registry has no
    /// <see cref="ISubprocessTransportFactory"/>, and, for the rest, points to <see cref="SelectorEventLoop"/>
    /// and Tulip.Testing. A loop that overrides it should return the base's answer for the members it has no better advice on.
    /// </remarks>
    protected virtual string SupportHint(string member) => member switch
    {
        nameof(SubprocessExecAsync) or nameof(SubprocessShellAsync) =>
            $"This loop has no {nameof(ISubprocessTransportFactory)} in its registry: SelectorEventLoop (epoll, poll) on Linux has one, " +
            $"or register one with loop.Transports.Register<{nameof(ISubprocessTransportFactory)}>(...); meanwhile start the child with " +
            "System.Diagnostics.Process (streams redirected) and connect its streams with ConnectReadPipeAsync/ConnectWritePipeAsync.",
        _ => this is SelectorEventLoop
            ? "No SelectorEventLoop override provides it; the in-memory transports of Tulip.Testing may stand in for it in tests."
            : "Use SelectorEventLoop (EventLoop.NewEventLoop() on Linux) for real I/O, or the in-memory transports of Tulip.Testing in tests.",
    };

    /// <inheritdoc/>
    public virtual LoopTask<long> SendFileAsync(ITransport transport, FileStream file, long offset = 0, long? count = null,
        bool fallback = true, CancellationToken cancellationToken = default) => throw Unsupported();

    /// <inheritdoc/>
    public virtual LoopTask<int> SockRecvAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default) => throw Unsupported();

    /// <inheritdoc/>
    public virtual LoopTask<int> SockRecvIntoAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default) => throw Unsupported();

    /// <inheritdoc/>
    public virtual LoopTask SockSendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) => throw Unsupported();

    /// <inheritdoc/>
    public virtual LoopTask SockConnectAsync(Socket socket, EndPoint address, CancellationToken cancellationToken = default) => throw Unsupported();

    /// <inheritdoc/>
    public virtual LoopTask<Socket> SockAcceptAsync(Socket socket, CancellationToken cancellationToken = default) => throw Unsupported();

    /// <inheritdoc/>
    public virtual LoopTask<(int Count, EndPoint Address)> SockRecvFromAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default) => throw Unsupported();

    /// <inheritdoc/>
    public virtual LoopTask<(int Count, EndPoint Address)> SockRecvFromIntoAsync(Socket socket, Memory<byte> buffer, int count = 0,
        CancellationToken cancellationToken = default) => throw Unsupported();

    /// <inheritdoc/>
    public virtual LoopTask<int> SockSendToAsync(Socket socket, ReadOnlyMemory<byte> data, EndPoint address, CancellationToken cancellationToken = default) => throw Unsupported();

    /// <inheritdoc/>
    public virtual LoopTask<long> SockSendFileAsync(Socket socket, FileStream file, long offset = 0, long? count = null,
        bool fallback = true, CancellationToken cancellationToken = default) => throw Unsupported();

    /// <inheritdoc/>
    public virtual Handle AddReader(int fd, Action callback) => throw Unsupported();

    /// <inheritdoc/>
    public Handle AddReader(SafeHandle handle, Action callback) => AddReader(FdOf(handle), callback);

    /// <inheritdoc/>
    public Handle AddReader(Socket socket, Action callback) => AddReader(FdOf(socket), callback);

    /// <inheritdoc/>
    public virtual bool RemoveReader(int fd) => throw Unsupported();

    /// <inheritdoc/>
    public bool RemoveReader(SafeHandle handle) => RemoveReader(FdOf(handle));

    /// <inheritdoc/>
    public bool RemoveReader(Socket socket) => RemoveReader(FdOf(socket));

    /// <inheritdoc/>
    public virtual Handle AddWriter(int fd, Action callback) => throw Unsupported();

    /// <inheritdoc/>
    public Handle AddWriter(SafeHandle handle, Action callback) => AddWriter(FdOf(handle), callback);

    /// <inheritdoc/>
    public Handle AddWriter(Socket socket, Action callback) => AddWriter(FdOf(socket), callback);

    /// <inheritdoc/>
    public virtual bool RemoveWriter(int fd) => throw Unsupported();

    /// <inheritdoc/>
    public bool RemoveWriter(SafeHandle handle) => RemoveWriter(FdOf(handle));

    /// <inheritdoc/>
    public bool RemoveWriter(Socket socket) => RemoveWriter(FdOf(socket));

    /// <summary>The fd of a handle, checked.</summary>
    protected static int FdOf(SafeHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        ObjectDisposedException.ThrowIf(handle.IsClosed, handle);
        if (handle.IsInvalid)
        {
            throw new ArgumentException("The handle is invalid: it has no file descriptor.", nameof(handle));
        }

        return checked((int)handle.DangerousGetHandle());
    }

    /// <summary>The fd of a socket, checked.</summary>
    protected static int FdOf(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        return FdOf(socket.SafeHandle);
    }
}
