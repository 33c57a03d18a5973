using System;
using System.Collections.Generic;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip;

// SockRecvValueAsync and SockSendAllValueAsync, the completion way: Socket's own ValueTask calls
// (which reuse one runtime operation per socket and direction), started with the token of an
// operation from the loop's pool. A call the runtime completes at once returns its value with
// nothing more; one in flight completes on a runtime thread, which hands the outcome to the loop,
// and the pooled operation completes the caller's ValueTask there. Withdrawing is cancelling the
// runtime call through that token: the runtime takes it off the socket (no byte taken), or it had
// completed first and its result is delivered.
public sealed partial class ProactorEventLoop
{
    /// <summary>Operations kept for reuse (see SelectorEventLoop's pool of the same size).</summary>
    private const int ValueOperationPoolSize = 16;

    // Owned by the loop thread.
    private Stack<RecvOperation>? _recvOperations;
    private Stack<SendOperation>? _sendOperations;

    /// <inheritdoc/>
    public override ValueTask<int> SockRecvValueAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckValueSockThread();
        CheckSockCall(socket);
        if (cancellationToken.IsCancellationRequested)
        {
            return CancelledBeforeStart();
        }

        if (buffer.IsEmpty)
        {
            return new ValueTask<int>(0); // as SockRecvAsync: 0 at once, not the runtime's wait for data
        }

        var op = _recvOperations is { Count: > 0 } pool ? pool.Pop() : new RecvOperation(this);
        return op.Start(socket, buffer, cancellationToken);
    }

    /// <inheritdoc/>
    public override ValueTask SockSendAllValueAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        CheckValueSockThread();
        CheckSockCall(socket);
        if (cancellationToken.IsCancellationRequested)
        {
            return new ValueTask(CancelledBeforeStart().AsTask());
        }

        if (data.IsEmpty)
        {
            return ValueTask.CompletedTask;
        }

        var op = _sendOperations is { Count: > 0 } pool ? pool.Pop() : new SendOperation(this);
        return op.Start(socket, data, cancellationToken);
    }

    private void ReturnOperation(RecvOperation op)
    {
        _recvOperations ??= new Stack<RecvOperation>();
        if (_recvOperations.Count < ValueOperationPoolSize)
        {
            _recvOperations.Push(op);
        }
    }

    private void ReturnOperation(SendOperation op)
    {
        _sendOperations ??= new Stack<SendOperation>();
        if (_sendOperations.Count < ValueOperationPoolSize)
        {
            _sendOperations.Push(op);
        }
    }

    /// <summary>
    /// What the two operations share: the token source their runtime calls are started with, the
    /// hand-over of a runtime completion to the loop, and the count in <see cref="OutstandingOperations"/>.
    /// </summary>
    // CA1001: the token source has no timer and no wait handle, so there is nothing for Dispose to
    // release but its registrations, which the runtime drops as each call completes; a pooled
    // operation lives as long as its loop and is collected with it.
#pragma warning disable CA1001
    private abstract class RuntimeOperation : LoopValueOperation
