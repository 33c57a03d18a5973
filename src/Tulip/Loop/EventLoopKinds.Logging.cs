using System;
using System.Linq;
using Microsoft.Extensions.Logging;

namespace Tulip;

public static partial class EventLoopKinds
{
    /// <summary>
    /// The factory that makes a new, open loop of the kind <paramref name="name"/> (case-insensitive), or of the kind
    /// <c>TULIP_LOOP</c> selects when <paramref name="name"/> is null or empty, that logs through
    /// <paramref name="loggerFactory"/> (category <c>Tulip</c>): for a host whose logging comes from dependency
    /// injection (Tulip.Hosting).
    /// </summary>
    /// <param name="name">One of <see cref="KnownNames"/>; null or empty: as <see cref="FromEnvironment"/>.</param>
    /// <param name="loggerFactory">Where the loop logs; null: standard error, as <see cref="GetFactory"/>'s loops.</param>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a known kind; the message lists the known ones.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="name"/> is null and <c>TULIP_LOOP</c> names no known kind.</exception>
    /// <exception cref="PlatformNotSupportedException">The kind is known but this platform cannot make it.</exception>
    public static Func<IEventLoop> CreateFactory(string? name, ILoggerFactory? loggerFactory)
    {
        Func<IEventLoop> plain;
        if (string.IsNullOrEmpty(name))
        {
            name = Environment.GetEnvironmentVariable(EnvironmentVariable);
            plain = FromEnvironmentValue(name); // its errors and messages
            if (string.IsNullOrEmpty(name))
            {
                name = DefaultName;
            }
        }
        else
        {
            plain = GetFactory(name); // checks the name and the platform, with their messages
        }

        if (loggerFactory is null)
        {
            return plain;
        }

        string kind = KnownNames.First(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase));
        if (kind == ProactorName)
        {
            return () => new ProactorEventLoop(loggerFactory);
        }

        // Every other kind is a SelectorEventLoop over the selector of the kind's name (epoll, poll, ...):
        // the table in EventLoopKinds.cs makes them so. Tulip.Hosting's tests check, for every available kind,
        // that the loop made here is of the kind asked for (NameOf), so a kind that breaks the rule is caught.
        return () => NewSelectorLoop(kind, loggerFactory);
    }
}
