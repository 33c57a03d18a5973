using System;

namespace Tulip.Selectors;

/// <summary>Readiness kinds a selector reports and registers interest in.</summary>
[Flags]
internal enum SelectorEvents
{
    /// <summary>No interest.</summary>
    None = 0,
    /// <summary>The fd is readable (or at EOF, or has a pending error).</summary>
    Read = 1,
    /// <summary>The fd is writable (or has a pending error).</summary>
    Write = 2,
    /// <summary>
    /// The fd number is not open (poll's POLLNVAL): it was closed while registered. Reported whatever the
    /// interest; the loop drops the registration instead of calling back (which could only spin). epoll
    /// never reports it: the kernel forgets a closed fd by itself.
    /// </summary>
    Invalid = 4,
}

/// <summary>One readiness report: the token given at registration and what is ready.</summary>
internal readonly struct SelectorEvent
{
    public SelectorEvent(ulong token, SelectorEvents events)
    {
        Token = token;
        Events = events;
    }

    /// <summary>The token passed to <see cref="ISelector.Add"/> or <see cref="ISelector.Modify"/>.</summary>
    public ulong Token { get; }

    /// <summary>What is ready. Errors and hang-ups are reported as both Read and Write,
    /// filtered to the interest registered, so the callback that reads or writes sees the error.</summary>
    public SelectorEvents Events { get; }
}

/// <summary>
/// The readiness multiplexer seam under <c>SelectorEventLoop</c>: a notify-when-ready
/// multiplexer (epoll on Linux, poll(2) on any POSIX system). Level-triggered: an fd stays
/// registered until removed, so a connection that keeps reading costs no syscall to re-arm.
/// </summary>
/// <remarks>
/// Owned by the loop thread: every member is called from the thread running the loop, except
/// <see cref="IDisposable.Dispose"/>, which the loop calls from <c>Close</c> when it is not running.
/// The token is opaque to the selector; the loop encodes the fd and a generation in it so that an
/// event for an fd that was closed and whose number was reused is recognised as stale.
/// </remarks>
internal interface ISelector : IDisposable
{
    /// <summary>A short name for diagnostics: "epoll" or "poll".</summary>
    string Name { get; }

    /// <summary>Registers <paramref name="fd"/> with the given interest (EPOLL_CTL_ADD).</summary>
    /// <exception cref="System.IO.IOException">The kernel refused (errno in the message).</exception>
    void Add(int fd, SelectorEvents events, ulong token);

    /// <summary>
    /// Changes the interest and token of a registered fd (EPOLL_CTL_MOD). Returns false, registering
    /// nothing, when the file registered under that number is gone (it was closed, and the number is
    /// now free or names another file): the caller's registration is stale, and it decides what to
    /// <see cref="Add"/> afresh. Never re-adds by itself, so a stale interest cannot carry over to a
    /// new file under the same number.
    /// </summary>
    /// <exception cref="System.IO.IOException">The kernel refused for another reason (errno in the message).</exception>
    bool Modify(int fd, SelectorEvents events, ulong token);

    /// <summary>Unregisters <paramref name="fd"/>. An fd the kernel already forgot (closed) is not an error.</summary>
    void Remove(int fd);

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> milliseconds (-1: forever, 0: do not block) and fills
    /// <paramref name="events"/>; returns how many were filled. EINTR returns 0.
    /// </summary>
    int Select(Span<SelectorEvent> events, int timeoutMs);
}
