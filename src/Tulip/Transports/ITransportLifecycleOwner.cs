using System;

namespace Tulip;

/// <summary>
/// A transport that composes a <see cref="TransportLifecycle"/>: the four moments of a connection's
/// life at which the lifecycle hands control back to the transport's own I/O.
/// </summary>
/// <remarks>
/// <para>
/// The lifecycle decides when each moment comes (and that each comes once, in order); the transport
/// only does its part: register or clear its reader and writer, drop its write buffer, close its fd.
/// Each member runs at most once or twice per connection, never per message, on the loop thread.
/// Implement the members explicitly if they should not show on the transport's public surface.
/// </para>
/// <para>
/// Order: <see cref="OnStarted"/> first (on the iteration after <see cref="TransportLifecycle.ScheduleStart"/>);
/// then, as the connection ends, <see cref="OnClosing"/> (a graceful <see cref="TransportLifecycle.Close"/>)
/// and/or <see cref="OnForceClose"/> (an abort or a fatal error); last <see cref="OnConnectionLost"/>,
/// once, right after the protocol's <see cref="IBaseProtocol.ConnectionLost"/> returned.
/// </para>
/// </remarks>
public interface ITransportLifecycleOwner : IBaseTransport
{
    /// <summary>
    /// The start ran: <see cref="IBaseProtocol.ConnectionMade"/> returned (<paramref name="error"/> is
    /// null and <see cref="TransportLifecycle.IsStarted"/> true: start reading unless
    /// <see cref="TransportLifecycle.IsClosing"/>), or threw (<paramref name="error"/>; the lifecycle then
    /// ends the connection with <see cref="TransportLifecycle.FatalError"/>), or never ran because the
    /// transport was closed first (<paramref name="error"/> null, <see cref="TransportLifecycle.IsStarted"/>
    /// false; ConnectionLost is not called either, as in asyncio). Complete your creation's waiter here.
    /// </summary>
    /// <param name="state">What was given to <see cref="TransportLifecycle.ScheduleStart"/>.</param>
    /// <param name="error">What ConnectionMade threw, or null.</param>
    void OnStarted(object? state, Exception? error);

    /// <summary><see cref="TransportLifecycle.Close"/> began a graceful close: stop reading; what is buffered is still sent.</summary>
    void OnClosing();

    /// <summary>
    /// The connection ends now (<see cref="TransportLifecycle.Abort"/>, <see cref="TransportLifecycle.FatalError"/>,
    /// <see cref="TransportLifecycle.ForceClose"/>, or the ConnectionLost that follows a drained close):
    /// drop the write buffer (return its memory) and stop watching the fd in both directions.
    /// May be called more than once; must be idempotent.
    /// </summary>
    /// <param name="error">Why the connection ends, or null for a close or an abort.</param>
    void OnForceClose(Exception? error);

    /// <summary>
    /// <see cref="IBaseProtocol.ConnectionLost"/> returned (or threw, which was reported): close the fd
    /// (dispose the socket, release the handle). Called once; nothing reaches the transport afterwards.
    /// </summary>
    void OnConnectionLost();
}
