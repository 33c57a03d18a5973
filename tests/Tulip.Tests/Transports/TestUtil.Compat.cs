namespace Tulip.Tests.Transports;

internal static partial class TestUtil
{
    /// <summary>
    /// The older binding by selector name (<c>Run("epoll", loop => ...)</c>), kept so suites written
    /// that way still compile: resolves <paramref name="backend"/> through <see cref="LoopKinds.Named"/>
    /// and hands the body the concrete <see cref="SelectorEventLoop"/>. New suites take a
    /// <see cref="LoopKind"/> and use <see cref="Run(LoopKind, Func{BaseEventLoop, LoopTask}, double, List{ExceptionContext}?)"/>,
    /// so a loop that is not a selector joins them too.
    /// </summary>
    public static void Run(string backend, Func<SelectorEventLoop, LoopTask> body, double timeoutSeconds = 60, List<ExceptionContext>? errors = null) =>
        Run(LoopKinds.Named(backend), loop => body(loop as SelectorEventLoop
            ?? throw new ArgumentException($"Loop kind '{backend}' is not a selector loop; bind the suite to a LoopKind instead.", nameof(backend))),
            timeoutSeconds, errors);
}
