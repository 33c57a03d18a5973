using System;
using System.Buffers;
using System.IO;
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
    /// <summary>Bytes read from a file per chunk by the sendfile fallbacks (asyncio uses 256 KiB; 64 KiB keeps the rented buffer off the LOH).</summary>
    private const int SendFileChunkSize = 64 * 1024;

    private static readonly Action<Future<VoidResult>> s_setReady = static f => f.TrySetResult(default);

    /// <inheritdoc/>
    public override async LoopTask<int> SockRecvAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int fd = CheckNonBlocking(socket);
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

    /// <inheritdoc/>
    public override async LoopTask<Socket> SockAcceptAsync(Socket socket, CancellationToken cancellationToken = default)
    {
        int fd = CheckNonBlocking(socket);
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
            }
        }
    }

    /// <inheritdoc/>
    public override async LoopTask<(int Count, EndPoint Address)> SockRecvFromAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int fd = CheckNonBlocking(socket);
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
    public override async LoopTask<int> SockSendToAsync(Socket socket, ReadOnlyMemory<byte> data, EndPoint address, CancellationToken cancellationToken = default)
    {
        int fd = CheckNonBlocking(socket);
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

    /// <inheritdoc/>
    /// <remarks>
    /// This version always uses the read-and-send fallback (asyncio's <c>_sock_sendfile_fallback</c>);
    /// the file position is left after the last byte sent, as asyncio does.
    /// </remarks>
    public override async LoopTask<long> SockSendFileAsync(Socket socket, FileStream file, long offset = 0, long? count = null,
        CancellationToken cancellationToken = default)
    {
        CheckNonBlocking(socket);
        ArgumentNullException.ThrowIfNull(file);
        CheckSendFileArguments(offset, count);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        byte[] chunk = ArrayPool<byte>.Shared.Rent(SendFileChunkSize);
        long sent = 0;
        try
        {
            file.Seek(offset, SeekOrigin.Begin);
            while (count is null || sent < count)
            {
                int want = (int)Math.Min(chunk.Length, count is { } c ? c - sent : chunk.Length);
                // A regular file read does not block on the network; the loop thread reads it directly, as asyncio's fallback does in an executor.
                int n = file.Read(chunk, 0, want);
                if (n == 0)
                {
                    break;
                }

                await SockSendAllAsync(socket, chunk.AsMemory(0, n), cancellationToken);
                sent += n;
            }

            return sent;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
            file.Seek(offset + sent, SeekOrigin.Begin);
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

    /// <summary>Waits until <paramref name="fd"/> is writable; the writer is gone when this returns or throws.</summary>
    private async LoopTask WaitWritableAsync(int fd)
    {
        var ready = new Future<VoidResult>(this);
        SetWriter(fd, new StateHandle<Future<VoidResult>>(this, s_setReady, ready));
        try
        {
            await ready;
        }
        finally
        {
            SetWriter(fd, null);
        }
    }

    private static void CheckSendFileArguments(long offset, long? count)
    {
        if (offset < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, "The offset must be non-negative.");
        }

        if (count is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "The count must be positive, or null for the rest of the file.");
        }
    }

    private int CheckNonBlocking(Socket socket)
    {
        int fd = FdOf(socket);
        if (socket.Blocking)
        {
            throw new ArgumentException("The socket must be non-blocking (socket.Blocking = false): a blocking call would stall the loop.", nameof(socket));
        }

        CheckIoCall(fd);
        return fd;
    }
}
