using System;
using System.IO.Pipelines;

namespace Tulip.Streams;

/// <summary>
/// A <see cref="PipeScheduler"/> that runs the continuations it is given on an event loop's
/// thread, through <see cref="IEventLoop.CallSoonThreadSafe{TState}(Action{TState}, TState)"/>:
/// the scheduler of the loop's side of a <see cref="DuplexPipeProtocol"/>'s pipes, so code that
/// touches the transport always runs on the loop thread whoever completed the pipe operation.
/// </summary>
/// <remarks>
/// The loop is bound once the protocol is connected (<see cref="Bind"/>); nothing on the loop's
/// side of a pipe waits before that, so the scheduler is never used unbound. Thread-safe.
/// </remarks>
internal sealed class LoopPipeScheduler : PipeScheduler
{
    private static readonly Action<(Action<object?> Action, object? State)> s_run = static s => s.Action(s.State);

    // Written once on the loop thread at ConnectionMade, read by whichever thread schedules.
    private volatile IEventLoop? _loop;

    /// <summary>Binds the scheduler to <paramref name="loop"/>, the loop that runs the protocol.</summary>
    public void Bind(IEventLoop loop) => _loop = loop;

    /// <inheritdoc/>
    public override void Schedule(Action<object?> action, object? state)
    {
        var loop = _loop ?? throw new InvalidOperationException("DuplexPipeProtocol: the loop side of a pipe was scheduled before the protocol was connected.");
        try
        {
            loop.CallSoonThreadSafe(s_run, (action, state));
        }
        catch (InvalidOperationException) when (loop.IsClosed)
        {
            // The loop is closed: its transport is gone and nothing on it can run any more, so the
            // continuation (a pipe operation of the loop's side) has nothing left to do.
        }
    }
}
