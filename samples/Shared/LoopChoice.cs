using System;
using Tulip;

namespace Tulip.Samples;

/// <summary>
/// How the sample servers behind scripts/ choose their loop, one rule for all of them (compiled into
/// each): a loop argument (epoll, poll, io_uring, proactor), or without one the kind
/// TULIP_LOOP names (<see cref="EventLoopKinds.FromEnvironment"/>). A refusal is a message on stderr
/// and false, which the caller turns into exit status 2.
/// </summary>
internal static class LoopChoice
{
    /// <summary>Chooses the loop factory; false (after writing why, prefixed with <paramref name="program"/>) when it cannot.</summary>
    public static bool TryChoose(string program, string? backend, out Func<IEventLoop> loopFactory)
    {
        loopFactory = null!;
        PreferInlineSocketCompletions(backend ?? Environment.GetEnvironmentVariable("TULIP_LOOP"));
        switch (backend)
        {
            case null:
                try
                {
                    loopFactory = EventLoopKinds.FromEnvironment(); // TULIP_LOOP, or the best available
                    return true;
                }
                catch (Exception e) when (e is InvalidOperationException or PlatformNotSupportedException)
                {
                    Console.Error.WriteLine($"{program}: {e.Message}");
                    return false;
                }

            default:
                try
                {
                    loopFactory = EventLoopKinds.GetFactory(backend); // the one list of kinds
                    return true;
                }
                catch (ArgumentException)
                {
                    Console.Error.WriteLine($"{program}: unknown backend '{backend}'; expected {string.Join(", ", EventLoopKinds.KnownNames)}.");
                    return false;
                }
                catch (PlatformNotSupportedException e)
                {
                    Console.Error.WriteLine($"{program}: {e.Message}");
                    return false;
                }
        }
    }

    /// <summary>The runtime's switch that runs socket completions on its own epoll thread instead of the pool.</summary>
    internal const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>
    /// On the proactor, asks the runtime to complete socket operations on its epoll thread rather than
    /// hopping to the thread pool, unless the environment already says either way: the proactor's
    /// completion callback only queues a handle and wakes the loop, so it is safe to inline, and it
    /// saves a thread hop per operation (docs/PERFORMANCE.md). The runtime reads the variable once,
    /// when the first socket is made, so this runs before any.
    /// </summary>
    private static void PreferInlineSocketCompletions(string? loopKind)
    {
        if (loopKind == "proactor" && Environment.GetEnvironmentVariable(InlineCompletionsVariable) is null)
        {
            Environment.SetEnvironmentVariable(InlineCompletionsVariable, "1");
        }
    }
}
