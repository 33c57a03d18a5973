using System;
using System.Collections.Generic;
using System.Threading;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Tulip;

/// <summary>
/// What every subprocess transport shares (asyncio's <c>BaseSubprocessTransport</c>): the child's pipes, connected
/// through the loop's own public pipe API (so they work on any loop whose registry has pipes), and the protocol's
/// call order. A subclass watches the child its multiplexer's way, reports the exit with <see cref="OnExited"/>
/// and sends signals; <see cref="PidFdSubprocessTransport"/> is the readiness loops'.
/// </summary>
/// <remarks>
/// Order, as asyncio's: nothing reaches the protocol before <see cref="IBaseProtocol.ConnectionMade"/>; what happens
/// meanwhile (a pipe closing, the exit) is queued and replayed right after it, in order, while the read pipes are held
/// paused until then, so output waits in the pipe and a pause the protocol asks for holds from its first chunk. Each pipe reports
/// PipeConnectionLost once; ProcessExited once the exit is known; ConnectionLost(null) last, once both the exit is
/// known and every pipe has closed. All state is the loop thread's.
/// </remarks>
internal abstract partial class SubprocessTransport : ISubprocessTransport
{
    // POSIX's numbers, the same on every Unix (Linux, macOS, the BSDs): this base is portable, its subclasses need not be.
    private const int SigTerm = 15;
    private const int SigKill = 9;

    private const int Stdin = 0;
    private const int Stdout = 1;
    private const int Stderr = 2;

    private readonly IEventLoop _loop;
    private readonly string _program;
    private ISubprocessProtocol _protocol;
    private readonly IBaseTransport?[] _pipes = new IBaseTransport?[3];
    // Which of fds 0..2 are piped and not yet lost; PipeConnectionLost turns its bit off.
    private int _openPipes;
    // Calls held back until ConnectionMade has run; null from then on.
    private List<PendingCall>? _pending = [];
    // The read pipes, paused from their own ConnectionMade until the protocol's: output waits in the pipe, not in
    // _pending, so that a protocol that pauses a pipe (in ConnectionMade or in its first PipeDataReceived) gets no more
    // of it; a replay of queued chunks would ignore the pause. Null once resumed.
    private List<IReadTransport>? _heldReads = [];
    private bool _closed;
    // The start failed before ConnectionMade: the protocol is never called.
    private bool _abandoned;
    private bool _finished;
    private List<Future<int>>? _exitWaiters;

    protected SubprocessTransport(IEventLoop loop, int pid, ISubprocessProtocol protocol, string program)
    {
        _loop = loop;
        Pid = pid;
        _protocol = protocol;
        _program = program;
    }

    /// <inheritdoc/>
    public int Pid { get; }

    /// <inheritdoc/>
    public int? ReturnCode { get; private set; }

    /// <inheritdoc/>
    public bool IsClosing => _closed;

    /// <summary>The loop the transport runs on.</summary>
    protected IEventLoop Loop => _loop;

    /// <inheritdoc/>
    public object? GetExtraInfo(string name, object? defaultValue = null) => name switch
    {
        "subprocess" or "pid" => Pid,
        _ => defaultValue,
    };

    /// <inheritdoc/>
    public IBaseProtocol GetProtocol() => _protocol;

    /// <inheritdoc/>
    public void SetProtocol(IBaseProtocol protocol)
    {
        ArgumentNullException.ThrowIfNull(protocol);
        _protocol = protocol as ISubprocessProtocol ?? throw new ArgumentException(
            $"A subprocess transport calls an {nameof(ISubprocessProtocol)}; a {protocol.GetType().Name} is not one.", nameof(protocol));
    }

    /// <inheritdoc/>
    public IBaseTransport? GetPipeTransport(int fd) => fd is >= Stdin and <= Stderr ? _pipes[fd] : null;

    /// <inheritdoc/>
    public void SendSignal(int signal)
    {
        if (ReturnCode is null)
        {
            SignalChild(signal);
        }
    }

    /// <inheritdoc/>
    public void Terminate() => SendSignal(SigTerm);

    /// <inheritdoc/>
    public void Kill() => SendSignal(SigKill);

    /// <summary>Closes the pipes and kills the child if it still runs (asyncio's <c>close</c>); ConnectionLost follows once it is reaped.</summary>
    public void Close()
    {
        if (_closed)
        {
            return;
        }

        _closed = true;
        foreach (var pipe in _pipes)
        {
            pipe?.Close();
        }

        if (ReturnCode is null)
        {
            SignalChild(SigKill);
        }
    }

    /// <summary>Completes with the return code once the child has exited (for the high-level process API).</summary>
    internal LoopTask<int> WaitAsync() => WaitCoreAsync();

    private async LoopTask<int> WaitCoreAsync()
    {
        if (ReturnCode is { } code)
        {
            return code;
        }

        var waiter = _loop.CreateFuture<int>();
        (_exitWaiters ??= []).Add(waiter);
        return await waiter;
    }

