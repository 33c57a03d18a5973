using System;
using System.Buffers;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;

namespace Tulip;

/// <summary>
/// A datagram transport over a non-blocking socket on a <see cref="SelectorEventLoop"/>: asyncio's
/// <c>_SelectorDatagramTransport</c>. Used for UDP and UNIX datagram sockets alike.
/// </summary>
/// <remarks>
/// <para>
/// Receiving: up to <see cref="MaxDatagramsPerEvent"/> <c>recvfrom</c> calls per readiness event,
/// one <see cref="IDatagramProtocol.DatagramReceived"/> per datagram, straight from the loop's
/// shared read buffer. <c>MSG_TRUNC</c> reveals a datagram larger than the buffer: it is reported
/// through <see cref="IDatagramProtocol.ErrorReceived"/>, never delivered cut short. The sender's
/// address lands in a reused <see cref="SocketAddress"/> and is turned into an
/// <see cref="EndPoint"/> once per sender (a bounded cache), so a steady stream allocates nothing.
/// </para>
/// <para>
/// Sending: <see cref="SendTo"/> tries the socket first and buffers a datagram only when the kernel
/// would block (one entry per datagram, in order); the writer is registered only while there is a
/// backlog. Per-datagram errors (ICMP errors surfacing as ECONNREFUSED, EMSGSIZE, EACCES for a
/// broadcast without SO_BROADCAST) go to <see cref="IDatagramProtocol.ErrorReceived"/> and the
/// endpoint stays usable. The syscalls are made through <c>Interop</c> so that EAGAIN and these
/// errors come back as an errno, not as a thrown exception on the hot path.
/// </para>
/// <para>Everything here is owned by the loop thread.</para>
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed class SelectorDatagramTransport : SelectorTransport, IDatagramTransport
{
    /// <summary>
    /// Datagrams read per readiness event at most. libuv's <c>uv__udp_recvmsg</c> reads 32 before
    /// going back to the loop: enough to drain a burst in one wake-up, few enough that one busy
    /// socket cannot starve the others.
    /// </summary>
    internal const int MaxDatagramsPerEvent = 32;

    /// <summary>
    /// The receive buffer for UNIX datagram sockets, whose datagrams may exceed 64 KiB (up to the
    /// sender's SO_SNDBUF, 208 KiB by default on Linux). asyncio's <c>max_size</c> is the same 256 KiB.
    /// </summary>
    internal const int MaxUnixDatagramSize = DatagramAddressing.MaxUnixDatagramSize;

    private const int PerDatagramOverhead = DatagramAddressing.PerDatagramOverhead;

    private readonly AddressFamily _family;
    private readonly StateHandle<SelectorDatagramTransport> _readHandle;
    private readonly StateHandle<SelectorDatagramTransport> _writeHandle;

    // The remote address and the destinations of SendTo (shared with the proactor's datagram transport).
    private readonly DatagramAddressing _addressing;

    // Where recvfrom writes the sender's address; reused for every datagram.
    // sender's raw address -> its EndPoint, handed to DatagramReceived (shared between calls).
    private readonly DatagramSenders _senders;


    private IDatagramProtocol _datagramProtocol = null!;

    // The send backlog, one entry per datagram, oldest first. Payloads are rented arrays.
    private readonly Queue<PendingDatagram> _pending = new();
    private int _bufferSize;

    private bool _closedByUser;     // Close or Abort: SendTo is then a usage error

    internal SelectorDatagramTransport(SelectorEventLoop loop, Socket socket, IDatagramProtocol protocol, EndPoint? remote, EndPoint? remoteAsGiven,
        Future<VoidResult>? waiter)
        : base(loop, socket, "socket.sendto() raised exception: the datagram transport is closed, the datagram was dropped.")
    {
        _family = socket.AddressFamily;
        _addressing = new DatagramAddressing(socket, GetExtraInfo("peername") as EndPoint, remote, remoteAsGiven);
        _senders = new DatagramSenders(_family, _addressing.Template);

        _readHandle = new StateHandle<SelectorDatagramTransport>(loop, static t => t.OnReadable(), this);
        _writeHandle = new StateHandle<SelectorDatagramTransport>(loop, static t => t.OnWritable(), this);
        SetProtocol(protocol);
        Start(waiter);
    }

    /// <inheritdoc/>
    private protected override bool HasPendingWrites => _pending.Count > 0;

    /// <inheritdoc/>
    public override void SetProtocol(IBaseProtocol protocol)
    {
        ArgumentNullException.ThrowIfNull(protocol);
        _datagramProtocol = protocol as IDatagramProtocol
            ?? throw new ArgumentException($"A datagram transport needs an {nameof(IDatagramProtocol)}; got {protocol.GetType().Name}.", nameof(protocol));
        _protocol = protocol;
    }

    /// <inheritdoc/>
    public override string ToString() => $"<SelectorDatagramTransport fd={_fd} {_life.StateName} buffered={_pending.Count} datagrams>";

    // ---- Lifecycle -------------------------------------------------------------------------

    /// <inheritdoc/>
    private protected override void OnStarted() => _loop.SetReader(_fd, _readHandle, cancelReplaced: false);

    /// <inheritdoc/>
    /// <remarks>Buffered datagrams are still sent; then the socket closes and <see cref="IBaseProtocol.ConnectionLost"/> is called with null.</remarks>
    public override void Close()
    {
        _closedByUser = true;
        base.Close();
    }

    /// <inheritdoc/>
    public override void Abort()
    {
        _closedByUser = true;
        base.Abort();
    }

    // ---- Receiving ---------------------------------------------------------------------------

    private unsafe void OnReadable()
    {
        byte[] buffer = _family == AddressFamily.Unix ? _loop.DatagramReadBuffer : _loop.ReadBuffer;
        for (int i = 0; i < MaxDatagramsPerEvent && !_life.IsClosing; i++)
        {
            var scratch = _senders.Scratch.Span;
            uint fromLength = (uint)scratch.Length;
            nint n;
            fixed (byte* data = buffer)
            fixed (byte* address = scratch)
            {
                n = Interop.RecvFrom(_fd, data, (nuint)buffer.Length, Interop.MSG_TRUNC | Interop.MSG_DONTWAIT, address, &fromLength);
            }

            if (n < 0)
            {
                int errno = Interop.GetLastErrno();
                if (errno is Interop.Errno.EAGAIN or Interop.Errno.EINTR)
                {
                    return;
                }

                // A pending ICMP error (ECONNREFUSED on a connected socket, ...): reported, then the
                // next event reads on. It was consumed by this call, so the reader does not spin.
                CallErrorReceived(Interop.GetExceptionForErrno(errno, $"recvfrom(fd {_fd})", source: Interop.ErrnoSource.Socket));
                return;
            }

            DatagramCalls.Deliver(_loop, this, _datagramProtocol, buffer, n, _senders.SenderOf((int)fromLength));
        }
    }

    private void CallErrorReceived(Exception error) => DatagramCalls.ErrorReceived(_loop, this, _datagramProtocol, error);

    // ---- Sending -----------------------------------------------------------------------------

    /// <inheritdoc/>
    public void SendTo(ReadOnlySpan<byte> data, EndPoint? address = null)
    {
        if (_closedByUser)
        {
            DatagramAddressing.ThrowClosed();
        }

        SocketAddress? destination = _addressing.Resolve(address)?.Raw;
        if (_life.IsClosing)
        {
            // Closed by a fatal error: the protocol learns it through ConnectionLost; sends are dropped (asyncio).
            _life.DropWrite();
            return;
        }

        if (_pending.Count == 0)
        {
            // Nothing pending: try the socket first, and buffer only what would block.
            int errno = TrySend(data, destination);
            if (errno == 0)
            {
                return;
            }

            if (errno is not (Interop.Errno.EAGAIN or Interop.Errno.EINTR))
            {
                CallErrorReceived(SendError(errno, address));
                return;
            }

            _loop.SetWriter(_fd, _writeHandle, cancelReplaced: false);
        }

        byte[] copy = ArrayPool<byte>.Shared.Rent(Math.Max(data.Length, 1));
        data.CopyTo(copy);
        _pending.Enqueue(new PendingDatagram(copy, data.Length, destination, address));
        _bufferSize += data.Length + PerDatagramOverhead;
        MaybePauseProtocol();
    }

    /// <inheritdoc/>
    public int GetWriteBufferSize() => _bufferSize;

    /// <inheritdoc/>
    public (int Low, int High) GetWriteBufferLimits() => _flow.Limits;

    /// <inheritdoc/>
    public void SetWriteBufferLimits(int? high = null, int? low = null) => _flow.SetLimits(high, low, _bufferSize);

    private int TrySend(ReadOnlySpan<byte> data, SocketAddress? destination) => TrySend(_fd, data, destination);

    /// <summary>One non-blocking send(2)/sendto(2) of a whole datagram on <paramref name="fd"/>: 0, or the errno (the io_uring transport's first attempt too).</summary>
    internal static unsafe int TrySend(int fd, ReadOnlySpan<byte> data, SocketAddress? destination)
    {
        nint n;
        fixed (byte* p = data)
        {
            if (destination is null)
            {
                n = Interop.SendTo(fd, p, (nuint)data.Length, Interop.MSG_DONTWAIT | Interop.MSG_NOSIGNAL, null, 0);
            }
            else
            {
                fixed (byte* a = destination.Buffer.Span)
                {
                    n = Interop.SendTo(fd, p, (nuint)data.Length, Interop.MSG_DONTWAIT | Interop.MSG_NOSIGNAL, a, (uint)destination.Size);
                }
            }
        }

        return n < 0 ? Interop.GetLastErrno() : 0;
    }

    private void OnWritable()
    {
        while (_pending.Count > 0 && !_life.IsConnectionLost)
        {
            var next = _pending.Peek();
            int errno = TrySend(next.Data.AsSpan(0, next.Length), next.Destination);
            if (errno is Interop.Errno.EAGAIN or Interop.Errno.EINTR)
            {
                return; // still full: the writer stays registered
            }

            _pending.Dequeue();
            _bufferSize -= next.Length + PerDatagramOverhead;
            ArrayPool<byte>.Shared.Return(next.Data);
            if (errno != 0)
            {
                // This datagram is lost; the ones behind it are tried on the next event (asyncio).
                CallErrorReceived(SendError(errno, next.Address));
                break;
            }
        }

        MaybeResumeProtocol();
        if (_pending.Count > 0 || _life.IsConnectionLost)
        {
            return;
        }

        _loop.SetWriter(_fd, null, cancelReplaced: false);
        if (_life.IsClosing)
        {
            _life.ScheduleConnectionLost(null);
        }
    }

    private Exception SendError(int errno, EndPoint? address) =>
        Interop.GetExceptionForErrno(errno, $"sendto(fd {_fd}, {Describe(address ?? _addressing.Remote)})", source: Interop.ErrnoSource.Socket);

    /// <inheritdoc/>
    private protected override void DropBuffer()
    {
        while (_pending.TryDequeue(out var p))
        {
            ArrayPool<byte>.Shared.Return(p.Data);
        }

        _bufferSize = 0;
    }

    private void MaybePauseProtocol() => _flow.MaybePause(_bufferSize);

    private void MaybeResumeProtocol() => _flow.MaybeResume(_bufferSize);

    private static string Describe(EndPoint? address) => DatagramAddressing.Describe(address);

    /// <summary>A datagram waiting for the socket: its payload (a rented array), where it goes (null: the connected peer), and the address as the caller gave it (for error messages).</summary>
    private readonly record struct PendingDatagram(byte[] Data, int Length, SocketAddress? Destination, EndPoint? Address);
}
