using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Threading;

namespace Tulip;

/// <summary>
/// The proactor's <see cref="IPipeTransportFactory"/>, registered in each <see cref="ProactorEventLoop"/>'s
/// <see cref="BaseEventLoop.Transports"/> when the loop is made (seed 002: the loop gains no pipe
/// methods of its own; <see cref="BaseEventLoop.ConnectReadPipeAsync{TProtocol}(Func{TProtocol}, SafeHandle, CancellationToken)"/>
/// and its write twin find this in the registry). One per loop: it knows which fds that loop's pipe
/// transports hold.
/// </summary>
/// <remarks>
/// <para>
/// How a pipe is driven without readiness: the transport wraps the pipe's fd in a .NET
/// <see cref="System.Net.Sockets.Socket"/> that does not own it (<c>new Socket(new SafeSocketHandle(fd, ownsHandle: false))</c>)
/// and reads and writes it with reusable <see cref="System.Net.Sockets.SocketAsyncEventArgs"/>
/// (<see cref="ProactorOperation"/>), as the stream transports do. On Unix .NET accepts a handle that
/// is not a socket there (it fstat()s it, and then uses read(2)/write(2) on it instead of recvmsg/sendmsg),
/// so the operations are the runtime's own non-blocking, epoll/kqueue-driven ones: true completions,
/// with no pool thread blocked in read(2).
/// </para>
/// <para>
/// Why not <c>FileStream</c>/<c>RandomAccess</c> or <c>AnonymousPipe*Stream</c>: on Unix their
/// asynchronous reads of a pipe are blocking read(2)s on pool threads (dotnet/runtime's
/// <c>PipeStream.Unix.cs</c> keeps the socket engine for named pipes only), and on Linux closing the fd from
/// another thread does not wake a blocked read(2), so closing a read pipe with a read outstanding would
/// leave a thread stuck and the fd open until the writer wrote or left. Disposing the wrapping socket
/// instead aborts the outstanding operation at once (OperationAborted) and waits for any read(2) or
/// write(2) the runtime is inside to return (its <c>AsyncOperation.TryCancel</c> spins while one runs),
/// so the fd is closed right after ConnectionLost with nothing of the runtime's still touching it, and
/// a completion that arrives after ConnectionLost is dropped. Measured on .NET 10.0.12, Linux 6.x.
/// </para>
/// <para>
/// Limits: a handle that does not own its fd (<c>ownsHandle: false</c>) leaves the fd open after the
/// transport, and still in the runtime's epoll set until its owner closes it: wrapping that same fd in
/// another pipe transport meanwhile fails on the first read or write. Windows is refused with
/// <see cref="PlatformNotSupportedException"/>: there a pipe HANDLE is no socket, and an overlapped
/// <c>FileStream</c> path is still to be written. The fd checks (<see cref="PipeHandleProbe"/>) are
/// native on Linux only; elsewhere a wrong kind of handle fails at its first read or write.
/// </para>
/// </remarks>
internal sealed class ProactorPipeTransportFactory : IPipeTransportFactory
{
    // The fds this loop's pipe transports hold, from their creation until their fd is closed: a second
    // transport on one of them is refused, as the selector refuses an fd it already watches. Loop thread.
    private readonly HashSet<int> _inUse = new();

    /// <inheritdoc/>
    public LoopTask<(IReadTransport Transport, TProtocol Protocol)> ConnectReadPipeAsync<TProtocol>(IEventLoop loop,
        Func<TProtocol> protocolFactory, SafeHandle pipe, IDisposable? owner, CancellationToken cancellationToken)
        where TProtocol : IBaseProtocol =>
        ConnectAsync<IReadTransport, TProtocol>(loop, protocolFactory, pipe, owner, forWriting: false, cancellationToken,
            static (proactor, factory, pipe, owner, info, protocol, waiter) =>
            {
                PipeHandleProbe.CheckReadProtocol(protocol);
                return new ProactorReadPipeTransport(proactor, factory, pipe, owner, info, protocol, waiter);
            });

    /// <inheritdoc/>
    public LoopTask<(IWriteTransport Transport, TProtocol Protocol)> ConnectWritePipeAsync<TProtocol>(IEventLoop loop,
        Func<TProtocol> protocolFactory, SafeHandle pipe, IDisposable? owner, CancellationToken cancellationToken)
        where TProtocol : IBaseProtocol =>
        ConnectAsync<IWriteTransport, TProtocol>(loop, protocolFactory, pipe, owner, forWriting: true, cancellationToken,
            static (proactor, factory, pipe, owner, info, protocol, waiter) =>
                new ProactorWritePipeTransport(proactor, factory, pipe, owner, info, protocol, waiter));

    /// <summary>Marks <paramref name="fd"/> as held by a transport of this loop.</summary>
    internal void Take(int fd) => _inUse.Add(fd);

    /// <summary>The transport holding <paramref name="fd"/> has closed it (or given it back).</summary>
    internal void Release(int fd) => _inUse.Remove(fd);

    /// <summary>
    /// Both directions, as the selector's factory: checks the handle (nothing of it is changed before
    /// the transport exists, so a failure leaves the pipe as it was), makes the protocol and the
    /// transport, and waits for ConnectionMade; a failure after that closes the transport, and the fd.
    /// </summary>
    private async LoopTask<(TTransport Transport, TProtocol Protocol)> ConnectAsync<TTransport, TProtocol>(IEventLoop loop,
        Func<TProtocol> protocolFactory, SafeHandle pipe, IDisposable? owner, bool forWriting, CancellationToken cancellationToken,
        Func<ProactorEventLoop, ProactorPipeTransportFactory, SafeHandle, IDisposable?, PipeHandleInfo, TProtocol, Future<VoidResult>, ProactorPipeTransport> makeTransport)
        where TTransport : class, IBaseTransport
        where TProtocol : IBaseProtocol
    {
        var proactor = loop as ProactorEventLoop ?? throw new ArgumentException(
            $"The proactor's pipe transports need a {nameof(ProactorEventLoop)}; {loop.GetType().Name} is not one. " +
            $"Register an {nameof(IPipeTransportFactory)} that suits it in loop.Transports.", nameof(loop));
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var info = PipeHandleProbe.Check(pipe, forWriting);
        if (_inUse.Contains(info.Fd))
        {
            throw new ArgumentException(
                $"fd {info.Fd} is already watched by this loop (by another pipe transport): give each pipe to one transport.");
        }

        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException(
                "ProactorEventLoop's pipes run where .NET's Socket can wrap a pipe's fd (Linux, macOS and the other Unixes); " +
                "on Windows a pipe HANDLE needs overlapped FileStream I/O, which is not written yet (issue 12).");
        }

        var waiter = loop.CreateFuture<VoidResult>();
        var protocol = protocolFactory() ?? throw new InvalidOperationException("The protocol factory returned null.");
        var transport = makeTransport(proactor, this, pipe, owner, info, protocol, waiter);
        try
        {
            await waiter;
        }
        catch
        {
            transport.CloseNow();
            throw;
        }

        return ((TTransport)(IBaseTransport)transport, protocol);
    }
}
