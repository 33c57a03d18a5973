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
/// <c>poll</c> (a <see cref="SelectorEventLoop"/> on poll(2), Linux only too) and <c>proactor</c> (a
/// <see cref="ProactorEventLoop"/> on .NET's asynchronous sockets, everywhere). Names are matched without regard to
/// case. When <c>TULIP_LOOP</c> is unset or empty, the best kind available is used: epoll on
/// Linux, the proactor elsewhere (the selector loop runs on Tulip's Linux interop, poll included).
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

    // Every kind, best first: the first one available on the platform is the default. A new loop
    // joins every program, sample and script (and the error message) by one line here.
    private static readonly Kind[] s_kinds =
    [
        // The selector loop runs on Tulip's Linux interop (src/Tulip/Interop): Linux only, poll included.
        new(SelectorFactory.Epoll, static () => LinuxInterop.IsAvailable, static () => NewSelectorLoop(SelectorFactory.Epoll),
            static loop => IsSelectorLoop(loop, SelectorFactory.Epoll)),
        new(SelectorFactory.Poll, static () => LinuxInterop.IsAvailable, static () => NewSelectorLoop(SelectorFactory.Poll),
            static loop => IsSelectorLoop(loop, SelectorFactory.Poll)),
        new(ProactorName, static () => true, static () => new ProactorEventLoop(), static loop => loop is ProactorEventLoop),
    ];


    /// <summary>Every kind's name, available on this platform or not, best first (<c>epoll</c>, <c>poll</c>, <c>proactor</c>).</summary>
    public static IReadOnlyList<string> KnownNames { get; } = Array.AsReadOnly(s_kinds.Select(static k => k.Name).ToArray());

    /// <summary>The names of the kinds this platform can make, best first; the first is <see cref="DefaultName"/>.</summary>
    public static IReadOnlyList<string> AvailableNames { get; } =
        Array.AsReadOnly(s_kinds.Where(static k => k.IsAvailable()).Select(static k => k.Name).ToArray());

    /// <summary>The kind used when none is named: the best available (<c>epoll</c> on Linux, <c>proactor</c> elsewhere).</summary>
    public static string DefaultName => AvailableNames[0];

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
    /// (<c>epoll</c>, <c>poll</c>, <c>proactor</c>), whoever made it; null for a loop of no kind here
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
                        $"The '{kind.Name}' loop kind is not available on this platform; available: {string.Join(", ", AvailableNames)}.");
            }
        }

        return null;
    }

    // Find checks IsAvailable first; the guard again here is for the platform analyzer (CA1416).
    private static IEventLoop NewSelectorLoop(string selector) =>
        LinuxInterop.IsAvailable ? new SelectorEventLoop(selector) : throw new PlatformNotSupportedException($"The '{selector}' loop kind needs Linux.");

    private static bool IsSelectorLoop(IEventLoop loop, string selector) =>
        OperatingSystem.IsLinux() && loop is SelectorEventLoop s && s.SelectorName == selector;

    /// <summary>One loop kind: its name, whether this platform has it, how to make one, and how to recognise one.</summary>
    private sealed record Kind(string Name, Func<bool> IsAvailable, Func<IEventLoop> Create, Func<IEventLoop, bool> Is);
}
