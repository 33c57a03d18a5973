using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;

namespace Tulip;

public static partial class Tasks
{
    /// <summary>
    /// Waits for every future and returns their results in the order given: asyncio's <c>gather</c>.
    /// </summary>
    /// <remarks>
    /// Without <paramref name="returnExceptions"/>, the first exception finishes the gather with it (a cancelled child cancels it:
    /// awaiting it throws <see cref="CancelledError"/>); the others keep running. With it,
    /// exceptions are results like any other. Cancelling the gather cancels every child; it then ends
    /// cancelled once they are done.
    /// </remarks>
    /// <param name="futures">The futures (tasks included) to wait for.</param>
    /// <param name="returnExceptions">Return exceptions as results instead of failing at the first one.</param>
    /// <param name="cancellationToken">Cancels the gather (and so its children), as <see cref="Future.Cancel"/> would.</param>
    public static Future<T[]> Gather<T>(IEnumerable<Future<T>> futures, bool returnExceptions = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(futures);
        var children = futures.ToArray();
        var loop = children.Length > 0 ? children[0].LoopCore : RunningLoop();
        var gather = new GatheringFuture<T>(loop, children, static (f, _) => ((Future<T>)f).ResultUnchecked, returnExceptions);
        TaskCancellation.LinkToFuture(gather, cancellationToken);
        return gather;
    }

    /// <summary>As <see cref="Gather{T}(IEnumerable{Future{T}}, bool, CancellationToken)"/> for futures given one by one.</summary>
    public static Future<T[]> Gather<T>(params Future<T>[] futures) => Gather((IEnumerable<Future<T>>)futures);

    /// <summary>
    /// Waits for futures of any result type; results come as objects, exceptions (with
    /// <paramref name="returnExceptions"/>) as the exception objects.
    /// </summary>
    /// <param name="futures">The futures (tasks included) to wait for.</param>
    /// <param name="returnExceptions">Return exceptions as results instead of failing at the first one.</param>
    /// <param name="cancellationToken">Cancels the gather (and so its children).</param>
    public static Future<object?[]> Gather(IEnumerable<Future> futures, bool returnExceptions = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(futures);
        var children = futures.ToArray();
        var loop = children.Length > 0 ? children[0].LoopCore : RunningLoop();
        var gather = Gather(loop, children, returnExceptions);
        TaskCancellation.LinkToFuture(gather, cancellationToken);
        return gather;
    }

    /// <summary>As <see cref="Gather(IEnumerable{Future}, bool, CancellationToken)"/> on a given loop (which need not be running).</summary>
    public static Future<object?[]> Gather(IEventLoop loop, IEnumerable<Future> futures, bool returnExceptions = false)
    {
        ArgumentNullException.ThrowIfNull(futures);
        return new GatheringFuture<object?>(BaseEventLoop.FromInterface(loop), futures.ToArray(), static (f, _) => f.ResultObject(), returnExceptions);
    }

    /// <summary>The future <c>Gather</c> returns: done when its children are (or at the first failure).</summary>
    private sealed class GatheringFuture<T> : Future<T[]>
    {
        private static readonly Action<object?, object?> s_childDone = static (child, gather) => ((GatheringFuture<T>)gather!).OnChildDone((Future)child!);

        private readonly Future[] _children;
        private readonly Func<Future, int, T> _getResult;
        private readonly bool _returnExceptions;
        private int _finished;
        private bool _cancelRequested;
        private string? _cancelMessage;

        public GatheringFuture(BaseEventLoop loop, Future[] children, Func<Future, int, T> getResult, bool returnExceptions) : base(loop)
        {
            _children = children;
            _getResult = getResult;
            _returnExceptions = returnExceptions;
            if (children.Length == 0)
            {
                TrySetResult([]);
                return;
            }

            foreach (var child in children)
            {
                if (!ReferenceEquals(child.LoopCore, loop))
                {
                    throw new ArgumentException("Gather was given futures of different event loops; every future must belong to one loop.", nameof(children));
                }
            }

            // A future given twice is waited on once per position, as asyncio does.
            foreach (var child in children)
            {
                child.AddCallbackCore(s_childDone, this);
            }
        }

        public override bool Cancel(string? message = null)
        {
            if (Done)
            {
                return false;
            }

            bool any = false;
            foreach (var child in _children)
            {
                any |= child.Cancel(message);
            }

            if (any)
            {
                // Finish once the children report (asyncio: the outer future is cancelled then).
                _cancelRequested = true;
                _cancelMessage = message;
            }

            return any;
        }

        private void OnChildDone(Future child)
        {
            _finished++;
            if (Done)
            {
                if (!child.Cancelled)
                {
                    child.MarkExceptionObserved();
                }

                return;
            }

            if (!_returnExceptions)
            {
                if (child.Cancelled)
                {
                    // A future never carries a cancellation exception (SetException refuses one), so
                    // where asyncio sets CancelledError as the outer exception, the gather is cancelled:
                    // awaiting it throws CancelledError all the same.
                    base.Cancel(_cancelRequested ? _cancelMessage : "A future given to Gather was cancelled.");
                    return;
                }

                if (child.Exception() is { } ex)
                {
                    TrySetException(ex);
                    return;
                }
            }

            if (_finished < _children.Length)
            {
                return;
            }

            var results = new T[_children.Length];
            for (int i = 0; i < _children.Length; i++)
            {
                var c = _children[i];
                if (c.Cancelled)
                {
                    results[i] = (T)(object)new CancelledError();
                }
                else if (c.Exception() is { } e)
                {
                    results[i] = (T)(object)e;
                }
                else
                {
                    results[i] = _getResult(c, i);
                }
            }

            if (_cancelRequested)
            {
                base.Cancel(_cancelMessage);
            }
            else
            {
                TrySetResult(results);
            }
        }
    }
}
