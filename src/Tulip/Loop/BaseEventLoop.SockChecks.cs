using System;
using System.Net.Sockets;

namespace Tulip;

// The refusals every loop's Sock* methods make before they touch the socket, in one place so that the
// selector loops (epoll, poll, io_uring) and the proactor refuse the same bad input with the same
// exception (issue 12: a behaviour that differs between loops is a bug in one of them). Only what the
// Socket object already knows is read here (SocketType and Blocking are cached), plus one getsockopt
// for an accept; what only a syscall can tell (a receive on a listening socket: ENOTCONN, a connect on a
// connected one: EISCONN) is left to the call itself, which fails at once on every loop, as asyncio's do.
public abstract partial class BaseEventLoop
{
    /// <summary>Which Sock* method a <see cref="CheckSockSocket"/> is for: each refuses what is meaningless for it.</summary>
    private protected enum SockCall
    {
        /// <summary>SockRecv*, SockSendAll*, SockSendFile, SockConnect*: any socket type.</summary>
        Stream,

        /// <summary>SockAccept*: a listening stream socket.</summary>
        Accept,

        /// <summary>SockRecvFrom*, SockSendTo*: a datagram (or raw) socket, which has a peer per message.</summary>
        Datagram,
    }

    /// <summary>
    /// The socket checks of every Sock* call on every loop: present, not disposed, non-blocking, and of a
    /// kind the call means something for (an accept needs a listening stream socket; a datagram call
    /// refuses a stream socket, whose peer is fixed).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    /// <exception cref="ObjectDisposedException"><paramref name="socket"/> is disposed.</exception>
    /// <exception cref="ArgumentException"><paramref name="socket"/> is blocking.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="socket"/> is of the wrong kind for <paramref name="call"/>.</exception>
    private protected static void CheckSockSocket(Socket socket, SockCall call)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ObjectDisposedException.ThrowIf(socket.SafeHandle.IsClosed, socket);
        if (socket.Blocking)
        {
            throw new ArgumentException("The socket must be non-blocking (socket.Blocking = false): a blocking call would stall the loop.", nameof(socket));
        }

        switch (call)
        {
            case SockCall.Accept:
                if (socket.SocketType is not (SocketType.Stream or SocketType.Seqpacket))
                {
                    throw new InvalidOperationException(
                        $"SockAcceptAsync needs a listening stream socket, and this one is {socket.SocketType}: a datagram socket has no " +
                        "connections to accept; receive its datagrams with SockRecvFromAsync.");
                }

                // SO_ACCEPTCONN: one getsockopt per accept (and a boxed int), beside the accept's own
                // syscall and new Socket. Without it the selector loops failed with EINVAL from accept(2)
                // and the proactor with the runtime's own InvalidOperationException: two answers.
                if (socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.AcceptConnection) is 0)
                {
                    throw new InvalidOperationException(
                        "SockAcceptAsync needs a listening socket, and this one is not listening: call socket.Bind(...) and socket.Listen(backlog) first.");
                }

                break;
            case SockCall.Datagram:
                if (socket.SocketType is SocketType.Stream)
                {
                    throw new InvalidOperationException(
                        "SockRecvFromAsync and SockSendToAsync are for datagram sockets, and this one is a stream socket, whose peer is " +
                        "fixed by its connection: use SockRecvAsync and SockSendAllAsync.");
                }

                break;
        }
    }
}