#pragma warning restore CA1001
    {
        private static readonly Action<object?, object?> s_deliver = static (op, _) => ((RuntimeOperation)op!).Deliver();

        private readonly Action _onRuntimeCompleted;
        private CancellationTokenSource _cts = new();
        private ValueTask<int> _inFlight;
        private int _runtimeResult;
        private Exception? _runtimeError;

        protected RuntimeOperation(ProactorEventLoop loop) : base(loop)
        {
            Loop = loop;
            _onRuntimeCompleted = OnRuntimeCompleted;
        }

        protected ProactorEventLoop Loop { get; }

        /// <summary>The token to start the runtime call with: cancelled to withdraw it.</summary>
        protected CancellationToken RuntimeToken
        {
            get
            {
                if (_cts.IsCancellationRequested)
                {
                    // A withdrawn use spent it; the runtime has let go of it since (its call completed).
                    _cts.Dispose();
                    _cts = new CancellationTokenSource();
                }

                return _cts.Token;
            }
        }

        /// <summary>Waits for <paramref name="call"/>, which is not complete, and calls <see cref="OnRuntimeOutcome"/> on the loop with its outcome.</summary>
        protected void AwaitRuntime(ValueTask<int> call)
        {
            _inFlight = call;
            Loop.CountOperation(started: true);
            call.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onRuntimeCompleted);
        }

        /// <summary>
        /// For a runtime call of another shape (a connect's <see cref="ValueTask"/>, an accept's
        /// <see cref="ValueTask{TResult}"/> of a socket): counts it in flight and gives the callback
        /// to await it with; the subclass keeps the call and reads it in <see cref="TakeInFlight"/>.
        /// </summary>
        protected Action BeginRuntimeWait()
        {
            Loop.CountOperation(started: true);
            return _onRuntimeCompleted;
        }

        /// <summary>On the runtime's thread, once the call in flight completed: its result (or throws its failure).</summary>
        protected virtual int TakeInFlight()
        {
            var call = _inFlight;
            _inFlight = default;
            return call.GetAwaiter().GetResult();
        }

        /// <summary>The runtime call's outcome, on the loop thread: the subclass completes or goes on.</summary>
        protected abstract void OnRuntimeOutcome(int result, Exception? error);

        protected override void CancelCore() => _cts.Cancel();

        // On the runtime's thread: take the outcome there (the runtime operation is then free for the
        // socket's next call), and hand it to the loop. A loop closed meanwhile drops it.
        private void OnRuntimeCompleted()
        {
            try
            {
                _runtimeResult = TakeInFlight();
                _runtimeError = null;
            }
            catch (Exception ex)
            {
                _runtimeResult = 0;
                _runtimeError = ex;
            }

            _inFlight = default;
            Loop.ScheduleFromAnyThread(s_deliver, this, null);
        }

        private void Deliver()
        {
            Loop.CountOperation(started: false);
            OnRuntimeOutcome(_runtimeResult, _runtimeError);
        }

        /// <summary>
        /// What the caller of a started runtime call gets: its outcome at once if the runtime completed
        /// it (this operation goes back to the pool), else this operation's ValueTask while it is in flight.
        /// </summary>
        protected ValueTask<int> Started(ValueTask<int> call, CancellationToken cancellationToken)
        {
            if (call.IsCompleted)
            {
                int n = TakeCompleted(call, out var error);
                Release();
                return error is null ? new ValueTask<int>(n) : ValueTask.FromException<int>(error);
            }

            BeginPending(cancellationToken);
            AwaitRuntime(call);
            return new ValueTask<int>(this, Version);
        }

        /// <summary>Reads a call that completed at once: its result, or its exception as the outcome.</summary>
        protected static int TakeCompleted(ValueTask<int> call, out Exception? error)
        {
            try
            {
                error = null;
                return call.GetAwaiter().GetResult();
            }
            catch (Exception ex)
            {
                error = ex;
                return 0;
            }
        }
    }

    /// <summary>A receive in flight in the runtime.</summary>
    private sealed class RecvOperation(ProactorEventLoop loop) : RuntimeOperation(loop)
    {
        public ValueTask<int> Start(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
        {
            ValueTask<int> call;
            try
            {
                call = socket.ReceiveAsync(buffer, SocketFlags.None, RuntimeToken);
            }
            catch
            {
                Release();
                throw;
            }

            return Started(call, cancellationToken);
        }

        protected override void OnRuntimeOutcome(int result, Exception? error) => Complete(result, error);

        protected override void Release() => Loop.ReturnOperation(this);
    }

    /// <summary>A send in flight in the runtime; sends the rest if the runtime reports less than all.</summary>
    private sealed class SendOperation(ProactorEventLoop loop) : RuntimeOperation(loop)
    {
        private Socket? _socket;
        private ReadOnlyMemory<byte> _data;

        public ValueTask Start(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            while (true)
            {
                ValueTask<int> call;
                try
                {
                    call = socket.SendAsync(data, SocketFlags.None, RuntimeToken);
                }
                catch
                {
                    Loop.ReturnOperation(this);
                    throw;
                }

                if (!call.IsCompleted)
                {
                    _socket = socket;
                    _data = data;
                    BeginPending(cancellationToken);
                    AwaitRuntime(call);
                    return new ValueTask(this, Version);
                }

                int n = TakeCompleted(call, out var error);
                if (error is not null)
                {
                    Loop.ReturnOperation(this);
                    return ValueTask.FromException(error);
                }

                data = data.Slice(n);
                if (data.IsEmpty)
                {
                    Loop.ReturnOperation(this);
                    return ValueTask.CompletedTask;
                }
            }
        }

        protected override void OnRuntimeOutcome(int result, Exception? error)
        {
            while (error is null)
            {
                _data = _data.Slice(result);
                if (_data.IsEmpty)
                {
                    break;
                }

                if (CancelRequested)
                {
                    error = new CancelledError();
                    break;
                }

                ValueTask<int> call;
                try
                {
                    call = _socket!.SendAsync(_data, SocketFlags.None, RuntimeToken);
                }
                catch (Exception ex)
                {
                    error = ex;
                    break;
                }

                if (!call.IsCompleted)
                {
                    AwaitRuntime(call);
                    return;
                }

                result = TakeCompleted(call, out error);
            }

            _socket = null;
            _data = default;
            Complete(0, error);
        }

        protected override void Release() => Loop.ReturnOperation(this);
    }
}
