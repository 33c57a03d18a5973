using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Tulip;

// The PEP's wrapped socket methods: each tries the non-blocking call first and, when the kernel
// says EAGAIN, waits for readiness with a one-shot reader or writer on the socket's fd. The
// reader/writer is removed in a finally, before the awaiting method goes on, so a cancelled call
// leaves no registration behind for an fd its caller is about to close.
public partial class SelectorEventLoop
{
    private static readonly Action<Future<VoidResult>> s_setReady = static f => f.TrySetResult(default);

    /// <inheritdoc/>
    public override async LoopTask<int> SockRecvAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int fd = CheckNonBlocking(socket);
        if (buffer.IsEmpty)
        {
            // asyncio's sock_recv(sock, 0): 0 at once. The runtime's receive of no bytes on a
            // non-blocking socket says WouldBlock while nothing is queued, and the wait would last until data came.
            return 0;
        }

        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        while (true)
        {
            int n = socket.Receive(buffer.Span, SocketFlags.None, out SocketError error);
            if (error == SocketError.Success)
            {
                return n;
            }

            if (error is not (SocketError.WouldBlock or SocketError.Interrupted))
            {
                throw new SocketException((int)error);
            }

            await WaitReadableAsync(fd);
        }
    }

    /// <inheritdoc/>
    public override LoopTask<int> SockRecvIntoAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        SockRecvAsync(socket, buffer, cancellationToken);

    /// <inheritdoc/>
    public override async LoopTask SockSendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        int fd = CheckNonBlocking(socket);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        while (!data.IsEmpty)
        {
            int n = socket.Send(data.Span, SocketFlags.None, out SocketError error);
            if (error == SocketError.Success)
            {
                data = data.Slice(n);
                continue;
            }

            if (error is not (SocketError.WouldBlock or SocketError.Interrupted))
            {
                throw new SocketException((int)error);
            }

            await WaitWritableAsync(fd);
        }
    }

    /// <inheritdoc/>
    public override async LoopTask SockConnectAsync(Socket socket, EndPoint address, CancellationToken cancellationToken = default)
    {
        int fd = CheckNonBlocking(socket);
        ArgumentNullException.ThrowIfNull(address);
        if (address is DnsEndPoint)
        {
            throw new ArgumentException("SockConnectAsync needs a resolved address (IPEndPoint, UnixDomainSocketEndPoint): resolve names with GetAddrInfoAsync.", nameof(address));
        }

        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        if (socket.AddressFamily == AddressFamily.Unix)
        {
            await UnixConnectAsync(socket, address);
            return;
        }

        try
        {
            socket.Connect(address);
            return;
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress or SocketError.Interrupted)
        {
            // EINPROGRESS: the handshake goes on; writability says it is over.
        }

        await WaitWritableAsync(fd);
        // SO_ERROR: .NET reports it as a SocketError value.
        int error = (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
        if (error != 0)
        {
            throw new SocketException(error);
        }

        // Reading Connected makes .NET record the finished non-blocking connect (RemoteEndPoint etc.).
        _ = socket.Connected;
    }

    // A non-blocking AF_UNIX connect never goes on in the background: it completes at once, fails, or
    // fails with EAGAIN because the listener's backlog is full. Then nothing is in progress, and the
    // socket polls writable at once, so waiting for writability (the TCP way) would hand back a socket
    // that is not connected. Nothing signals room in another process's backlog, so try again, backing
    // off from 1 ms to 50 ms, until it connects, fails otherwise, or the caller cancels.
    private async LoopTask UnixConnectAsync(Socket socket, EndPoint address)
    {
        double delay = 0.001;
        while (true)
        {
            try
            {
                socket.Connect(address);
                return;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress or SocketError.TryAgain or SocketError.Interrupted)
            {
            }

            await Tasks.Sleep(delay);
            delay = Math.Min(delay * 2, 0.05);
        }
    }

    /// <inheritdoc/>
    public override async LoopTask<Socket> SockAcceptAsync(Socket socket, CancellationToken cancellationToken = default)
    {
        int fd = CheckNonBlocking(socket, SockCall.Accept);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        while (true)
        {
            try
            {
                var connection = socket.Accept();
                connection.Blocking = false;
                return connection;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.Interrupted)
            {
                await WaitReadableAsync(fd);
                // A cancellation that came while the wait was already over is taken here, before
                // accept(2) makes a connection the returned-while-cancelled task would drop.
                ThrowIfCancelPending();
            }
        }
    }

    /// <inheritdoc/>
    public override async LoopTask<(int Count, EndPoint Address)> SockRecvFromAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int fd = CheckNonBlocking(socket, SockCall.Datagram);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        while (true)
        {
            EndPoint from = socket.AddressFamily == AddressFamily.InterNetworkV6
                ? new IPEndPoint(IPAddress.IPv6Any, 0)
                : socket.AddressFamily == AddressFamily.Unix ? new UnixDomainSocketEndPoint("/") : new IPEndPoint(IPAddress.Any, 0);
            try
            {
                int n = socket.ReceiveFrom(buffer.Span, SocketFlags.None, ref from);
                return (n, from);
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.Interrupted)
            {
                await WaitReadableAsync(fd);
            }
        }
    }

    /// <inheritdoc/>
    public override LoopTask<(int Count, EndPoint Address)> SockRecvFromIntoAsync(Socket socket, Memory<byte> buffer, int count = 0,
        CancellationToken cancellationToken = default)
    {
        if ((uint)count > (uint)buffer.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count,
                $"count is between 0 (the whole buffer) and the buffer's length, {buffer.Length}.");
        }

        return SockRecvFromAsync(socket, count == 0 ? buffer : buffer[..count], cancellationToken);
    }

    /// <inheritdoc/>
    public override async LoopTask<int> SockSendToAsync(Socket socket, ReadOnlyMemory<byte> data, EndPoint address, CancellationToken cancellationToken = default)
    {
        int fd = CheckNonBlocking(socket, SockCall.Datagram);
        ArgumentNullException.ThrowIfNull(address);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        while (true)
        {
            try
            {
                return socket.SendTo(data.Span, SocketFlags.None, address);
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.Interrupted)
            {
                await WaitWritableAsync(fd);
            }
        }
    }

    /// <summary>Waits until <paramref name="fd"/> is readable; the reader is gone when this returns or throws.</summary>
    private async LoopTask WaitReadableAsync(int fd)
    {
        var ready = new Future<VoidResult>(this);
        SetReader(fd, new StateHandle<Future<VoidResult>>(this, s_setReady, ready));
        try
        {
            await ready;
        }
        finally
        {
            SetReader(fd, null);
        }
    }

    /// <summary>
    /// Waits until <paramref name="fd"/> is writable; the writer is gone when this returns or throws.
    /// A <paramref name="session"/> (SendFileAsync on a transport) can end the wait early.
    /// </summary>
    private async LoopTask WaitWritableAsync(int fd, SendFileSession? session = null)
    {
        var ready = new Future<VoidResult>(this);
        SetWriter(fd, new StateHandle<Future<VoidResult>>(this, s_setReady, ready));
        session?.Arm(ready);
        try
        {
            await ready;
        }
        finally
        {
            session?.Disarm();
            SetWriter(fd, null);
        }
    }

    /// <summary>
    /// The checks of every Sock* call: the socket's, shared with the proactor (<see cref="BaseEventLoop.CheckSockSocket"/>),
    /// then an open loop (and its thread, in debug mode) and an fd no open transport owns.
    /// </summary>
    private protected int CheckNonBlocking(Socket socket, SockCall call = SockCall.Stream)
    {
        CheckSockSocket(socket, call);
        int fd = FdOf(socket);
        CheckIoCall(fd);
        CheckNoTransport(fd);
        return fd;
    }
}
