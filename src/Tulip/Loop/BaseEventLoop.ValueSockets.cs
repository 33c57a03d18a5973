using System;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip;

// The .NET-shaped forms of sock_recv and sock_sendall: ValueTasks over operations the loop reuses
// (LoopValueOperation), for loops that receive and send in a hot loop of their own. The base loop
// has no sockets; the multiplexers override them, each its own way (readiness, completion).
public abstract partial class BaseEventLoop
{
    /// <inheritdoc/>
    public virtual ValueTask<int> SockRecvValueAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        throw Unsupported();

    /// <inheritdoc/>
    public virtual ValueTask SockSendAllValueAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        throw Unsupported();

    /// <summary>The check every <c>Sock*ValueAsync</c> makes first: the operations are the loop thread's.</summary>
    /// <exception cref="InvalidOperationException">Called from another thread than the running loop's.</exception>
    private protected void CheckValueSockThread()
    {
        if (!IsOnLoopThread)
        {
            throw new InvalidOperationException(
                "Sock*ValueAsync runs on the loop thread, inside the running loop (a loop task or a callback); " +
                "from another thread use loop.RunCoroutineThreadSafe(...).");
        }
    }

    /// <summary>A completed <see cref="ValueTask{TResult}"/> for a caller's token that was cancelled before the call.</summary>
    private protected static ValueTask<int> CancelledBeforeStart() => ValueTask.FromException<int>(new CancelledError());
}
