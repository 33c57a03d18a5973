using System;
using System.Threading;

namespace Tulip;

public static partial class Tasks
{
    /// <summary>
    /// Protects <paramref name="inner"/> from cancellation: returns an outer future that finishes as
    /// the inner does, but whose cancellation (or the awaiting task's) leaves the inner running.
    /// asyncio's <c>shield</c>.
    /// </summary>
    /// <remarks>
    /// <para>
    /// The inner's result or exception passes to the outer; if the inner itself is cancelled, so is
    /// the outer. A done inner is returned as it is.
    /// </para>
    /// <para>
    /// Once the outer is cancelled, the inner's outcome goes nowhere: its exception is marked
    /// observed, so nothing is reported as never retrieved (asyncio logs nothing either). Keep a
    /// reference to the inner to read it.
    /// </para>
    /// </remarks>
    /// <param name="inner">The future (or task) to protect.</param>
    /// <param name="cancellationToken">Cancels the outer future only.</param>
    public static Future<T> Shield<T>(Future<T> inner, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (inner.Done)
        {
            return inner;
        }

        var outer = new ShieldFuture<T>(inner);
        inner.AddCallbackCore(ShieldFuture<T>.InnerDone, outer);
        TaskCancellation.LinkToFuture(outer, cancellationToken);
        return outer;
    }

    /// <summary>The outer future of a shield: stops listening to the inner when cancelled.</summary>
    private sealed class ShieldFuture<T> : Future<T>
    {
        public static readonly Action<object?, object?> InnerDone = static (inner, outer) => ((ShieldFuture<T>)outer!).OnInnerDone();

        private readonly Future<T> _inner;

        public ShieldFuture(Future<T> inner) : base(inner.LoopCore) => _inner = inner;

        public override bool Cancel(string? message = null)
        {
            if (!base.Cancel(message))
            {
                return false;
            }

            // The inner keeps running; from now its outcome goes nowhere.
            _inner.RemoveCallbackCore(InnerDone, this);
            _inner.AddCallbackCore(static (f, _) => MarkObserved((Future)f!), null);
            return true;
        }

        private static void MarkObserved(Future inner)
        {
            if (!inner.Cancelled)
            {
                inner.MarkExceptionObserved();
            }
        }

        private void OnInnerDone()
        {
            var inner = _inner;
            if (Done)
            {
                MarkObserved(inner);
                return;
            }

            if (inner.Cancelled)
            {
                base.Cancel();
            }
            else if (inner.Exception() is { } ex)
            {
                TrySetException(ex);
            }
            else
            {
                TrySetResult(inner.ResultUnchecked);
            }
        }
    }
}