    /// <summary>Sends <paramref name="signal"/> to the child, which has not been reaped yet.</summary>
    protected abstract void SignalChild(int signal);

    /// <summary>The child has exited with <paramref name="returnCode"/> (asyncio's form) and been reaped.</summary>
    protected void OnExited(int returnCode)
    {
        if (ReturnCode is not null)
        {
            return;
        }

        ReturnCode = returnCode;
        if (_exitWaiters is { } waiters)
        {
            _exitWaiters = null;
            foreach (var waiter in waiters)
            {
                waiter.TrySetResult(returnCode);
            }
        }

        Deliver(new PendingCall(PendingKind.Exited, -1, null, null));
        TryFinish();
    }

    /// <summary>
    /// Connects the parent's pipe ends (-1: not piped) with the loop's pipe API. On failure the ends not yet
    /// handed to a pipe transport are closed, and the caller closes this transport.
    /// </summary>
    internal LoopTask ConnectPipesAsync(int stdinFd, int stdoutFd, int stderrFd) => ConnectPipesAsync(new IDisposable?[]
    {
        stdinFd >= 0 ? new SafeFileHandle(stdinFd, ownsHandle: true) : null,
        stdoutFd >= 0 ? new SafeFileHandle(stdoutFd, ownsHandle: true) : null,
        stderrFd >= 0 ? new SafeFileHandle(stderrFd, ownsHandle: true) : null,
    });

    /// <summary>
    /// As the fd overload, for the parent's ends as handles or streams (null: not piped), each connected with the
    /// loop's pipe overload of its type; on failure those not yet handed to a pipe transport are disposed.
    /// </summary>
    internal async LoopTask ConnectPipesAsync(IDisposable?[] handles)
    {
        // Every piped fd counts as open from now on, so an exit seen while the pipes connect waits for them.
        for (int fd = Stdin; fd <= Stderr; fd++)
        {
            if (handles[fd] is not null)
            {
                _openPipes |= 1 << fd;
            }
        }

        int next = Stdin; // the first handle not yet handed to a pipe transport
        try
        {
            for (int fd = Stdin; fd <= Stderr; fd++)
            {
                next = fd;
                if (handles[fd] is { } handle)
                {
                    int pipeFd = fd;
                    _pipes[fd] = (fd, handle) switch
                    {
                        (Stdin, System.IO.Stream stream) => (await _loop.ConnectWritePipeAsync(() => new WritePipeProtocol(this), stream)).Transport,
                        (Stdin, _) => (await _loop.ConnectWritePipeAsync(() => new WritePipeProtocol(this), (SafeHandle)handle)).Transport,
                        (_, System.IO.Stream stream) => (await _loop.ConnectReadPipeAsync(() => new ReadPipeProtocol(this, pipeFd), stream)).Transport,
                        _ => (await _loop.ConnectReadPipeAsync(() => new ReadPipeProtocol(this, pipeFd), (SafeHandle)handle)).Transport,
                    };
                }
            }

            next = Stderr + 1;
        }
        catch
        {
            // The handle whose connection failed is open again (refused) or closed (its transport closed it):
            // disposing it is right either way; those never reached are closed here.
            for (int fd = next; fd <= Stderr; fd++)
            {
                handles[fd]?.Dispose();
                _openPipes &= ~(1 << fd);
            }

            throw;
        }
    }

    /// <summary>
    /// The start failed before ConnectionMade ran (a pipe refused, the call cancelled): the protocol never hears
    /// of this transport, as in asyncio, and what was held back is dropped. Nothing once ConnectionMade has run.
    /// </summary>
    internal void Abandon()
    {
        if (_pending is not null)
        {
            _pending = null;
            _abandoned = true;
        }
    }

    /// <summary>
    /// Calls ConnectionMade on the next iteration, then replays what was held back, then completes
    /// <paramref name="waiter"/> (or fails it with what ConnectionMade threw).
    /// </summary>
    internal void Start(Future<VoidResult> waiter) => _loop.CallSoon(static state =>
    {
        var (transport, waiter) = state;
        if (transport._abandoned)
        {
            return;
        }

        foreach (var pipe in transport._heldReads!)
        {
            pipe.ResumeReading(); // reads on a later iteration; the protocol may pause it again in ConnectionMade
        }

        transport._heldReads = null;
        try
        {
            transport._protocol.ConnectionMade(transport);
        }
        catch (Exception ex)
        {
            transport._loop.CallExceptionHandler(new ExceptionContext("Exception in protocol.ConnectionMade()")
            {
                Exception = ex, Transport = transport, Protocol = transport._protocol,
            });
            transport._pending = null;
            waiter.TrySetException(ex);
            return;
        }

        var pending = transport._pending!;
        transport._pending = null;
        foreach (var call in pending)
        {
            transport.Invoke(call);
        }

        waiter.TrySetResult(default);
    }, (this, waiter));

    /// <inheritdoc/>
    public override string ToString() =>
        $"<{GetType().Name} pid={Pid} program={_program} {(ReturnCode is { } code ? $"returncode={code}" : "running")}{(_closed ? " closed" : "")}>";

