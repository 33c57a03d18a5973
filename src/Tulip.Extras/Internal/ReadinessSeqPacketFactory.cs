using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Tulip.Extras.Internal;

/// <summary>SOCK_SEQPACKET on fd readiness: for any <see cref="IReadinessEventLoop"/>.</summary>
internal sealed class ReadinessSeqPacketFactory : ISeqPacketTransportFactory
{
    /// <inheritdoc/>
    public async LoopTask<Socket> ConnectAsync(IEventLoop loop, EndPoint endPoint, CancellationToken cancellationToken)
    {
        var readiness = ReadinessOf(loop);
        return await ConnectBackoff.ConnectAsync((loop, readiness, endPoint, cancellationToken), static (socket, s) => TryConnectAsync(socket, s),
            cancellationToken);
    }

    /// <summary>One non-blocking connect: true once connected, false when the listener's backlog is full (EAGAIN: see <see cref="ConnectBackoff"/>).</summary>
    private static async LoopTask<bool> TryConnectAsync(Socket socket,
        (IEventLoop Loop, IReadinessEventLoop Readiness, EndPoint EndPoint, CancellationToken Token) s)
    {
        socket.Blocking = false;
        try
        {
            socket.Connect(s.EndPoint); // an AF_UNIX connect completes at once when the backlog has room
            return true;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.InProgress)
        {
            await WaitWritableAsync(s.Loop, s.Readiness, socket, s.Token);
            var error = (SocketError)(int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
            if (error != SocketError.Success)
            {
                throw new SocketException((int)error);
            }

            return true;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.WouldBlock)
        {
            return false;
        }
    }

    private static async LoopTask WaitWritableAsync(IEventLoop loop, IReadinessEventLoop readiness, Socket socket, CancellationToken cancellationToken)
    {
        int fd = (int)socket.Handle;
        var writable = loop.CreateFuture<bool>();
        var handle = readiness.CreateIoHandle(static f => f.TrySetResult(true), writable);
        readiness.SetWriter(fd, handle);
        try
        {
            using (cancellationToken.Register(static f => ((Future<bool>)f!).Cancel(), writable, useSynchronizationContext: true))
            {
                await writable;
            }
        }
        finally
        {
            readiness.SetWriter(fd, null);
            handle.Cancel();
        }
    }

    /// <inheritdoc/>
    public IMessageTransport Attach(IEventLoop loop, Socket socket, IMessageProtocol protocol, Future<bool> connected) =>
        new ReadinessMessageTransport(ReadinessOf(loop), socket, protocol, connected);

    private static IReadinessEventLoop ReadinessOf(IEventLoop loop) =>
        loop as IReadinessEventLoop ?? throw new NotSupportedException(
            $"SeqPacket.Readiness needs an {nameof(IReadinessEventLoop)}; {loop.GetType().Name} is not one: use SeqPacket.Completion.");
}

/// <summary>
/// A message transport driven by readiness: one recv per readable event into a shared 64 KiB
/// buffer; sends go straight to the socket, and only what it refuses (EAGAIN) is queued, with the
/// writer registered while the queue is not empty. The I/O handles are made once and re-armed.
/// </summary>
internal sealed class ReadinessMessageTransport : MessageTransport
{
    private readonly IReadinessEventLoop _readiness;
    private readonly int _fd;
    private readonly Handle _readHandle;
    private readonly Handle _writeHandle;
    private readonly byte[] _receiveBuffer = new byte[IMessageTransport.MaxMessageSize];

    internal ReadinessMessageTransport(IReadinessEventLoop loop, Socket socket, IMessageProtocol protocol, Future<bool> connected)
        : base(loop, socket, protocol, connected)
    {
        _readiness = loop;
        socket.Blocking = false;
        _fd = (int)socket.Handle;
        _readHandle = loop.CreateIoHandle(static t => t.OnReadable(), this);
        _writeHandle = loop.CreateIoHandle(static t => t.OnWritable(), this);
    }

    protected override bool TrySendNow(ReadOnlySpan<byte> message)
    {
        int n = Socket.Send(message, SocketFlags.None, out SocketError error);
        if (error == SocketError.Success)
        {
            return n == message.Length; // SOCK_SEQPACKET sends a message whole or not at all
        }

        if (error is SocketError.WouldBlock or SocketError.Interrupted)
        {
            return false;
        }

        FatalError(new SocketException((int)error), "Fatal send error on SOCK_SEQPACKET transport");
        return false;
    }

    protected override void OnQueued() => _readiness.SetWriter(_fd, _writeHandle);

    protected override void StartReading() => _readiness.SetReader(_fd, _readHandle);

    protected override void StopReading() => _readiness.SetReader(_fd, null);

    protected override void StopAll()
    {
        if (Loop.IsClosed)
        {
            return;
        }

        _readiness.SetReader(_fd, null);
        _readiness.SetWriter(_fd, null);
    }

    private void OnReadable()
    {
        // The handle is not cancelled when reading stops, so a run already queued may come: check.
        if (Closing || Paused || Lost)
        {
            return;
        }

        int n = Socket.Receive(_receiveBuffer, SocketFlags.None, out SocketError error);
        if (error != SocketError.Success)
        {
            if (error is not (SocketError.WouldBlock or SocketError.Interrupted))
            {
                FatalError(new SocketException((int)error), "Fatal receive error on SOCK_SEQPACKET transport");
            }

            return;
        }

        if (n == 0)
        {
            PeerClosed();
            return;
        }

        Deliver(_receiveBuffer.AsSpan(0, n));
    }

    private void OnWritable()
    {
        if (Lost)
        {
            return;
        }

        while (Queue.TryPeek(out var message))
        {
            if (!TrySendNow(message))
            {
                return; // EAGAIN: wait for the next writable event (or the error ended the connection)
            }

            Queue.Dequeue();
            Sent(message.Length);
            if (Lost)
            {
                return;
            }
        }

        _readiness.SetWriter(_fd, null);
    }
}
