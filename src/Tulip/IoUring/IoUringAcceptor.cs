using System;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using Tulip.Selectors;

namespace Tulip.IoUring;

/// <summary>
/// One listening socket served by the io_uring loop (issue 14): one multishot <c>IORING_OP_ACCEPT</c>
/// armed on it, which hands over a new connection's fd per completion, with no accept system call and
/// no readiness poll. What the server sees is the selector loop's acceptor's behaviour: the same
/// transports (<see cref="SelectorEventLoop.AcceptConnection"/>), errors, backoff and stop.
/// </summary>
/// <remarks>
/// <para>
/// Completions come inside the wait: each fd is queued here and the connections are made on the ready
/// queue, at most <see cref="ServerOptions.Backlog"/> per iteration (the readiness acceptor's bound, so a
/// flood never starves the other callbacks), never a protocol call from inside the wait.
/// </para>
/// <para>
/// The kernel ends a multishot accept itself (a completion without <c>IORING_CQE_F_MORE</c>): on an
/// error, and whenever it cannot post more. It is re-armed then, after the connections it delivered. Out
/// of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) is reported once, as the selector loop's
/// acceptor reports it, and the listener rests <see cref="SelectorEventLoop.AcceptRetryDelay"/> seconds
/// before it is re-armed. The accept reads RLIMIT_NOFILE when it is armed, so a limit lowered while it
/// is armed applies from its next arming.
/// </para>
/// <para>
/// Stopping (<see cref="Dispose"/>, when the server closes) cancels the accept (<c>ASYNC_CANCEL</c>) and
/// hands the cancel to the kernel at once: an armed accept holds the listener's file, and the server
/// closes the listener next, which must then refuse connections. A connection the kernel accepted before
/// the cancel took effect (its completion read after the stop) is closed, as are those queued and not
/// made yet; so is any a completion brings while the loop closes. The operation's index is given back
/// with its last completion. Owned by the loop thread.
/// </para>
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed class IoUringAcceptor : IDisposable, IIoUringOperation
{
    private readonly IoUringEventLoop _loop;
    private readonly Socket _listener;
    private readonly int _fd;
    private readonly int _backlog;
    private readonly bool _noDelay;
    private readonly Func<IBaseProtocol> _protocolFactory;
    private readonly Action<ITransport> _accepted;
    private readonly Action<ITransport> _connectionLost;
    private readonly StateHandle<IoUringAcceptor> _handle;
    private readonly string _operation;
    private EndPoint? _endPoint;
    private TimerHandle? _retry;
    private int _index = -1;
    private bool _armed;      // the accept is in the kernel: its last completion (no F_MORE) not seen yet
    private bool _cancelled;  // an ASYNC_CANCEL of it was queued
    private bool _scheduled;  // _handle is on the ready queue
    private bool _stopped;
    private int _ended = 1;   // the result that ended the accept (-errno, or a last fd), not handled yet; 1: none
    // Accepted fds whose connections are not made yet, in order: a ring of _pending.Length (a power of two).
    private int[] _pending = new int[16];
    private int _pendingHead;
    private int _pendingCount;

    internal IoUringAcceptor(IoUringEventLoop loop, Socket listener, int fd, ServerOptions options, Func<IBaseProtocol> protocolFactory,
        Action<ITransport> accepted, Action<ITransport> connectionLost)
    {
        _loop = loop;
        _listener = listener;
        _fd = fd;
        _backlog = Math.Max(options.Backlog, 1);
        _noDelay = options.NoDelay && listener.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6;
        _protocolFactory = protocolFactory;
        _accepted = accepted;
        _connectionLost = connectionLost;
        _handle = new StateHandle<IoUringAcceptor>(loop, static a => a.OnReady(), this);
        _operation = $"io_uring accept (fd {fd})";
        _index = loop.Uring.RegisterOperation(this);
    }

    /// <summary>The address the listener is bound to (see the selector loop's acceptor).</summary>
    private EndPoint EndPoint => _endPoint ??= _listener.LocalEndPoint!;

    /// <summary>Connections accepted by the kernel and not made yet: for tests.</summary>
    internal int Pending => _pendingCount;

    /// <summary>Arms the accept (submitted with the loop's next wait).</summary>
    internal void Start() => Arm();

    private void Arm()
    {
        if (_armed || _stopped || _loop.IsClosed)
        {
            return;
        }

        ref IoUringSqe sqe = ref _loop.Uring.GetSqe();
        sqe.Opcode = Interop.IoUring.OP_ACCEPT;
        sqe.Fd = _fd;
        sqe.IoPrio = Interop.IoUring.ACCEPT_MULTISHOT;
        // accept_flags: what accept4(2) is given by the readiness acceptor. No address: every completion
        // of a multishot accept would write into the same one (the peer is asked for per connection).
        sqe.OpFlags = Interop.SOCK_NONBLOCK | Interop.SOCK_CLOEXEC;
        sqe.UserData = IoUringSelector.OperationUserData(_index);
        _armed = true;
        _cancelled = false;
        _loop.OperationsInKernel++;
        _loop.AcceptsArmed++;
    }

    /// <summary>A completion, inside the wait: an fd to make a connection of (or to close, once stopped), or the end of the accept.</summary>
    public void OnCompletion(int result, uint flags)
    {
        bool more = (flags & Interop.IoUring.CQE_F_MORE) != 0;
        if (result >= 0)
        {
            if (_stopped || _loop.IsClosed)
            {
                // Accepted after the stop (the cancel raced it) or while the loop closes: nobody takes it.
                Interop.Close(result);
            }
            else
            {
                Push(result);
            }
        }

        if (!more)
        {
            _armed = false;
            _loop.OperationsInKernel--;
            if (_stopped || _loop.IsClosed)
            {
                // The loop's close: what was queued will never be made (its handler will not run).
                ClosePending();
                Unregister();
                return;
            }

            _ended = result < 0 ? result : 0;
        }
        else if (result < 0 && !_stopped)
        {
            // The kernel ends a multishot accept on an error; should one come with F_MORE it is still reported.
            _ended = result;
        }

        if (!_stopped && !_loop.IsClosed && !_scheduled)
        {
            _scheduled = true;
            _loop.Schedule(_handle);
        }
    }

    /// <summary>The ready-queue handler: makes the connections accepted (up to the backlog), then re-arms or rests.</summary>
    private void OnReady()
    {
        _scheduled = false;
        if (_stopped)
        {
            ClosePending();
            return;
        }

        for (int i = 0; i < _backlog && _pendingCount != 0; i++)
        {
            int fd = Pop();
            SocketAccept.Peer(fd, EndPoint, out EndPoint? peer, out ulong packedPeer);
            _loop.AcceptConnection(new SocketFdHandle(fd), EndPoint, _noDelay, peer, packedPeer, _protocolFactory, _accepted, _connectionLost);
            if (_stopped)
            {
                // A callback closed the server: what is left is closed, not made.
                ClosePending();
                return;
            }
        }

        if (_pendingCount != 0)
        {
            // The rest on the next iteration, as the readiness acceptor leaves the rest to its next wake-up.
            _scheduled = true;
            _loop.Schedule(_handle);
            return;
        }

        int ended = _ended;
        _ended = 1;
        if (ended == 1 || _retry is not null)
        {
            return;
        }

        int errno = -ended;
        if (ended < 0 && errno != Interop.ECANCELED && !SelectorEventLoop.IsTransientAcceptError(errno))
        {
            if (_loop.ReportAcceptError(errno, _listener, _operation))
            {
                // Rest: nothing accepted until the retry (an accept still armed is withdrawn).
                Diagnostics.TulipMetrics.AcceptBackedOff(_loop);
                Cancel();
                _retry = _loop.CallLater(SelectorEventLoop.AcceptRetryDelay, static a => a.Resume(), this);
                return;
            }
        }

        // Ended by the kernel (no F_MORE) with a connection, a transient error or a reported one: again
        // (nothing to do while it is still armed).
        Arm();
    }

    // Queues the cancel of the armed accept, once.
    private void Cancel()
    {
        if (_armed && !_cancelled)
        {
            _cancelled = true;
            ref IoUringSqe sqe = ref _loop.Uring.GetSqe();
            sqe.Opcode = Interop.IoUring.OP_ASYNC_CANCEL;
            sqe.Fd = -1;
            sqe.Addr = IoUringSelector.OperationUserData(_index);
            sqe.UserData = IoUringSelector.CancelTag;
        }
    }

    private void Resume()
    {
        _retry = null;
        Arm();
    }

    /// <summary>Stops accepting: cancels the accept and hands the cancel to the kernel now, closes what was accepted and not made. Idempotent.</summary>
    public void Dispose()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        _retry?.Cancel();
        _retry = null;
        ClosePending();
        if (_loop.IsClosed)
        {
            // The loop's close cancelled everything and waited for it.
            return;
        }

        if (_armed)
        {
            Cancel();
            // The accept (and its cancel) reach the kernel before the server closes the listener: the
            // accept lets go of the listener's file, and a connect to it is refused from then on.
            _loop.Uring.SubmitAll();
        }
        else
        {
            Unregister();
        }
    }

    private void Unregister()
    {
        if (_index >= 0)
        {
            _loop.Uring.UnregisterOperation(_index);
            _index = -1;
        }
    }

    private void Push(int fd)
    {
        if (_pendingCount == _pending.Length)
        {
            var bigger = new int[_pending.Length * 2];
            for (int i = 0; i < _pendingCount; i++)
            {
                bigger[i] = _pending[(_pendingHead + i) & (_pending.Length - 1)];
            }

            _pending = bigger;
            _pendingHead = 0;
        }

        _pending[(_pendingHead + _pendingCount) & (_pending.Length - 1)] = fd;
        _pendingCount++;
    }

    private int Pop()
    {
        int fd = _pending[_pendingHead];
        _pendingHead = (_pendingHead + 1) & (_pending.Length - 1);
        _pendingCount--;
        return fd;
    }

    private void ClosePending()
    {
        while (_pendingCount != 0)
        {
            Interop.Close(Pop());
        }
    }
}
