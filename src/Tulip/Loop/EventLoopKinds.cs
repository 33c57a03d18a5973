using Microsoft.Extensions.Logging;
using System;
using System.Collections.Generic;
using System.Linq;
using Tulip.Selectors;

namespace Tulip;

/// <summary>
/// The one place a kind of event loop is chosen by name: the loop factories behind
/// <see cref="DefaultEventLoopPolicy"/>, <see cref="EventLoop.Run{T}"/>, <see cref="Runner"/>, the
/// samples and the scripts, and the environment variable <c>TULIP_LOOP</c>, which selects the kind
/// for a whole program.
/// </summary>
/// <remarks>
/// <para>
/// The kinds today are <c>epoll</c> (a <see cref="SelectorEventLoop"/> on epoll(7), Linux only),
/// <c>poll</c> (a <see cref="SelectorEventLoop"/> on poll(2), Linux only too), <c>io_uring</c> (a
/// <see cref="SelectorEventLoop"/> whose readiness comes from poll requests on an io_uring ring, Linux
/// 5.11 or later where io_uring is not disabled; the completion backend of issue 14 is not written yet)
/// and <c>proactor</c> (a <see cref="ProactorEventLoop"/> on .NET's asynchronous sockets, everywhere).
/// Names are matched without regard to case. When <c>TULIP_LOOP</c> is unset or empty, the best kind
/// available is used: epoll on Linux, the proactor elsewhere (the selector loop runs on Tulip's Linux
/// interop, poll included); io_uring is never chosen by itself.
/// </para>
/// <para>
/// asyncio has no such variable (its policy always makes the platform's default loop); the
/// factories are asyncio's <c>loop_factory</c> argument of <c>asyncio.run</c> and
/// <c>asyncio.Runner</c>.
/// </para>
/// </remarks>
public static partial class EventLoopKinds
{
    /// <summary>The environment variable that selects the loop kind of a program: <c>TULIP_LOOP</c>.</summary>
    public const string EnvironmentVariable = "TULIP_LOOP";

    private const string ProactorName = "proactor";

    /// <summary>Why the io_uring kind cannot be made here: the probe's own message (which says why and
    /// what to use instead), or that it needs Linux.</summary>
    private static string IoUringUnavailable() =>
        LinuxInterop.IsAvailable
            ? Tulip.IoUring.IoUringRing.UnavailableReason?.Message ?? "io_uring is available."
            : "The 'io_uring' loop kind needs Linux (and Tulip's Linux interop).";

    // Every kind, best first: the first one available on the platform is the default. A new loop
    // joins every program, sample and script (and the error message) by one line here.
    private static readonly Kind[] s_kinds =
    [
        // The selector loop runs on Tulip's Linux interop (src/Tulip/Interop): Linux only, poll included.
        new(SelectorFactory.Epoll, static () => LinuxInterop.IsAvailable, static () => NewSelectorLoop(SelectorFactory.Epoll),
            static loop => IsSelectorLoop(loop, SelectorFactory.Epoll)),
        new(SelectorFactory.Poll, static () => LinuxInterop.IsAvailable, static () => NewSelectorLoop(SelectorFactory.Poll),
            static loop => IsSelectorLoop(loop, SelectorFactory.Poll)),
        // The io_uring loop (IoUringEventLoop: completion transports, readiness by poll requests). Asking whether it is
        // available makes one small ring (once per process), so the default is found without asking.
        new(SelectorFactory.IoUring, static () => LinuxInterop.IsAvailable && Tulip.IoUring.IoUringRing.IsAvailable,
            static () => NewSelectorLoop(SelectorFactory.IoUring), static loop => IsSelectorLoop(loop, SelectorFactory.IoUring),
            WhyNot: IoUringUnavailable),
        new(ProactorName, static () => true, static () => new ProactorEventLoop(), static loop => loop is ProactorEventLoop),
    ];


    private static readonly Lazy<IReadOnlyList<string>> s_availableNames = new(static () =>
        Array.AsReadOnly(s_kinds.Where(static k => k.IsAvailable()).Select(static k => k.Name).ToArray()));

    /// <summary>Every kind's name, available on this platform or not, best first (<c>epoll</c>, <c>poll</c>, <c>io_uring</c>, <c>proactor</c>).</summary>
    public static IReadOnlyList<string> KnownNames { get; } = Array.AsReadOnly(s_kinds.Select(static k => k.Name).ToArray());

    /// <summary>The names of the kinds this platform can make, best first; the first is <see cref="DefaultName"/>.</summary>
    /// <remarks>The first ask makes one small io_uring ring, to see whether io_uring works here.</remarks>
    public static IReadOnlyList<string> AvailableNames => s_availableNames.Value;

