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
// NotSupportedException that names the loop that does support it; the multiplexers override
// what they provide. The connection, server and datagram-endpoint methods are not here: the base
// loop implements them (BaseEventLoop.Streams.cs, .Datagrams.cs) on the hooks of
// BaseEventLoop.TransportHooks.cs and on the Sock* primitives below.
public abstract partial class BaseEventLoop
{
    /// <summary>
    /// The exception an unsupported optional member throws: it names the member and the loop that
    /// supports it. Multiplexers may refine <see cref="SupportHint"/>.
    /// </summary>
    protected NotSupportedException Unsupported([CallerMemberName] string member = "") =>
        new($"{GetType().Name} does not support {member}. {SupportHint(member)}");

    /// <summary>Which loop supports <paramref name="member"/>, for <see cref="Unsupported"/>'s message.</summary>
    protected virtual string SupportHint(string member) =>
        "Use SelectorEventLoop (EventLoop.NewEventLoop() on Linux) for real I/O, or the in-memory transports of Tulip.Testing in tests.";

    /// <inheritdoc/>
    public virtual LoopTask<ITransport> StartTlsAsync(ITransport transport, IBaseProtocol protocol, SslClientAuthenticationOptions? clientOptions,
        SslServerAuthenticationOptions? serverOptions = null, CancellationToken cancellationToken = default) => throw Unsupported();

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

    /// <inheritdoc/>
    public virtual LoopTask<(ISubprocessTransport Transport, TProtocol Protocol)> SubprocessExecAsync<TProtocol>(Func<TProtocol> protocolFactory,
        string program, IReadOnlyList<string> arguments, SubprocessOptions? options = null, CancellationToken cancellationToken = default)
        where TProtocol : ISubprocessProtocol => throw Unsupported();

    /// <inheritdoc/>
    public virtual LoopTask<(ISubprocessTransport Transport, TProtocol Protocol)> SubprocessShellAsync<TProtocol>(Func<TProtocol> protocolFactory,
        string command, SubprocessOptions? options = null, CancellationToken cancellationToken = default)
        where TProtocol : ISubprocessProtocol => throw Unsupported();

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
