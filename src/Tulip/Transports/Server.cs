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

    /// <summary>Accepts connections until the server is closed or the wait is cancelled.</summary>
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

    /// <summary>Completes once the server is closed and every connection it accepted is gone.</summary>
    public abstract LoopTask WaitClosedAsync(CancellationToken cancellationToken = default);

    /// <summary>Closes the server and waits until it is closed.</summary>
    public async ValueTask DisposeAsync()
    {
        Close();
        await WaitClosedAsync();
        GC.SuppressFinalize(this);
    }
}
