using System;
using System.Collections.Generic;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;
using System.Threading.Tasks.Sources;

namespace Tulip;

public static partial class Tasks
{
    /// <summary>
    /// Yields the futures as they finish, in the order they finish: asyncio 3.13's
    /// <c>async for f in as_completed(fs)</c>. Every future yielded is done; read its result with
    /// <see cref="Future{T}.Result"/> (which throws its exception).
    /// </summary>
    /// <remarks>
    /// <para>
    /// Tracking starts at this call, as asyncio's does: the timeout counts from here, and futures
    /// that finish before the enumeration begins are yielded first. A future given twice is yielded
    /// once. Once <paramref name="timeout"/> seconds pass, the next step of the enumeration throws
    /// <see cref="TimeoutError"/> (futures already finished are yielded first); nothing is cancelled.
    /// </para>
    /// <para>
    /// The sequence can be enumerated once, on the loop thread (<c>await foreach</c> in a loop task).
    /// A step waiting for the next future ends with <see cref="CancelledError"/> when the enumerating
    /// task is cancelled or either <paramref name="cancellationToken"/> or the enumerator's token is;
    /// the futures are left alone.
    /// </para>
    /// </remarks>
    /// <exception cref="ArgumentException">A future belongs to another loop.</exception>
    public static IAsyncEnumerable<Future<T>> AsCompleted<T>(IEnumerable<Future<T>> futures, double? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(futures);
        CheckTimeout(timeout, nameof(timeout));
        var loop = RunningLoop();
        var set = new HashSet<Future<T>>(futures);
        foreach (var f in set)
        {
            if (f is null)
            {
                throw new ArgumentException("The futures include null.", nameof(futures));
            }

            CheckSameLoop(f, loop, nameof(futures));
        }

        return new AsCompletedIterator<T>(loop, set, timeout, cancellationToken);
    }

    /// <summary>
    /// The enumerable and enumerator of <c>AsCompleted</c>, and the <see cref="IValueTaskSource{TResult}"/>
    /// behind each <c>MoveNextAsync</c> that has to wait: one object per call, reused for every step.
    /// State is owned by the loop thread; only the cancellation-token callbacks run elsewhere, and
    /// they only post to the loop.
    /// </summary>
    private sealed class AsCompletedIterator<T> : IAsyncEnumerable<Future<T>>, IAsyncEnumerator<Future<T>>, IValueTaskSource<bool>
    {
        private static readonly Action<object?, object?> s_onDone = static (f, it) => ((AsCompletedIterator<T>)it!).OnDone((Future<T>)f!);
        private static readonly Action<object?> s_onTokenCancelled = static it =>
        {
            var self = (AsCompletedIterator<T>)it!;
            self._loop.ScheduleFromAnyThread(static (s, _) => ((AsCompletedIterator<T>)s!).OnCancelled(), self, null);
        };

        private static readonly Action<object?, object?> s_runContinuation = static (it, _) => ((AsCompletedIterator<T>)it!).RunContinuation();

        private readonly BaseEventLoop _loop;
        private readonly HashSet<Future<T>> _todo;
        private readonly Queue<Future<T>> _done = new();
        private readonly CancellationToken _token;
        private CancellationToken _enumeratorToken;
        private TimerHandle? _timer;
        private int _left;
        private bool _timedOut;
        private bool _enumerated;
        private Future<T>? _current;

        // The step in progress (the IValueTaskSource state).
        private bool _waiting;
        private short _version;
        private bool _completed;
        private bool _result;
        private ExceptionDispatchInfo? _error;
        private Action<object?>? _continuation;
        private object? _continuationState;
        private ExecutionContext? _executionContext;
        private CancellationTokenRegistration _registration1;
        private CancellationTokenRegistration _registration2;
        private CancellationTokenRegistration _registration3;
        private ILoopTask? _waitingTask;

        public AsCompletedIterator(BaseEventLoop loop, HashSet<Future<T>> futures, double? timeout, CancellationToken token)
        {
            _loop = loop;
            _todo = futures;
            _left = futures.Count;
            _token = token;
            foreach (var f in futures)
            {
                f.AddCallbackCore(s_onDone, this);
            }

            if (futures.Count > 0 && timeout is double seconds)
            {
                _timer = loop.CallLater(seconds, static it => it.OnTimeout(), this);
            }
        }

        public Future<T> Current => _current ?? throw new InvalidOperationException("No current future: call MoveNextAsync first.");

        public IAsyncEnumerator<Future<T>> GetAsyncEnumerator(CancellationToken cancellationToken = default)
        {
            if (_enumerated)
            {
                throw new InvalidOperationException("The sequence from AsCompleted can be enumerated only once: it tracks the futures from the moment it is made.");
            }

            _enumerated = true;
            _enumeratorToken = cancellationToken;
            return this;
        }