    /// <summary>A read pipe's ConnectionMade: held paused until the protocol's ConnectionMade.</summary>
    private void OnReadPipeMade(IBaseTransport transport)
    {
        if (_heldReads is not null && transport is IReadTransport pipe)
        {
            pipe.PauseReading();
            _heldReads.Add(pipe);
        }
    }

    private void OnPipeData(int fd, ReadOnlySpan<byte> data)
    {
        if (_abandoned)
        {
            return;
        }

        if (_pending is not null)
        {
            _pending.Add(new PendingCall(PendingKind.Data, fd, data.ToArray(), null));
            return;
        }

        _protocol.PipeDataReceived(fd, data);
    }

    private void OnPipeLost(int fd, Exception? exception)
    {
        if ((_openPipes & (1 << fd)) == 0)
        {
            return;
        }

        _openPipes &= ~(1 << fd);
        Deliver(new PendingCall(PendingKind.PipeLost, fd, null, exception));
        TryFinish();
    }

    private void OnStdinFlow(bool pause)
    {
        if (_abandoned)
        {
            return;
        }

        if (_pending is not null)
        {
            _pending.Add(new PendingCall(pause ? PendingKind.PauseWriting : PendingKind.ResumeWriting, Stdin, null, null));
            return;
        }

        if (pause)
        {
            _protocol.PauseWriting();
        }
        else
        {
            _protocol.ResumeWriting();
        }
    }

    /// <summary>asyncio's <c>_try_finish</c>: ConnectionLost, once, when the child is reaped and every pipe has closed.</summary>
    private void TryFinish()
    {
        if (_finished || ReturnCode is null || _openPipes != 0)
        {
            return;
        }

        _finished = true;
        _closed = true;
        Deliver(new PendingCall(PendingKind.Lost, -1, null, null));
        OnFinished();
    }

    /// <summary>The child is reaped and every pipe has closed (ConnectionLost is on its way): release what the subclass still holds.</summary>
    protected virtual void OnFinished()
    {
    }

    /// <summary>Queues a call before ConnectionMade; afterwards makes it on a later iteration (asyncio's <c>_call</c>).</summary>
    private void Deliver(PendingCall call)
    {
        if (_abandoned)
        {
            return;
        }

        if (_pending is not null)
        {
            _pending.Add(call);
            return;
        }

        _loop.CallSoon(static state => state.Transport.Invoke(state.Call), (Transport: this, Call: call));
    }

    private void Invoke(PendingCall call)
    {
        try
        {
            switch (call.Kind)
            {
                case PendingKind.Data:
                    _protocol.PipeDataReceived(call.Fd, call.Data);
                    break;
                case PendingKind.PipeLost:
                    _protocol.PipeConnectionLost(call.Fd, call.Exception);
                    break;
                case PendingKind.Exited:
                    _protocol.ProcessExited();
                    break;
                case PendingKind.PauseWriting:
                    _protocol.PauseWriting();
                    break;
                case PendingKind.ResumeWriting:
                    _protocol.ResumeWriting();
                    break;
                case PendingKind.Lost:
                    _protocol.ConnectionLost(null);
                    break;
            }
        }
        catch (Exception ex)
        {
            _loop.CallExceptionHandler(new ExceptionContext($"Exception in the subprocess protocol ({call.Kind})")
            {
                Exception = ex, Transport = this, Protocol = _protocol,
            });
        }

        if (call.Kind == PendingKind.Lost)
        {
            EndDisposeWait();
        }
    }

    private enum PendingKind
    {
        Data,
        PipeLost,
        Exited,
        PauseWriting,
        ResumeWriting,
        Lost,
    }

    private readonly record struct PendingCall(PendingKind Kind, int Fd, byte[]? Data, Exception? Exception);

    /// <summary>The protocol of the stdout and stderr pipe transports (asyncio's <c>ReadSubprocessPipeProto</c>).</summary>
    private sealed class ReadPipeProtocol(SubprocessTransport owner, int fd) : IProtocol
    {
        public void ConnectionMade(IBaseTransport transport) => owner.OnReadPipeMade(transport);

        public void DataReceived(ReadOnlySpan<byte> data) => owner.OnPipeData(fd, data);

        public bool EofReceived() => false;

        public void ConnectionLost(Exception? exception) => owner.OnPipeLost(fd, exception);

        public void PauseWriting()
        {
        }

        public void ResumeWriting()
        {
        }
    }

    /// <summary>The protocol of the stdin pipe transport: its flow control is the subprocess protocol's (asyncio's <c>WriteSubprocessPipeProto</c>).</summary>
    private sealed class WritePipeProtocol(SubprocessTransport owner) : IBaseProtocol
    {
        public void ConnectionMade(IBaseTransport transport)
        {
        }

        public void ConnectionLost(Exception? exception) => owner.OnPipeLost(Stdin, exception);

        public void PauseWriting() => owner.OnStdinFlow(pause: true);

        public void ResumeWriting() => owner.OnStdinFlow(pause: false);
    }
}
