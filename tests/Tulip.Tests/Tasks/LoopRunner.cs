using Tulip;

namespace Tulip.Tests.Combinators; // not ".Tasks": that would hide the Tasks class from Tulip.Tests.*

/// <summary>
/// Runs a test body on a fresh virtual-clock loop (Tulip.Testing's TestEventLoop, auto-advancing)
/// and fails the test if anything reached the loop's exception handler. The combinators only use
/// timers and futures, so virtual time makes every timeout here deterministic and instant; the
/// real loops' timers are covered by the loop contract suite.
/// </summary>
internal static class LoopRunner
{
    public static void Run(Func<LoopTask> body)
    {
        using var loop = new Tulip.Testing.TestEventLoop();
        var reported = new List<ExceptionContext>();
        loop.SetExceptionHandler((_, context) => reported.Add(context));
        loop.RunUntilComplete(body);
        Assert.Empty(reported);
    }

    public static T Run<T>(Func<LoopTask<T>> body)
    {
        using var loop = new Tulip.Testing.TestEventLoop();
        var reported = new List<ExceptionContext>();
        loop.SetExceptionHandler((_, context) => reported.Add(context));
        var result = loop.RunUntilComplete(body);
        Assert.Empty(reported);
        return result;
    }

    /// <summary>A task that sleeps, then returns <paramref name="value"/>.</summary>
    public static async LoopTask<int> After(double seconds, int value)
    {
        await Tasks.Sleep(seconds);
        return value;
    }

    /// <summary>A task that sleeps, then throws <paramref name="error"/>.</summary>
    public static async LoopTask<int> FailAfter(double seconds, Exception error)
    {
        await Tasks.Sleep(seconds);
        throw error;
    }

    /// <summary>Awaits <paramref name="future"/> and returns what it threw (or fails if nothing).</summary>
    public static async LoopTask<TException> Throws<TException>(Future future)
        where TException : Exception
    {
        try
        {
            await future;
        }
        catch (Exception ex)
        {
            return Assert.IsAssignableFrom<TException>(ex);
        }

        Assert.Fail($"Expected {typeof(TException).Name}, but {future} finished without an exception.");
        return null!;
    }
}
