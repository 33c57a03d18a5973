using System;
using System.Collections.Generic;
using System.Linq;

namespace Tulip.Testing;

/// <summary>
/// Thrown by a <see cref="TestEventLoop"/> run during which errors reached the loop's exception
/// handler: what the real loop would only have logged fails the test. The first error's exception
/// is the <see cref="Exception.InnerException"/>.
/// </summary>
public sealed class UnhandledLoopErrorsException : Exception
{
    /// <summary>Creates the exception for <paramref name="contexts"/>.</summary>
    public UnhandledLoopErrorsException(IReadOnlyList<ExceptionContext> contexts)
        : base(Describe(contexts), contexts.FirstOrDefault(c => c.Exception is not null)?.Exception)
    {
        Contexts = contexts;
    }

    /// <summary>The contexts the exception handler received, oldest first.</summary>
    public IReadOnlyList<ExceptionContext> Contexts { get; }

    private static string Describe(IReadOnlyList<ExceptionContext> contexts) =>
        $"{contexts.Count} error(s) reached the event loop's exception handler (set TestEventLoop.FailOnUnhandledErrors = false to only collect them):"
        + string.Concat(contexts.Select(c => Environment.NewLine + "  " + c));
}