    /// <summary>The kind used when none is named: the best available (<c>epoll</c> on Linux, <c>proactor</c> elsewhere).</summary>
    /// <remarks>Found without probing io_uring when a kind before it is available.</remarks>
    public static string DefaultName => s_kinds.First(static k => k.IsAvailable()).Name;

    /// <summary>The factory that makes a new, open loop of the kind <paramref name="name"/> (case-insensitive).</summary>
    /// <param name="name">One of <see cref="KnownNames"/>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a known kind; the message lists the known ones.</exception>
    /// <exception cref="PlatformNotSupportedException">The kind is known but this platform cannot make it (epoll or poll off Linux).</exception>
    public static Func<IEventLoop> GetFactory(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return Find(name) ?? throw new ArgumentException(
            $"'{name}' is not a known loop kind; known: {string.Join(", ", KnownNames)}.", nameof(name));
    }

    /// <summary>
    /// The kind of <paramref name="loop"/> by name, as <see cref="GetFactory"/> and <c>TULIP_LOOP</c> spell it
    /// (<c>epoll</c>, <c>poll</c>, <c>io_uring</c>, <c>proactor</c>), whoever made it; null for a loop of no kind here
    /// (a test loop, a third party's). For the "serving on ... (epoll)" lines of programs and for tests
    /// that check which kind was chosen.
    /// </summary>
    /// <param name="loop">Any loop, open or closed.</param>
    /// <exception cref="ArgumentNullException"><paramref name="loop"/> is null.</exception>
    public static string? NameOf(IEventLoop loop)
    {
        ArgumentNullException.ThrowIfNull(loop);
        foreach (var kind in s_kinds)
        {
            if (kind.Is(loop))
            {
                return kind.Name;
            }
        }

        return null;
    }

    /// <summary>
    /// The factory <c>TULIP_LOOP</c> selects: the named kind, or <see cref="DefaultName"/>'s when the
    /// variable is unset or empty. The variable is read at each call.
    /// </summary>
    /// <exception cref="InvalidOperationException"><c>TULIP_LOOP</c> names no known kind; the message lists the known ones.</exception>
    /// <exception cref="PlatformNotSupportedException">The kind is known but this platform cannot make it.</exception>
    public static Func<IEventLoop> FromEnvironment() => FromEnvironmentValue(Environment.GetEnvironmentVariable(EnvironmentVariable));

    /// <summary>
    /// <see cref="FromEnvironment"/> on a given value of <c>TULIP_LOOP</c> (null or empty: the default kind).
    /// </summary>
    /// <exception cref="InvalidOperationException"><paramref name="value"/> names no known kind.</exception>
    /// <exception cref="PlatformNotSupportedException">The kind is known but this platform cannot make it.</exception>
    internal static Func<IEventLoop> FromEnvironmentValue(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return Find(DefaultName)!;
        }

        return Find(value) ?? throw new InvalidOperationException(
            $"{EnvironmentVariable}='{value}' is not a known loop kind; known: {string.Join(", ", KnownNames)}. " +
            $"Set it to one of those, or unset it for the best available ({DefaultName}).");
    }

    private static Func<IEventLoop>? Find(string name)
    {
        foreach (var kind in s_kinds)
        {
            if (string.Equals(kind.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return kind.IsAvailable()
                    ? kind.Create
                    : throw new PlatformNotSupportedException(
                        $"The '{kind.Name}' loop kind is not available {(kind.WhyNot is null ? "on this platform" : "here: " + kind.WhyNot())}; " +
                        $"available: {string.Join(", ", AvailableNames)}.");
            }
        }

        return null;
    }

    // Find checks IsAvailable first; the guard again here is for the platform analyzer (CA1416).
    // The io_uring kind is the IoUringEventLoop (completion transports, readiness through poll requests).
    internal static IEventLoop NewSelectorLoop(string selector, ILoggerFactory? loggerFactory = null) =>
        !LinuxInterop.IsAvailable ? throw new PlatformNotSupportedException($"The '{selector}' loop kind needs Linux.")
        : selector == SelectorFactory.IoUring ? new IoUringEventLoop(loggerFactory)
        : new SelectorEventLoop(selector, loggerFactory);

    private static bool IsSelectorLoop(IEventLoop loop, string selector) =>
        OperatingSystem.IsLinux() && loop is SelectorEventLoop s && s.SelectorName == selector;

    /// <summary>One loop kind: its name, whether this platform has it, how to make one, how to recognise one,
    /// and, for a kind that depends on more than the platform, why it is not available.</summary>
    private sealed record Kind(string Name, Func<bool> IsAvailable, Func<IEventLoop> Create, Func<IEventLoop, bool> Is, Func<string>? WhyNot = null);
}
