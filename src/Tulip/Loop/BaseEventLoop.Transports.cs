using System;
using System.IO;
using System.IO.Pipes;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Win32.SafeHandles;

namespace Tulip;

// The transport seam (seed 002): the registry of transport implementations, the completion
// capability every base loop offers, and the pipe methods, which resolve their implementation in
// the registry like any third-party transport would.
public abstract partial class BaseEventLoop : ICompletionEventLoop
{
    private TransportRegistry? _transports;

    /// <inheritdoc/>
    public TransportRegistry Transports => _transports ??= new TransportRegistry(this);

    // ---- ICompletionEventLoop -------------------------------------------------------------------

    /// <inheritdoc/>
    public void WhenCompleted<TState>(ValueTask<int> operation, Action<TState, int, Exception?> callback, TState state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        CheckCallable();
        new IntCompletion<TState>(this, operation, callback, state).Start(operation.IsCompleted, operation.ConfigureAwait(false).GetAwaiter());
    }

    /// <inheritdoc/>
    public void WhenCompleted<TState>(ValueTask operation, Action<TState, Exception?> callback, TState state)
    {
        ArgumentNullException.ThrowIfNull(callback);
        CheckCallable();
        new VoidCompletion<TState>(this, operation, callback, state).Start(operation.IsCompleted, operation.ConfigureAwait(false).GetAwaiter());
    }

    /// <summary>
    /// One pending operation: its outcome is taken on the thread that completes it (or at once, if it
    /// already has) and handed to the callback on the loop thread, on a later iteration.
    /// </summary>
    private abstract class Completion(BaseEventLoop loop)
    {
        private static readonly Action<object?, object?> s_deliver = static (c, _) => ((Completion)c!).Deliver();

        /// <summary>Schedules the delivery now if <paramref name="completed"/>, else when <paramref name="awaiter"/> says the operation is done.</summary>
        internal void Start<TAwaiter>(bool completed, TAwaiter awaiter)
            where TAwaiter : ICriticalNotifyCompletion
        {
            if (completed)
            {
                Take();
                loop.ScheduleInternal(s_deliver, this, null);
                return;
            }

            awaiter.UnsafeOnCompleted(OnCompleted);
        }

        /// <summary>Takes the operation's outcome, a result or an exception; never throws.</summary>
        private protected abstract void Take();

        /// <summary>Calls the callback with the outcome, on the loop thread.</summary>
        private protected abstract void Deliver();

        /// <summary>On the completing thread: the outcome goes to the loop; dropped if the loop has closed meanwhile.</summary>
        private void OnCompleted()
        {
            Take();
            try
            {
                loop.CallSoonThreadSafe(static c => c.Deliver(), this);
            }
            catch (InvalidOperationException) when (loop.IsClosed)
            {
                // The loop closed before the operation completed: its transport went with it.
            }
        }
    }

    /// <summary>A pending operation with a count.</summary>
    private sealed class IntCompletion<TState>(BaseEventLoop loop, ValueTask<int> operation, Action<TState, int, Exception?> callback, TState state)
        : Completion(loop)
    {
        private int _result;
        private Exception? _error;

        private protected override void Take()
        {
            try
            {
                _result = operation.GetAwaiter().GetResult();
            }
            catch (Exception ex)
            {
                _error = ex;
            }
        }

        private protected override void Deliver() => callback(state, _result, _error);
    }

    /// <summary>A pending operation without a result.</summary>
    private sealed class VoidCompletion<TState>(BaseEventLoop loop, ValueTask operation, Action<TState, Exception?> callback, TState state)
        : Completion(loop)
    {
        private Exception? _error;

        private protected override void Take()
        {
            try
            {
                operation.GetAwaiter().GetResult();
            }
            catch (Exception ex)
            {
                _error = ex;
            }
        }

        private protected override void Deliver() => callback(state, _error);
    }

    // ---- Pipes: resolved through the registry ------------------------------------------------

    /// <inheritdoc/>
    public LoopTask<(IReadTransport Transport, TProtocol Protocol)> ConnectReadPipeAsync<TProtocol>(Func<TProtocol> protocolFactory,
        SafeHandle pipe, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        _ = FdOf(pipe);
        return PipeTransports().ConnectReadPipeAsync(this, protocolFactory, pipe, null, cancellationToken);
    }

    /// <inheritdoc/>
    public LoopTask<(IReadTransport Transport, TProtocol Protocol)> ConnectReadPipeAsync<TProtocol>(Func<TProtocol> protocolFactory,
        Stream pipe, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        var handle = HandleOfStream(pipe);
        return PipeTransports().ConnectReadPipeAsync(this, protocolFactory, handle, pipe, cancellationToken);
    }

