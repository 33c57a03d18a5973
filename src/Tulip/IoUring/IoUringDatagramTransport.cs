using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Tulip.IoUring;
using Tulip.Selectors;

namespace Tulip;

/// <summary>
/// A datagram transport (UDP or UNIX datagram) on the <see cref="IoUringEventLoop"/>, driven by
/// completions read on the loop thread (issue 14): an <c>IORING_OP_RECVMSG</c> armed while the endpoint
/// is open, and the send backlog sent by <c>IORING_OP_SENDMSG</c>, one datagram at a time, submitted with
/// the loop's next wait. No readiness poll.
/// </summary>
/// <remarks>
/// <para>
/// Receiving: one single-shot <c>RECVMSG</c> with buffer select, so the kernel picks a buffer of the
/// loop's provided-buffer rings only when a datagram is there and an armed or idle endpoint holds none:
/// IP endpoints use the stream group (64 KiB buffers, which hold any UDP datagram), UNIX endpoints a
/// second group of 256 KiB buffers (asyncio's <c>max_size</c>; <see cref="IoUringEventLoop.UnixDatagramBuffers"/>).
/// The groups are the loop's, shared by all its endpoints (and, for IP, its connections), so the
/// memory is that of the datagrams being delivered, not a buffer per endpoint. The sender's address and
/// the <c>MSG_TRUNC</c> flag are written back into the transport's pinned <c>msghdr</c>; with
/// <c>MSG_TRUNC</c> the result is the datagram's real length, so one larger than the buffer is reported
/// as on every loop. (Multishot <c>RECVMSG</c> was not taken: the stream receives stay single-shot for the
/// kernel's reasons given at <see cref="IoUringSocketTransport.UseMultishotReceive"/>, and one datagram
/// per completion keeps truncation and cancellation as they were.) The completion is handed to the
/// protocol on the ready queue; the handler then reads on with non-blocking <c>recvfrom</c> into the same
/// ring buffer while the socket holds more (up to
/// <see cref="SelectorDatagramTransport.MaxDatagramsPerEvent"/> in all, as the selector loop does; tried
/// less often while it finds nothing, see <see cref="OnReceived"/>), gives the buffer back and re-arms.
/// A ring with no buffer left (ENOBUFS) leaves the datagram in the socket: the receive is re-armed when a
/// buffer of its group comes back. A receive that fails (a pending ICMP error: ECONNREFUSED on a connected socket) is
/// reported through <see cref="IDatagramProtocol.ErrorReceived"/> and the endpoint reads on, as on
/// every loop.
/// </para>
/// <para>
/// Sending: <see cref="SendTo"/> sends at once (sendto(2)) when nothing is pending, as every loop does;
/// a datagram the kernel would block on is copied into a pinned array (<see cref="PinnedBufferPool"/>)
/// and goes out by one <c>IORING_OP_SENDMSG</c>, the backlog behind it in order. Per-datagram errors go
/// to <see cref="IDatagramProtocol.ErrorReceived"/>; flow control counts the backlog as the other loops do.
/// </para>
/// <para>
/// Closing: a graceful close waits for the backlog; an abort drops it and cancels the send in flight.
/// Before the fd is closed every operation on it is cancelled and every queued entry submitted
/// (<see cref="BeforeCloseFd"/>); the buffers the kernel may still use stay until the operation's last
/// completion. Everything here is owned by the loop thread.
/// </para>
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed unsafe class IoUringDatagramTransport : SelectorTransport, IDatagramTransport, IIoUringBufferWaiter
{
    /// <summary>IORING_CQE_F_SOCK_NONEMPTY: after this receive the socket still holds data.</summary>
    private const uint CQE_F_SOCK_NONEMPTY = 1u << 2;

    /// <summary>IOSQE_IO_LINK: the next entry starts when this one completed successfully.</summary>
    private const byte IOSQE_IO_LINK = 1 << 2;

    private const uint POLLOUT = 0x004;

    /// <summary>The most completions between two read-on tries that found nothing (see <see cref="OnReceived"/>).</summary>
    private const int MaxReadOnBackoff = 16;

    private const int PerDatagramOverhead = DatagramAddressing.PerDatagramOverhead;

    // Layout of the pinned scratch block the kernel reads and writes: a msghdr, its one iovec and a
    // sockaddr buffer for each direction (sockaddr_un is 110 bytes; 128 is sockaddr_storage).
    private const int MsgHdrSize = 56;
    private const int IoVecSize = 16;
    private const int AddressSize = 128;
    private const int RecvMsgOffset = 0;
    private const int RecvIovOffset = RecvMsgOffset + MsgHdrSize;
    private const int RecvNameOffset = RecvIovOffset + IoVecSize;
    private const int SendMsgOffset = RecvNameOffset + AddressSize;
    private const int SendIovOffset = SendMsgOffset + MsgHdrSize;
    private const int SendNameOffset = SendIovOffset + IoVecSize;
    private const int ScratchSize = SendNameOffset + AddressSize;

    private readonly IoUringEventLoop _uring;
    private readonly AddressFamily _family;
    private readonly DatagramAddressing _addressing;
    private readonly DatagramSenders _senders;
    private IDatagramProtocol _datagramProtocol = null!;

    private readonly ReceiveOperation _recv;
    private readonly SendOperation _send;
    private readonly SendPollOperation _sendPoll;
    private readonly StateHandle<IoUringDatagramTransport> _recvHandle;
    private readonly StateHandle<IoUringDatagramTransport> _sendHandle;

    // msghdrs, iovecs and addresses of both operations (pinned: the kernel holds their address).
    private readonly byte[] _scratch = GC.AllocateArray<byte>(ScratchSize, pinned: true);

    // ---- receive state ----
    private readonly IoUringBufferRing _buffers; // the loop's provided buffers the receive selects from (IP: the stream group; UNIX: the 256 KiB group)
    private int _recvBufferId = -1;     // the ring buffer the recorded completion filled (-1: none), this transport's until OnReceived gives it back
    private bool _waitingForBuffers;    // the receive ended with ENOBUFS and no buffer was free: re-armed when one comes back
    private bool _recvArmed;            // a receive is in the kernel (its completion not seen yet)
    private bool _recvCancelled;        // an ASYNC_CANCEL of it was queued
    private bool _recvReady;            // a completion is recorded, for _recvHandle
    private int _recvResult;
    private uint _recvCqeFlags;
    private int _recvNameLength;
    private int _recvMsgFlags;
    private int _readOnBackoff;         // completions between read-on tries (0: after each)
    private int _readOnCountdown;       // completions left before the next read-on try

    // ---- send state ----
    private readonly Queue<PendingDatagram> _pending = new();
    private PendingDatagram _sending;   // the datagram the SENDMSG in flight sends (Data null: none)
    private bool _sendInKernel;         // the kernel holds the send (and reads _sending.Data) until its completion
    private bool _sendPollInKernel;     // the POLL_ADD linked before the send has not completed yet
    private bool _sendDropped;          // aborted while in the kernel: the completion only gives the array back
    private int _sendResult;
    private int _bufferSize;

    private bool _closedByUser;         // Close or Abort: SendTo is then a usage error
    private bool _lost;                 // the fd is being closed: completions only release what they held

    internal IoUringDatagramTransport(IoUringEventLoop loop, Socket socket, IDatagramProtocol protocol, EndPoint? remote, EndPoint? remoteAsGiven,
        Future<VoidResult>? waiter)
        : base(loop, socket, "socket.sendto() raised exception: the datagram transport is closed, the datagram was dropped.")
    {
        _uring = loop;
        _family = socket.AddressFamily;
        _addressing = new DatagramAddressing(socket, GetExtraInfo("peername") as EndPoint, remote, remoteAsGiven);
        _senders = new DatagramSenders(_family, _addressing.Template);
        _buffers = _family == AddressFamily.Unix ? loop.UnixDatagramBuffers : loop.IpDatagramBuffers;
        _recv = new ReceiveOperation(this);
        _send = new SendOperation(this);
        _sendPoll = new SendPollOperation(this);
        _recvHandle = new StateHandle<IoUringDatagramTransport>(loop, static t => t.OnReceived(), this);
        _sendHandle = new StateHandle<IoUringDatagramTransport>(loop, static t => t.OnSent(), this);
        SetProtocol(protocol);
        _loop.ClaimFd(_fd, this);
        _recv.Index = _uring.Uring.RegisterOperation(_recv);
        _send.Index = _uring.Uring.RegisterOperation(_send);
        _sendPoll.Index = _uring.Uring.RegisterOperation(_sendPoll);
        try
        {
            Start(waiter);
        }
        catch
        {
            _loop.ReleaseFd(_fd, this);
            Unregister();
            throw;
        }
    }

    /// <inheritdoc/>
    private protected override bool HasPendingWrites => _pending.Count > 0 || (_sending.Data is not null && !_sendDropped);

    /// <inheritdoc/>
    public override void SetProtocol(IBaseProtocol protocol)
    {
        ArgumentNullException.ThrowIfNull(protocol);
        _datagramProtocol = protocol as IDatagramProtocol
            ?? throw new ArgumentException($"A datagram transport needs an {nameof(IDatagramProtocol)}; got {protocol.GetType().Name}.", nameof(protocol));
        _protocol = protocol;
    }

    /// <inheritdoc/>
    public override string ToString() => $"<IoUringDatagramTransport fd={_fd} {_life.StateName} buffered={_pending.Count + (_sending.Data is null ? 0 : 1)} datagrams>";

    private byte* Scratch => (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_scratch));

    // ---- Lifecycle -------------------------------------------------------------------------

    /// <inheritdoc/>
    private protected override void OnStarted() => ArmReceive();

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

    /// <inheritdoc/>
    private protected override void BeforeCloseFd()
    {
        _lost = true;
        if (_recvArmed && !_recvCancelled)
        {
            _recvCancelled = true;
            QueueCancel(_recv.Index);
        }

        if (_waitingForBuffers)
        {
            _waitingForBuffers = false;
            _buffers.StopWaiting(this);
        }

        if (_sendInKernel && !_sendDropped)
        {
            _sendDropped = true;
            CancelSend();
        }

        // Every entry queued for this fd (a receive to arm, a send, the cancels) reaches the kernel
        // now, while the number still names this socket.
        _uring.Uring.SubmitAll();
        Unregister();
    }

    /// <summary>Frees the operation slots and buffers the kernel no longer holds (all of them once both completions came).</summary>
    private void Unregister()
    {
        if (!_recvArmed && _recv.Index >= 0)
        {
            _uring.Uring.UnregisterOperation(_recv.Index);
            _recv.Index = -1;
        }

        if (!_sendInKernel && _send.Index >= 0)
        {
            _uring.Uring.UnregisterOperation(_send.Index);
            _send.Index = -1;
            ReturnSending();
        }

        if (!_sendPollInKernel && _sendPoll.Index >= 0)
        {
            _uring.Uring.UnregisterOperation(_sendPoll.Index);
            _sendPoll.Index = -1;
        }
    }

    /// <summary>Withdraws the send: its poll (the linked send then fails with ECANCELED), and the send itself if it started.</summary>
    private void CancelSend()
    {
        if (_sendPollInKernel)
        {
            QueueCancel(_sendPoll.Index);
        }

        QueueCancel(_send.Index);
    }

    private void QueueCancel(int index)
    {
        ref IoUringSqe sqe = ref _uring.Uring.GetSqe();
        sqe.Opcode = Interop.IoUring.OP_ASYNC_CANCEL;
        sqe.Fd = -1;
        sqe.Addr = IoUringSelector.OperationUserData(index);
        sqe.UserData = IoUringSelector.CancelTag;
    }

    // ---- Receiving ---------------------------------------------------------------------------

    private void ArmReceive()
    {
        if (_recvArmed || _recvReady || _waitingForBuffers || _lost || _life.IsClosing)
        {
            return;
        }

        // Buffer select: the kernel picks the buffer when the datagram is there, so the armed receive
        // holds none. The msghdr's one iovec gives only the length (the buffer's whole size); its base
        // is the kernel's to fill in.
        byte* scratch = Scratch;
        var iov = (Interop.IoVec*)(scratch + RecvIovOffset);
        iov->Base = null;
        iov->Length = (nuint)_buffers.BufferSize;
        var message = (Interop.MsgHdr*)(scratch + RecvMsgOffset);
        *message = new Interop.MsgHdr { Name = scratch + RecvNameOffset, NameLength = AddressSize, Iov = iov, IovLength = 1 };

        ref IoUringSqe sqe = ref _uring.Uring.GetSqe();
        sqe.Opcode = Interop.IoUring.OP_RECVMSG;
        sqe.Fd = _fd;
        sqe.Addr = (ulong)message;
        sqe.Len = 1;
        // MSG_TRUNC: the result is the datagram's real length, so one too large for the buffer is seen.
        sqe.OpFlags = Interop.MSG_TRUNC;
        sqe.Flags = Interop.IoUring.IOSQE_BUFFER_SELECT;
        sqe.BufIndex = _buffers.GroupId;
        sqe.UserData = IoUringSelector.OperationUserData(_recv.Index);
        _recvArmed = true;
        _recvCancelled = false;
        _uring.OperationsInKernel++;
        _uring.DatagramOperationsSubmitted++;
        _buffers.ReceiveArmed(1);
    }

    /// <summary>
    /// A receive completion, inside the wait: record it (the kernel wrote the msghdr, and names the buffer
    /// it filled), and have the protocol told on the ready queue. A buffer taken is given back only there
    /// (<see cref="OnReceived"/>), also when the endpoint closed meanwhile: giving it back re-arms receives
    /// waiting for one, which is not done from inside the wait.
    /// </summary>
    private void OnReceiveCompletion(int result, uint flags)
    {
        _recvArmed = false;
        _uring.OperationsInKernel--;
        _buffers.ReceiveEnded(1);
        if ((flags & Interop.IoUring.CQE_F_BUFFER) != 0)
        {
            _buffers.Taken();
            _recvBufferId = (int)(flags >> Interop.IoUring.CQE_BUFFER_SHIFT);
        }

        if (_lost)
        {
            Unregister();
        }

        if (result == -Interop.ENOBUFS)
        {
            _uring.BufferExhaustions++;
        }

        if (_recvBufferId < 0 && (_lost || result == -Interop.ECANCELED || _life.IsClosing))
        {
            return;
        }

        var message = (Interop.MsgHdr*)(Scratch + RecvMsgOffset);
        _recvResult = result;
        _recvCqeFlags = flags;
        _recvNameLength = (int)message->NameLength;
        _recvMsgFlags = message->Flags;
        _recvReady = true;
        _uring.Schedule(_recvHandle);
    }

    /// <summary>
    /// The ready-queue handler: the datagram (or the error) to the protocol, then more if the socket holds
    /// more, read into the same ring buffer, which then goes back to the ring; then re-arm.
    /// </summary>
    private void OnReceived()
    {
        if (!_recvReady)
        {
            return;
        }

        _recvReady = false;
        int id = _recvBufferId;
        _recvBufferId = -1;
        int result = _recvResult;
        if (_lost || _life.IsClosing || result == -Interop.ECANCELED)
        {
            GiveBack(id);
            return;
        }

        if (result == -Interop.ENOBUFS)
        {
            // The ring ran dry: the datagram is still in the socket. Re-armed at once if a buffer came
            // back since the kernel found none; otherwise when one does (IoUringBufferRing.GiveBack).
            if (_buffers.Outstanding >= _buffers.Count)
            {
                _waitingForBuffers = true;
                _buffers.WaitForBuffers(this);
            }
            else
            {
                ArmReceive();
            }

            return;
        }

        if (result < 0)
        {
            CallErrorReceived(Interop.GetExceptionForErrno(-result, $"recvmsg(fd {_fd})", source: Interop.ErrnoSource.Socket));
            ArmReceive();
            return;
        }

        if (id < 0)
        {
            // A completion with no buffer is an empty datagram (the kernel names a buffer for any other).
            Deliver(null, 0, result, _recvNameLength, truncated: result > 0 || (_recvMsgFlags & Interop.MSG_TRUNC) != 0);
            ArmReceive();
            return;
        }

        byte* buffer = _buffers.Address((ushort)id);
        Deliver(buffer, _buffers.BufferSize, result, _recvNameLength, truncated: (_recvMsgFlags & Interop.MSG_TRUNC) != 0);

        // Read on while the socket holds more (a burst), before re-arming. The kernel says so where it
        // reports IORING_CQE_F_SOCK_NONEMPTY; UDP on 6.18 does not (100 datagrams in one burst came with
        // the flag never set), so otherwise a read-on is tried, and each one that finds nothing doubles the
        // number of completions before the next try (up to MaxReadOnBackoff): a ping-pong exchange then
        // costs one failed recvfrom per 16 datagrams rather than one per datagram, and a burst is drained
        // at the selector loop's pace within a few completions.
        if ((_recvCqeFlags & CQE_F_SOCK_NONEMPTY) != 0 || --_readOnCountdown <= 0)
        {
            if (ReadOn(buffer))
            {
                _readOnBackoff = 0;
                _readOnCountdown = 0;
            }
            else
            {
                _readOnBackoff = Math.Min(Math.Max(1, _readOnBackoff * 2), MaxReadOnBackoff);
                _readOnCountdown = _readOnBackoff;
            }
        }

        GiveBack(id);
        ArmReceive();
    }

    /// <summary>Buffer <paramref name="id"/> (if one) goes back to the ring, waking receives that wait for one.</summary>
    private void GiveBack(int id)
    {
        if (id >= 0)
        {
            _buffers.GiveBack((ushort)id);
        }
    }

    /// <inheritdoc/>
    /// <remarks>The receive ended with ENOBUFS and no buffer was free; one came back.</remarks>
    public void BuffersAvailable()
    {
        _waitingForBuffers = false;
        ArmReceive();
    }

    /// <summary>
    /// Non-blocking reads into <paramref name="buffer"/> (the completion's ring buffer, still this
    /// transport's) while the socket holds datagrams, as many as the selector loop reads per event; true
    /// if one was read.
    /// </summary>
    private bool ReadOn(byte* buffer)
    {
        bool any = false;
        byte* name = Scratch + RecvNameOffset;
        int size = _buffers.BufferSize;
        for (int i = 1; i < SelectorDatagramTransport.MaxDatagramsPerEvent && !_life.IsClosing; i++)
        {
            uint nameLength = AddressSize;
            nint n = Interop.RecvFrom(_fd, buffer, (nuint)size, Interop.MSG_TRUNC | Interop.MSG_DONTWAIT, name, &nameLength);
            if (n < 0)
            {
                int errno = Interop.GetLastErrno();
                if (errno is not (Interop.Errno.EAGAIN or Interop.Errno.EINTR))
                {
                    CallErrorReceived(Interop.GetExceptionForErrno(errno, $"recvfrom(fd {_fd})", source: Interop.ErrnoSource.Socket));
                    return true;
                }

                return any;
            }

            any = true;
            _uring.DatagramsReadOn++;
            Deliver(buffer, size, (int)n, (int)nameLength, truncated: n > size);
        }

        return any;
    }

    private void Deliver(byte* buffer, int capacity, int length, int nameLength, bool truncated)
    {
        // The kernel wrote the sender's address into the receive's name buffer.
        var scratch = _senders.Scratch.Span;
        int size = Math.Min(nameLength, scratch.Length);
        new ReadOnlySpan<byte>(Scratch + RecvNameOffset, size).CopyTo(scratch);
        DatagramCalls.Deliver(_loop, this, _datagramProtocol, new ReadOnlySpan<byte>(buffer, capacity), length, _senders.SenderOf(size), truncated);
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

        if (!HasPendingWrites)
        {
            // Nothing pending: try the socket first, and queue only what would block.
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
        }

        byte[] copy = _uring.SendBuffers.Rent(Math.Max(data.Length, 1));
        data.CopyTo(copy);
        _pending.Enqueue(new PendingDatagram(copy, data.Length, destination, address));
        _bufferSize += data.Length + PerDatagramOverhead;
        if (!_sendInKernel && _sending.Data is null)
        {
            SubmitNext();
        }

        _flow.MaybePause(_bufferSize);
    }

    /// <inheritdoc/>
    public int GetWriteBufferSize() => _bufferSize;

    /// <inheritdoc/>
    public (int Low, int High) GetWriteBufferLimits() => _flow.Limits;

    /// <inheritdoc/>
    public void SetWriteBufferLimits(int? high = null, int? low = null) => _flow.SetLimits(high, low, _bufferSize);

    private int TrySend(ReadOnlySpan<byte> data, SocketAddress? destination) => SelectorDatagramTransport.TrySend(_fd, data, destination);

    /// <summary>The oldest queued datagram goes to the kernel as one SENDMSG (submitted with the next wait).</summary>
    private void SubmitNext()
    {
        if (_pending.Count == 0 || _lost)
        {
            return;
        }

        _sending = _pending.Dequeue();
        _sendDropped = false;
        byte* scratch = Scratch;
        var iov = (Interop.IoVec*)(scratch + SendIovOffset);
        iov->Base = Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_sending.Data!));
        iov->Length = (nuint)_sending.Length;
        var message = (Interop.MsgHdr*)(scratch + SendMsgOffset);
        *message = new Interop.MsgHdr { Iov = iov, IovLength = 1 };
        if (_sending.Destination is { } destination)
        {
            destination.Buffer.Span[..destination.Size].CopyTo(new Span<byte>(scratch + SendNameOffset, AddressSize));
            message->Name = scratch + SendNameOffset;
            message->NameLength = (uint)destination.Size;
        }

        SubmitSend();
    }

    /// <summary>
    /// The SENDMSG of <see cref="_sending"/>, behind a POLL_ADD for writability it is linked to, and
    /// itself non-blocking (MSG_DONTWAIT): an EAGAIN comes back as its result and the pair is submitted
    /// again. Not a plain SENDMSG, which the kernel retries by itself after an EAGAIN: a UNIX datagram
    /// send copies the payload out of the message before it finds the peer's queue full, and the retry
    /// then sent an empty datagram (6.18; the contract test Close_SendsBufferedDatagramsFirst_Abort_DropsThem
    /// received 0 bytes for the first datagram sent through the ring).
    /// </summary>
    private void SubmitSend()
    {
        ref IoUringSqe poll = ref _uring.Uring.GetSqe();
        poll.Opcode = Interop.IoUring.OP_POLL_ADD;
        poll.Fd = _fd;
        poll.OpFlags = POLLOUT;
        poll.Flags = IOSQE_IO_LINK;
        poll.UserData = IoUringSelector.OperationUserData(_sendPoll.Index);
        _sendPollInKernel = true;

        ref IoUringSqe sqe = ref _uring.Uring.GetSqe();
        sqe.Opcode = Interop.IoUring.OP_SENDMSG;
        sqe.Fd = _fd;
        sqe.Addr = (ulong)(Scratch + SendMsgOffset);
        sqe.Len = 1;
        sqe.OpFlags = Interop.MSG_NOSIGNAL | Interop.MSG_DONTWAIT;
        sqe.UserData = IoUringSelector.OperationUserData(_send.Index);
        _sendInKernel = true;
        _uring.OperationsInKernel += 2;
        _uring.DatagramOperationsSubmitted++;
    }

    /// <summary>The linked poll's completion: nothing to do but note that the kernel let go of it.</summary>
    private void OnSendPollCompletion()
    {
        _sendPollInKernel = false;
        _uring.OperationsInKernel--;
        if (_lost)
        {
            Unregister();
        }
    }

    /// <summary>A send completion, inside the wait: recorded, handled on the ready queue.</summary>
    private void OnSendCompletion(int result)
    {
        _sendInKernel = false;
        _uring.OperationsInKernel--;
        if (_lost)
        {
            Unregister();
            return;
        }

        if (_sendDropped)
        {
            ReturnSending();
            return;
        }

        _sendResult = result;
        _uring.Schedule(_sendHandle);
    }

    private void OnSent()
    {
        if (_lost || _life.IsConnectionLost || _sending.Data is null)
        {
            return;
        }

        var sent = _sending;
        int result = _sendResult;
        if (result == -Interop.Errno.EAGAIN)
        {
            // The socket took nothing after all (another sender filled the peer's queue first): again.
            SubmitSend();
            return;
        }

        ReturnSending();
        _bufferSize -= sent.Length + PerDatagramOverhead;
        if (result < 0 && result != -Interop.ECANCELED)
        {
            // This datagram is lost; the ones behind it go on (asyncio).
            CallErrorReceived(SendError(-result, sent.Address));
            if (_lost || _life.IsConnectionLost)
            {
                return;
            }
        }

        SubmitNext();
        _flow.MaybeResume(_bufferSize);
        if (HasPendingWrites || _life.IsConnectionLost)
        {
            return;
        }

        if (_life.IsClosing)
        {
            _life.ScheduleConnectionLost(null);
        }
    }

    private void ReturnSending()
    {
        if (_sending.Data is { } data && !_sendInKernel)
        {
            _sending = default;
            _uring.SendBuffers.Return(data);
        }
    }

    private Exception SendError(int errno, EndPoint? address) =>
        Interop.GetExceptionForErrno(errno, $"sendto(fd {_fd}, {DatagramAddressing.Describe(address ?? _addressing.Remote)})", source: Interop.ErrnoSource.Socket);

    /// <inheritdoc/>
    private protected override void DropBuffer()
    {
        while (_pending.TryDequeue(out var p))
        {
            _uring.SendBuffers.Return(p.Data!);
        }

        if (_sendInKernel)
        {
            // An abort: the datagram in flight is withdrawn (the kernel may still send it if it already
            // had room); its array goes back with the completion.
            if (!_sendDropped)
            {
                _sendDropped = true;
                CancelSend();
            }
        }
        else
        {
            ReturnSending();
        }

        _bufferSize = 0;
    }

    /// <summary>The receive, as the selector sees it.</summary>
    private sealed class ReceiveOperation(IoUringDatagramTransport transport) : IIoUringOperation
    {
        public int Index = -1;

        public void OnCompletion(int result, uint flags) => transport.OnReceiveCompletion(result, flags);
    }

    /// <summary>The send in flight, as the selector sees it.</summary>
    private sealed class SendOperation(IoUringDatagramTransport transport) : IIoUringOperation
    {
        public int Index = -1;

        public void OnCompletion(int result, uint flags) => transport.OnSendCompletion(result);
    }

    /// <summary>The poll a send waits behind, as the selector sees it.</summary>
    private sealed class SendPollOperation(IoUringDatagramTransport transport) : IIoUringOperation
    {
        public int Index = -1;

        public void OnCompletion(int result, uint flags) => transport.OnSendPollCompletion();
    }

    /// <summary>A datagram waiting for the socket: its payload (a pinned array), where it goes (null: the connected peer), and the address as the caller gave it (for error messages).</summary>
    private readonly record struct PendingDatagram(byte[]? Data, int Length, SocketAddress? Destination, EndPoint? Address);
}
