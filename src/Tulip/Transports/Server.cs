using System;
using System.Collections.Generic;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip;

/// <summary>
/// A listening server made by <see cref="IEventLoop.CreateServerAsync"/>: asyncio's <c>Server</c>.
/// Members are for the loop thread.
/// </summary>
public abstract class Server : IAsyncDisposable
{
    /// <summary>The listening sockets (one per address bound).</summary>
    public abstract IReadOnlyList<Socket> Sockets { get; }

    /// <summary>The loop the server runs on.</summary>
    public abstract IEventLoop Loop { get; }

    /// <summary>True while the server accepts connections.</summary>
    public abstract bool IsServing { get; }

    /// <summary>Starts accepting, if the server was created with <c>StartServing = false</c>. Idempotent.</summary>
    public abstract void StartServing();

    /// <summary>
    /// Starts serving if need be and accepts connections until the server is closed (the task then
    /// completes) or the call is cancelled (the server is closed, and the task ends cancelled).
    /// </summary>
    /// <remarks>
    /// Either way the call returns as soon as the listening sockets are closed: it does not wait
    /// for the connections already accepted, which stay open (asyncio 3.12's <c>serve_forever</c>
    /// waits for them, so one idle client kept a cancelled server from returning). Ending them is
    /// the caller's choice, with a limit: <see cref="ShutdownAsync"/>, or
    /// <see cref="CloseClients"/> / <see cref="AbortClients"/> and <see cref="WaitClosedAsync"/>.
    /// </remarks>
    /// <exception cref="InvalidOperationException">The server is closed, or ServeForeverAsync is already running on it.</exception>
    /// <exception cref="CancelledError">The call was cancelled (the server is closed by then).</exception>
    public abstract LoopTask ServeForeverAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Stops listening and closes the listening sockets. Connections already accepted stay open
    /// (see <see cref="CloseClients"/>). Idempotent.
    /// </summary>
    public abstract void Close();

    /// <summary>Closes every connection the server accepted (flushing what they buffered).</summary>
    public abstract void CloseClients();

    /// <summary>Aborts every connection the server accepted.</summary>
    public abstract void AbortClients();

    /// <summary>
    /// Completes once the server is closed and every connection it accepted is gone (asyncio 3.12's
    /// <c>wait_closed</c>). It waits for as long as that takes: an idle client keeps it waiting until
    /// the client or <see cref="CloseClients"/> ends the connection. Bound it with the token, with
    /// <see cref="Tasks.WaitFor(Future, double?, CancellationToken)"/>, or use <see cref="ShutdownAsync"/>.
    /// </summary>
    /// <exception cref="CancelledError">The wait was cancelled (the server and its connections are left as they are).</exception>
    public abstract LoopTask WaitClosedAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Ends the server and its connections within a limit, as a host shuts down: closes the
    /// listening sockets, closes every connection (each sends what it has buffered, then ends),
    /// waits up to <paramref name="timeout"/> seconds for them to go, then aborts those still open
    /// (their unsent data is dropped) and waits until they are gone.
    /// </summary>
    /// <remarks>
    /// An aborted connection's ConnectionLost runs on the next loop iteration, so the second wait
    /// is short. A <paramref name="timeout"/> of 0 aborts at once whatever is still open after the
    /// close.
    /// </remarks>
    /// <param name="timeout">Seconds to let the connections end by themselves; at least 0.</param>
    /// <param name="cancellationToken">Cancels the waiting (the server is closed by then; the connections are left as they are).</param>
    /// <returns>True if every connection ended by itself within the timeout; false if some had to be aborted.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative or NaN.</exception>
    public async LoopTask<bool> ShutdownAsync(double timeout, CancellationToken cancellationToken = default)
    {
        if (!(timeout >= 0))
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout is a number of seconds, 0 or more.");
        }

        Close();
        CloseClients();
        var closed = WaitClosedAsync(cancellationToken);
        var (done, _) = await Tasks.Wait([closed], timeout, cancellationToken: cancellationToken);
        if (done.Count == 1)
        {
            await closed; // raises what the wait raised, if anything
            return true;
        }

        AbortClients();
        await closed;
        return false;
    }

    /// <summary>
    /// Closes the server and its connections: the listening sockets close, every connection still
    /// open is aborted (unsent data is dropped), and the call completes once they are gone.
    /// </summary>
    /// <remarks>
    /// Unlike asyncio's <c>async with server</c>, which waits for the clients with no limit,
    /// disposing never waits on a peer: an idle client cannot keep it from returning. For a
    /// graceful end, call <see cref="ShutdownAsync"/> first.
    /// </remarks>
    public async ValueTask DisposeAsync()
    {
        Close();
        AbortClients();
        await WaitClosedAsync();
        GC.SuppressFinalize(this);
    }
}
