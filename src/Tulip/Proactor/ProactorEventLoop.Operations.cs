using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Tulip;

// What the loop keeps about the operations in flight and the sockets its transports own: a count of
// outstanding operations (the proactor's answer to "how much I/O is the loop watching", as a selector
// counts its registered fds), and which socket handle belongs to which live transport, so that the
// Sock* methods refuse a transport's socket as the selector loop refuses its fd (asyncio's
// _ensure_fd_no_transport). Both are owned by the loop thread.
public sealed partial class ProactorEventLoop
{
    private int _outstanding;
    private readonly Dictionary<nint, IBaseTransport> _owners = [];

    /// <summary>
    /// Operations started and not yet completed on the loop: the transports' receives, sends and
    /// accepts (<see cref="ProactorOperation.Pending"/>) and the Sock* calls waiting on the runtime.
    /// Back to where it was once the transports and calls that started them are gone. Loop thread.
    /// </summary>
    internal int OutstandingOperations => _outstanding;

    /// <summary>Counts an operation in (<paramref name="started"/>) or out. Loop thread.</summary>
    internal void CountOperation(bool started) => _outstanding += started ? 1 : -1;

    /// <summary>Records that <paramref name="transport"/> owns <paramref name="socket"/>'s handle until <see cref="ReleaseSocket"/>.</summary>
    internal void ClaimSocket(Socket socket, IBaseTransport transport) => _owners[socket.Handle] = transport;

    /// <summary>Forgets the claim of <paramref name="transport"/> on <paramref name="handle"/> (a later owner of the same number is kept).</summary>
    internal void ReleaseSocket(nint handle, IBaseTransport transport)
    {
        if (_owners.TryGetValue(handle, out var owner) && ReferenceEquals(owner, transport))
        {
            _owners.Remove(handle);
        }
    }

    /// <summary>
    /// The checks of every Sock* call, as the selector loop makes them: the socket's, shared with it
    /// (<see cref="BaseEventLoop.CheckSockSocket"/>), then an open loop (and its thread, in debug mode)
    /// and a socket no open transport owns.
    /// </summary>
    private void CheckSockCall(Socket socket, SockCall call = SockCall.Stream)
    {
        CheckSockSocket(socket, call);
        int fd = FdOf(socket);

        if (IsClosed)
        {
            throw new InvalidOperationException("The event loop is closed: create a new one with EventLoop.NewEventLoop().");
        }

        if (Debug)
        {
            CheckThread();
        }

        if (_owners.TryGetValue(socket.Handle, out var owner) && !owner.IsClosing)
        {
            ThrowUsedByTransport(fd, owner);
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowUsedByTransport(int fd, IBaseTransport owner) =>
        throw new InvalidOperationException(
            $"File descriptor {fd} is used by transport {owner}: the Sock* methods would race its own receives and " +
            "sends. Use the transport's own methods (PauseReading, ResumeReading, Write), or close the transport " +
            "before using its socket directly.");
}
