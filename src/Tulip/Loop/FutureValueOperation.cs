using System;
using System.Threading.Tasks;

namespace Tulip;

/// <summary>
/// A loop future awaited as a <see cref="ValueTask"/> with a loop await's cancellation: when the loop
/// task that asked for it is cancelled while it waits, the future is cancelled too (a task the caller
/// owns, as awaiting it directly would) or, for a shielded wait, only the wait ends with
/// <see cref="CancelledError"/>. What the <see cref="IAsyncDisposable"/> forms of loop objects return.
/// One per wait that does not complete at once; loop thread only.
/// </summary>
internal sealed class FutureValueOperation : LoopValueOperation
{
    private static readonly Action<object?, object?> s_futureDone = static (future, op) => ((FutureValueOperation)op!).OnFutureDone((Future)future!);

    private readonly Future _future;
    private readonly bool _cancelFuture;

    private FutureValueOperation(BaseEventLoop loop, Future future, bool cancelFuture) : base(loop)
    {
        _future = future;
        _cancelFuture = cancelFuture;
    }

    /// <summary>A <see cref="ValueTask"/> that completes as <paramref name="future"/> does.</summary>
    /// <param name="future">The future to wait for.</param>
    /// <param name="cancelFuture">True: the calling task's cancellation cancels the future; false: it ends only the wait (the future goes on).</param>
    /// <exception cref="InvalidOperationException">Not on the future's loop thread.</exception>
    public static ValueTask Await(Future future, bool cancelFuture)
    {
        var loop = future.LoopCore;
        if (!loop.IsOnLoopThread)
        {
            throw new InvalidOperationException("DisposeAsync of a loop object runs on its loop's thread; from another thread use loop.RunCoroutineThreadSafe(...).");
        }

        if (future.Done)
        {
            return future.Cancelled ? ValueTask.FromException(new CancelledError())
                : future.Exception() is { } error ? ValueTask.FromException(error)
                : default;
        }

        var op = new FutureValueOperation(loop, future, cancelFuture);
        op.BeginPending(default);
        future.AddCallbackCore(s_futureDone, op);
        return new ValueTask(op, op.Version);
    }

    protected override void CancelCore()
    {
        if (_cancelFuture)
        {
            // The outcome comes back through the future's done callback.
            _future.Cancel();
            return;
        }

        Complete(0, new CancelledError());
    }

    private void OnFutureDone(Future future) => Complete(0, future.Cancelled ? new CancelledError() : future.Exception());

    protected override void Release()
    {
    }
}
