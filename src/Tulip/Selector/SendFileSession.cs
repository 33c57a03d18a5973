using System;
using System.Net.Sockets;

namespace Tulip;

/// <summary>
/// The link between a <see cref="SelectorSocketTransport"/> and the
/// <see cref="SelectorEventLoop.SendFileAsync"/> running on it: asyncio's "empty waiter" and the
/// way to stop the send when the transport is aborted.
/// </summary>
/// <remarks>
/// The send awaits one future at a time (the write buffer draining, then the socket becoming
/// writable) and arms the session with it; <see cref="Interrupt"/> fails that future, so an
/// <see cref="IWriteTransport.Abort"/> ends the send at its next await instead of leaving it
/// waiting on a socket that is about to close. Owned by the loop thread.
/// </remarks>
internal sealed class SendFileSession
{
    private Future<VoidResult>? _waiting;
    private Exception? _stopped;

    /// <summary>Completes when the transport's write buffer is empty; null if it was empty at the start.</summary>
    internal Future<VoidResult>? Drained { get; init; }

    /// <summary>Whether the transport was reading when the send began (reading resumes after it if so).</summary>
    internal bool ResumeReading { get; init; }

    /// <summary>Makes <paramref name="future"/> the one <see cref="Interrupt"/> fails; fails it at once if already interrupted.</summary>
    internal void Arm(Future<VoidResult> future)
    {
        if (_stopped is not null)
        {
            future.TrySetException(_stopped);
            return;
        }

        _waiting = future;
    }

    /// <summary>The send no longer awaits the armed future.</summary>
    internal void Disarm() => _waiting = null;

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
    /// anything else (a protocol callback that failed) becomes ConnectionAborted.
    /// </summary>
    internal void Interrupt(Exception? cause)
    {
        _stopped ??= cause as SocketException
            ?? new SocketException((int)SocketError.ConnectionAborted, "The transport was aborted while SendFileAsync was sending on it.");
        _waiting?.TrySetException(_stopped);
    }
}