    /// <inheritdoc/>
    public LoopTask<(IReadTransport Transport, TProtocol Protocol)> ConnectReadPipeAsync<TProtocol>(Func<TProtocol> protocolFactory,
        int fd, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol =>
        ConnectPipeFdAsync(protocolFactory, fd, cancellationToken,
            static (factory, loop, protocolFactory, handle, token) => factory.ConnectReadPipeAsync(loop, protocolFactory, handle, null, token));

    /// <inheritdoc/>
    public LoopTask<(IWriteTransport Transport, TProtocol Protocol)> ConnectWritePipeAsync<TProtocol>(Func<TProtocol> protocolFactory,
        SafeHandle pipe, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        _ = FdOf(pipe);
        return PipeTransports().ConnectWritePipeAsync(this, protocolFactory, pipe, null, cancellationToken);
    }

    /// <inheritdoc/>
    public LoopTask<(IWriteTransport Transport, TProtocol Protocol)> ConnectWritePipeAsync<TProtocol>(Func<TProtocol> protocolFactory,
        Stream pipe, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        var handle = HandleOfStream(pipe);
        return PipeTransports().ConnectWritePipeAsync(this, protocolFactory, handle, pipe, cancellationToken);
    }

    /// <inheritdoc/>
    public LoopTask<(IWriteTransport Transport, TProtocol Protocol)> ConnectWritePipeAsync<TProtocol>(Func<TProtocol> protocolFactory,
        int fd, CancellationToken cancellationToken = default)
        where TProtocol : IBaseProtocol =>
        ConnectPipeFdAsync(protocolFactory, fd, cancellationToken,
            static (factory, loop, protocolFactory, handle, token) => factory.ConnectWritePipeAsync(loop, protocolFactory, handle, null, token));

    /// <summary>
    /// The raw-fd overloads of both directions: wraps <paramref name="fd"/> in a handle the transport
    /// will own and calls <paramref name="connect"/>; if that fails, the fd is the caller's again
    /// (closed only if the transport had taken it). Every error, argument errors included, is the task's.
    /// </summary>
    private async LoopTask<TResult> ConnectPipeFdAsync<TResult, TProtocol>(Func<TProtocol> protocolFactory, int fd, CancellationToken cancellationToken,
        Func<IPipeTransportFactory, BaseEventLoop, Func<TProtocol>, SafeFileHandle, CancellationToken, LoopTask<TResult>> connect,
        [CallerMemberName] string member = "")
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        var factory = PipeTransports(member);
        var handle = HandleOfFd(fd);
        try
        {
            return await connect(factory, this, protocolFactory, handle, cancellationToken);
        }
        catch
        {
            GiveBackFd(handle);
            throw;
        }
    }

    /// <summary>This loop's pipe implementation: the registered one, else fd readiness on a readiness loop (on Linux: it runs on Tulip's interop).</summary>
    private IPipeTransportFactory PipeTransports([CallerMemberName] string member = "")
    {
        CheckCallable();
        return Transports.Resolve<IPipeTransportFactory>(static loop => LinuxInterop.IsAvailable && loop is IReadinessEventLoop ? ReadinessPipeTransportFactory.Instance : null)
            ?? throw Unsupported(member);
    }

    /// <summary>A handle that owns <paramref name="fd"/> from now on (the transport closes it).</summary>
    private static SafeFileHandle HandleOfFd(int fd)
    {
        if (fd < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(fd), fd, "A file descriptor is a non-negative integer: pass the fd of an open pipe.");
        }

        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>
    /// After a failed call with a raw fd: if the transport never took the fd (so did not close it),
    /// the wrapper must not close it either, now or when finalized: the fd is the caller's again.
    /// </summary>
    private static void GiveBackFd(SafeFileHandle handle)
    {
        if (!handle.IsClosed)
        {
            handle.SetHandleAsInvalid();
        }
    }

    /// <summary>The fd handle inside a stream that wraps one.</summary>
    private static SafeHandle HandleOfStream(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        SafeHandle handle = stream switch
        {
            FileStream file => file.SafeFileHandle,
            PipeStream pipe => pipe.SafePipeHandle,
            NetworkStream network => network.Socket.SafeHandle,
            _ => throw new ArgumentException(
                $"A {stream.GetType().Name} does not expose a file descriptor: give a FileStream, a PipeStream (AnonymousPipe*Stream) " +
                "or a NetworkStream, or the fd's SafeHandle.", nameof(stream)),
        };
        _ = FdOf(handle);
        return handle;
    }
}
