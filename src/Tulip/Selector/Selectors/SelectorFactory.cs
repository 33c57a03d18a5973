using System;
using System.Collections.Generic;
using System.Runtime.Versioning;

namespace Tulip.Selectors;

/// <summary>The one place a selector backend is chosen.</summary>
internal static class SelectorFactory
{
    /// <summary>The epoll backend's name.</summary>
    public const string Epoll = "epoll";

    /// <summary>The poll(2) backend's name.</summary>
    public const string Poll = "poll";

    /// <summary>The io_uring backend's name (readiness through poll requests on a ring, Linux 5.11+).</summary>
    public const string IoUring = "io_uring";

    /// <summary>The backends available on this platform, the default first: io_uring only where a ring can be made.</summary>
    /// <remarks>Asking makes one small ring to see whether io_uring works here (once per process); creating a selector does not ask.</remarks>
    public static IReadOnlyList<string> AvailableNames => s_availableNames.Value;

    private static readonly Lazy<IReadOnlyList<string>> s_availableNames = new(static () =>
        OperatingSystem.IsLinux() ? (Tulip.IoUring.IoUringRing.IsAvailable ? [Epoll, Poll, IoUring] : [Epoll, Poll]) : [Poll]);

    /// <summary>
    /// Creates the backend called <paramref name="name"/> (case-insensitive): "epoll" (Linux only),
    /// "poll" or "io_uring" (Linux only); null picks epoll on Linux and poll elsewhere.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a known backend.</exception>
    /// <exception cref="PlatformNotSupportedException">"epoll" or "io_uring" was asked for off Linux, or
    /// io_uring is disabled here (the message says why and what to use instead).</exception>
    [SupportedOSPlatform("linux")]
    public static ISelector Create(string? name = null)
    {
        // The default without probing io_uring, which is never the default.
        name ??= OperatingSystem.IsLinux() ? Epoll : Poll;
        if (string.Equals(name, Epoll, StringComparison.OrdinalIgnoreCase))
        {
            if (!OperatingSystem.IsLinux())
            {
                throw new PlatformNotSupportedException($"The \"{Epoll}\" selector needs Linux; use \"{Poll}\".");
            }

            return new EpollSelector();
        }

        if (string.Equals(name, Poll, StringComparison.OrdinalIgnoreCase))
        {
            return new PollSelector();
        }

        if (string.Equals(name, IoUring, StringComparison.OrdinalIgnoreCase))
        {
            if (!OperatingSystem.IsLinux())
            {
                throw new PlatformNotSupportedException($"The \"{IoUring}\" selector needs Linux; use \"{Poll}\".");
            }

            // Throws PlatformNotSupportedException saying why where io_uring is disabled or missing.
            return new IoUringSelector();
        }

        throw new ArgumentException(
            $"Unknown selector \"{name}\"; valid names are \"{Epoll}\" (Linux only), \"{Poll}\" and \"{IoUring}\" (Linux 5.11+).", nameof(name));
    }
}
