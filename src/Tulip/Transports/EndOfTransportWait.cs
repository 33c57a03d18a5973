using System;
using System.Threading.Tasks;

namespace Tulip;

/// <summary>
/// The close-and-wait <see cref="IAsyncDisposable.DisposeAsync"/> of a transport that does not compose
/// a <see cref="TransportLifecycle"/> (TLS, subprocess, the in-memory test transport): the transport
/// keeps a <see cref="Future{T}"/> field (null until a dispose waits), completed by <see cref="End"/>
/// once its end has been delivered (ConnectionLost has run); a dispose awaits it as
/// <see cref="TransportLifecycle.CloseAndWaitAsync"/> does, so cancelling the waiting task ends only
/// the wait, never the close. Loop thread only.
/// </summary>
internal static class EndOfTransportWait
{
    /// <summary>
    /// The checks a dispose makes before it closes anything: <paramref name="loop"/> is a
    /// <see cref="BaseEventLoop"/> (whose futures the wait needs) and this is its thread.
    /// </summary>
    /// <exception cref="InvalidOperationException">Another thread than the loop's, or a loop that is not a <see cref="BaseEventLoop"/>.</exception>
    public static BaseEventLoop CheckLoop(IEventLoop loop, IBaseTransport transport)
    {
        if (loop is not BaseEventLoop baseLoop)
        {
            throw new InvalidOperationException($"DisposeAsync of {transport} needs a {nameof(BaseEventLoop)}: close the transport and wait for ConnectionLost in its protocol instead.");
        }

        if (!baseLoop.IsOnLoopThread)
        {
            throw new InvalidOperationException($"DisposeAsync of {transport} runs on its loop's thread; from another thread use loop.RunCoroutineThreadSafe(...).");
        }

        return baseLoop;
    }

    /// <summary>Waits for <see cref="End"/> on <paramref name="waiter"/>, made now if no dispose waits yet.</summary>
    public static ValueTask Wait(BaseEventLoop loop, ref Future<VoidResult>? waiter)
    {
        waiter ??= new Future<VoidResult>(loop);
        return FutureValueOperation.Await(waiter, cancelFuture: false);
    }

    /// <summary>The transport's end was delivered: completes the disposes that wait, if any.</summary>
    public static void End(ref Future<VoidResult>? waiter)
    {
        waiter?.TrySetResult(default);
        waiter = null;
    }
}