        public ValueTask<bool> MoveNextAsync()
        {
            if (!_loop.IsOnLoopThread)
            {
                throw new InvalidOperationException("AsCompleted can only be enumerated on the thread running its event loop.");
            }

            if (_waiting)
            {
                throw new InvalidOperationException("MoveNextAsync was called while the previous call is still pending.");
            }

            if (_left == 0)
            {
                return new ValueTask<bool>(false);
            }

            if (_token.IsCancellationRequested || _enumeratorToken.IsCancellationRequested)
            {
                return ValueTask.FromException<bool>(new CancelledError("The enumeration of AsCompleted was cancelled by its token."));
            }

            _left--;
            if (_done.TryDequeue(out var f))
            {
                _current = f;
                return new ValueTask<bool>(true);
            }

            if (_timedOut)
            {
                return ValueTask.FromException<bool>(new TimeoutError("AsCompleted timed out before every future was done."));
            }

            _waiting = true;
            _completed = false;
            _error = null;
            _version++;
            _registration1 = _token.UnsafeRegister(s_onTokenCancelled, this);
            _registration2 = _enumeratorToken.UnsafeRegister(s_onTokenCancelled, this);
            // The enumerating task's token: cancelled when the task is, which the loop cannot deliver
            // while the task awaits this ValueTask. One already cancelled is a cancellation the task
            // has caught and gone on from; it is not delivered again.
            var taskToken = TaskCancellation.CurrentToken(default);
            _waitingTask = _loop.CurrentTask;
            if (!taskToken.IsCancellationRequested)
            {
                _registration3 = taskToken.UnsafeRegister(s_onTokenCancelled, this);
            }

            return new ValueTask<bool>(this, _version);
        }

        public ValueTask DisposeAsync()
        {
            StopTracking();
            return default;
        }

        public bool GetResult(short token)
        {
            CheckToken(token);
            if (!_completed)
            {
                throw new InvalidOperationException("The step of AsCompleted is not finished yet.");
            }

            var error = _error;
            _error = null;
            error?.Throw();
            return _result;
        }

        public ValueTaskSourceStatus GetStatus(short token)
        {
            CheckToken(token);
            if (!_completed)
            {
                return ValueTaskSourceStatus.Pending;
            }

            return _error is null ? ValueTaskSourceStatus.Succeeded
                : _error.SourceException is OperationCanceledException ? ValueTaskSourceStatus.Canceled
                : ValueTaskSourceStatus.Faulted;
        }

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            CheckToken(token);
            _continuation = continuation;
            _continuationState = state;
            _executionContext = (flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0 ? ExecutionContext.Capture() : null;
            // UseSchedulingContext needs nothing more: the continuation always runs on the loop
            // thread, from the ready queue, which is where the loop's SynchronizationContext posts.
            if (_completed)
            {
                _loop.ScheduleFromAnyThread(s_runContinuation, this, null);
            }
        }

        private void CheckToken(short token)
        {
            if (token != _version)
            {
                throw new InvalidOperationException("This ValueTask from AsCompleted was already awaited; a ValueTask can be awaited once.");
            }
        }

        private void OnDone(Future<T> future)
        {
            if (!_todo.Remove(future))
            {
                return;
            }

            if (_todo.Count == 0)
            {
                _timer?.Cancel();
                _timer = null;
            }

            if (_waiting)
            {
                _current = future;
                Complete(true, null);
            }
            else
            {
                _done.Enqueue(future);
            }
        }

        private void OnTimeout()
        {
            _timer = null;
            foreach (var f in _todo)
            {
                f.RemoveCallbackCore(s_onDone, this);
            }

            _todo.Clear();
            _timedOut = true;
            if (_waiting)
            {
                Complete(false, new TimeoutError("AsCompleted timed out before every future was done."));
            }
        }

        private void OnCancelled()
        {
            if (!_waiting)
            {
                return;
            }

            // The step consumed nothing: the future it waited for is still to come.
            _left++;
            // This CancelledError delivers the task's cancellation: take it, so it is not thrown
            // again at the task's next await (asyncio delivers a cancellation once).
            _waitingTask?.TakePendingCancellation();
            Complete(false, new CancelledError("The enumeration of AsCompleted was cancelled while waiting for the next future."));
        }

        private void Complete(bool result, Exception? error)
        {
            _waiting = false;
            _waitingTask = null;
            _registration1.Unregister();
            _registration2.Unregister();
            _registration3.Unregister();
            _result = result;
            _error = error is null ? null : ExceptionDispatchInfo.Capture(error);
            _completed = true;
            if (_continuation is not null)
            {
                // Never inline: the continuation runs from the ready queue, as future callbacks do.
                _loop.ScheduleInternal(s_runContinuation, this, null);
            }
        }

        private void RunContinuation()
        {
            var continuation = _continuation;
            var state = _continuationState;
            var context = _executionContext;
            _continuation = null;
            _continuationState = null;
            _executionContext = null;
            if (continuation is null)
            {
                return;
            }

            if (context is null)
            {
                continuation(state);
            }
            else
            {
                ExecutionContext.Run(context, static s =>
                {
                    var (c, st) = ((Action<object?>, object?))s!;
                    c(st);
                }, (continuation, state));
            }
        }

        private void StopTracking()
        {
            _timer?.Cancel();
            _timer = null;
            foreach (var f in _todo)
            {
                f.RemoveCallbackCore(s_onDone, this);
            }

            _todo.Clear();
            _done.Clear();
            _left = 0;
        }
    }
}
