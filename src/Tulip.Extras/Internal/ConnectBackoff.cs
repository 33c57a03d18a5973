using System;
using System.Net.Sockets;
using System.Threading;

namespace Tulip.Extras.Internal;

/// <summary>
/// Retry pacing for an AF_UNIX connect to a listener whose backlog is full. Unlike TCP's
/// EINPROGRESS, such a connect fails with EAGAIN and does not go on in the background, and the
/// unconnected socket reports writable at once, so neither readiness nor a completion says when to
/// try again (a test showed both: readiness saw a bogus success, .NET's ConnectAsync threw EAGAIN).
/// So the connect is retried after a pause that doubles from 1 ms up to 50 ms: quick when the
/// server is merely busy, cheap when it is stalled.
/// </summary>
internal struct ConnectBackoff
{
    private const double First = 0.001;
    private const double Max = 0.05;

    private double _next;

    /// <summary>
    /// Connects a new SOCK_SEQPACKET socket with <paramref name="attempt"/>, which returns true once
    /// connected and false when the listener's backlog is full; then the socket is spent: it is
    /// closed and, after the next pause, a fresh one tries. A socket whose attempt throws is closed too.
    /// </summary>
    public static async LoopTask<Socket> ConnectAsync<TState>(TState state, Func<Socket, TState, LoopTask<bool>> attempt,
        CancellationToken cancellationToken)
    {
        var backoff = new ConnectBackoff();
        while (true)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
            bool connected;
            try
            {
                connected = await attempt(socket, state);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            if (connected)
            {
                return socket;
            }

            socket.Dispose();
            await backoff.WaitAsync(cancellationToken);
        }
    }

    /// <summary>Sleeps on the loop's clock for the next pause.</summary>
    public LoopTask WaitAsync(CancellationToken cancellationToken)
    {
        _next = _next == 0 ? First : Math.Min(_next * 2, Max);
        return SleepAsync(_next, cancellationToken);
    }

    private static async LoopTask SleepAsync(double seconds, CancellationToken cancellationToken) =>
        await Tasks.Sleep(seconds, cancellationToken);
}
