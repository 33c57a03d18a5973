using System;
using System.Net.Sockets;

namespace Tulip;

/// <summary>
/// One reusable asynchronous socket operation of a proactor transport: a
/// <see cref="SocketAsyncEventArgs"/> whose completion, on whatever thread the runtime finishes it,
/// queues its own handle on the loop (<see cref="ProactorEventLoop.PostCompletion"/>). Made once
/// per transport and direction, so the steady state allocates nothing per operation.
/// </summary>
/// <remarks>The handle's callback runs on the loop thread and reads the result from this object
/// (<see cref="SocketAsyncEventArgs.SocketError"/>, <see cref="SocketAsyncEventArgs.BytesTransferred"/>).</remarks>
internal sealed class ProactorOperation : SocketAsyncEventArgs
{
    private readonly ProactorEventLoop _loop;

    public ProactorOperation(ProactorEventLoop loop, Handle completion) : base(unsafeSuppressExecutionContextFlow: true)
    {
        _loop = loop;
        Completion = completion;
    }

    /// <summary>What runs on the loop thread when the operation completes.</summary>
    public Handle Completion { get; }

    /// <summary>True while the operation is started and its completion has not yet run on the loop.</summary>
    /// <remarks>Set on the loop thread only; each flip is counted in <see cref="ProactorEventLoop.OutstandingOperations"/>.</remarks>
    public bool Pending
    {
        get => _pending;
        set
        {
            if (value != _pending)
            {
                _pending = value;
                _loop.CountOperation(value);
            }
        }
    }

    private bool _pending;

    /// <inheritdoc/>
    protected override void OnCompleted(SocketAsyncEventArgs e) => _loop.PostCompletion(Completion);

    /// <summary>The operation completed inside the call that started it: its completion still runs on a later iteration.</summary>
    public void CompletedSynchronously() => _loop.ScheduleCompletion(Completion);
}
