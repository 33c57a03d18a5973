using System;
using System.Net.Sockets;
using System.Threading;

namespace Tulip;

/// <summary>
/// The link between a <see cref="ProactorSocketTransport"/> and the
/// <see cref="ProactorEventLoop.SendFileAsync"/> running on it (the proactor's
/// <see cref="SendFileSession"/>): what the send waits for, and the way to stop it when the
/// transport is aborted.
/// </summary>
/// <remarks>
/// The send waits first for the transport's buffer to drain (<see cref="Drained"/>), then on the
/// runtime's operations, which it starts with <see cref="Token"/>. <see cref="Interrupt"/> fails the
/// one and cancels the other, so an <see cref="IWriteTransport.Abort"/> ends the send at once instead
/// of leaving it waiting on a socket that is about to close. Owned by the loop thread.
/// </remarks>
internal sealed class ProactorSendFileSession : IDisposable
{
    private readonly CancellationTokenSource _cts;
    private Exception? _stopped;

    /// <summary>Starts a session whose operations also stop when <paramref name="taskToken"/> (the awaiting task's) is cancelled.</summary>
    internal ProactorSendFileSession(CancellationToken taskToken) => _cts = CancellationTokenSource.CreateLinkedTokenSource(taskToken);

    /// <summary>Completes when the transport's write buffer is empty; null if it was empty at the start.</summary>
    internal Future<VoidResult>? Drained { get; init; }

    /// <summary>Whether the transport was reading when the send began (reading resumes after it if so).</summary>
    internal bool ResumeReading { get; init; }

    /// <summary>What the send's operations are started with: cancelled by the task's cancellation and by <see cref="Interrupt"/>.</summary>
    internal CancellationToken Token => _cts.Token;

    /// <summary>True while a native file send (which no token stops) is in flight on the transport's socket.</summary>
    internal bool NativeInFlight { get; set; }

    /// <summary>Why the transport stopped the send, or null.</summary>
    internal Exception? Stopped => _stopped;

    /// <summary>Throws if the transport stopped the send; called before each send on the socket.</summary>
    internal void ThrowIfInterrupted()
    {
        if (_stopped is not null)
        {
            throw _stopped;
        }
    }

    /// <summary>
    /// Stops the send: the transport is being aborted. A socket error is passed on as the reason;
    /// anything else becomes ConnectionAborted.
    /// </summary>
    internal void Interrupt(Exception? cause)
    {
        _stopped ??= cause as SocketException
            ?? new SocketException((int)SocketError.ConnectionAborted, "The transport was aborted while SendFileAsync was sending on it.");
        Drained?.TrySetException(_stopped);
        _cts.Cancel();
    }

    /// <inheritdoc/>
    public void Dispose() => _cts.Dispose();
}
