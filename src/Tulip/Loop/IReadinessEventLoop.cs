using System;

namespace Tulip;

/// <summary>
/// The capability of a notify-when-ready loop (asyncio's selector loops): it watches file
/// descriptors and calls back when one is readable or writable. A transport written against this
/// interface alone (plus the non-blocking syscalls of its fd) runs on every readiness loop, the
/// library's <see cref="SelectorEventLoop"/> on epoll or poll and any third party's, without new
/// methods on the loop (seed 002). See "How to write a third-party transport" in docs/ARCHITECTURE.md.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="IEventLoop.AddReader(int, Action)"/> and its relatives are the PEP's general API and
/// make a new handle per call. This interface adds what a transport needs to re-arm cheaply: a
/// handle made once (<see cref="CreateIoHandle{TState}"/>) that is set and cleared as the transport
/// pauses and resumes, never cancelled by being replaced, so re-arming allocates nothing; and the
/// loop keeps its kernel registration while the interest does not change (no epoll_ctl per read).
/// </para>
/// <para>Every member is for the loop thread. Registrations are level-triggered: a reader set on a
/// readable fd runs on every iteration until the fd is drained or the reader is cleared.</para>
/// </remarks>
public interface IReadinessEventLoop : IEventLoop
{
    /// <summary>
    /// Makes a reusable I/O handle that runs <paramref name="callback"/>(<paramref name="state"/>)
    /// on the loop thread each time it is due. Give it to <see cref="SetReader"/> or
    /// <see cref="SetWriter"/> as often as needed; <see cref="Handle.Cancel"/> ends it for good.
    /// </summary>
    Handle CreateIoHandle<TState>(Action<TState> callback, TState state);

    /// <summary>
    /// Makes <paramref name="handle"/> the reader of <paramref name="fd"/>, or with null stops
    /// watching it for reading. A replaced handle is not cancelled (unlike
    /// <see cref="IEventLoop.AddReader(int, Action)"/>), so it can be set again later. Setting the
    /// handle already set costs no system call.
    /// </summary>
    /// <remarks>Clearing does not cancel: a run already queued for the current iteration still
    /// happens once, so the callback must check the transport's own state (paused, closing) first,
    /// as the library's transports do.</remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fd"/> is negative.</exception>
    /// <exception cref="ArgumentException">The handle is cancelled, or the fd is the loop's own.</exception>
    /// <exception cref="InvalidOperationException">The loop is closed.</exception>
    /// <exception cref="System.IO.IOException">The multiplexer refused the fd (for instance epoll and a regular file).</exception>
    void SetReader(int fd, Handle? handle);

    /// <summary>As <see cref="SetReader"/>, for writability.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fd"/> is negative.</exception>
    /// <exception cref="ArgumentException">The handle is cancelled, or the fd is the loop's own.</exception>
    /// <exception cref="InvalidOperationException">The loop is closed.</exception>
    void SetWriter(int fd, Handle? handle);
}
