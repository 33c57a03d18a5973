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

    /// <summary>The backends available on this platform, the default first.</summary>
    public static IReadOnlyList<string> AvailableNames { get; } =
        OperatingSystem.IsLinux() ? [Epoll, Poll] : [Poll];

    /// <summary>
    /// Creates the backend called <paramref name="name"/> (case-insensitive): "epoll" (Linux only) or
    /// "poll"; null picks epoll on Linux and poll elsewhere.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a known backend.</exception>
    /// <exception cref="PlatformNotSupportedException">"epoll" was asked for off Linux.</exception>
    [SupportedOSPlatform("linux")]
    public static ISelector Create(string? name = null)
    {
        name ??= AvailableNames[0];
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

        throw new ArgumentException(
            $"Unknown selector \"{name}\"; valid names are \"{Epoll}\" (Linux only) and \"{Poll}\".", nameof(name));
    }
}
