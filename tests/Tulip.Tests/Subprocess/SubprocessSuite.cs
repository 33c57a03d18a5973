using Tulip;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Tulip.Tests.Subprocess;

/// <summary>What a subprocess implementation under test does, beyond what every one must (pipes, /dev/null, inherit, env, cwd, kill).</summary>
[Flags]
public enum SubprocessFeatures
{
    /// <summary>Only the common part.</summary>
    None = 0,

    /// <summary>stderr merged into stdout (SubprocessStdio.StandardOutput).</summary>
    MergeStderr = 1,

    /// <summary>A given fd, handle or stream as a standard stream.</summary>
    GivenFds = 2,

    /// <summary>PassFds, and every other fd closed in the child.</summary>
    PassFds = 4,

    /// <summary>StartNewSession and ProcessGroup.</summary>
    Sessions = 8,

    /// <summary>An Executable apart from argv[0].</summary>
    Executable = 16,

    /// <summary>Any signal, not only SIGKILL.</summary>
    AnySignal = 32,

    /// <summary>Death by signal N reported as asyncio's -N (else as 128 + N, the shell's and .NET's form).</summary>
    NegativeSignalCodes = 64,

    /// <summary>A child reaped behind the implementation's back still ends its transport (255).</summary>
    SurvivesForeignReaping = 128,

    /// <summary>The child starts with every signal at its default, SIGPIPE included (which .NET ignores; bpo-31034).</summary>
    DefaultSignals = 256,

    /// <summary>The posix_spawn implementation: all of it.</summary>
    All = MergeStderr | GivenFds | PassFds | Sessions | Executable | AnySignal | NegativeSignalCodes | SurvivesForeignReaping | DefaultSignals,

    /// <summary>The System.Diagnostics.Process one (ProcessSubprocessTransportFactory).</summary>
    Process = None,

    /// <summary>
    /// The posix_spawn one watching by pid through SIGCHLD (no pidfd): all of it, but a foreign reaping cannot be
    /// staged, as the SIGCHLD watch reaps on a thread-pool thread, not the loop's, and may reap before the test does.
    /// </summary>
    SigChld = All & ~SurvivesForeignReaping,
}

/// <summary>
/// A subprocess contract suite: bound per loop kind, and once more per kind for each implementation other than the loop's
/// default (an abstract subclass that registers it in <see cref="Prepare"/> and says in <see cref="Features"/> what it
/// supports). A test of something the implementation lacks asserts it is refused (NotSupportedException naming the option),
/// so nothing passes by doing nothing.
/// </summary>
public abstract class SubprocessSuite : LoopSuite
{
    protected SubprocessSuite(LoopKind kind) : base(kind)
    {
    }

    /// <summary>What the implementation under test supports. Defaults to all: the loop's own (posix_spawn + pidfd on Linux).</summary>
    protected virtual SubprocessFeatures Features => SubprocessFeatures.All;

    /// <summary>Sets a new loop up before the test body runs (registers the implementation under test). Defaults to nothing.</summary>
    protected virtual void Prepare(BaseEventLoop loop)
    {
    }

    protected bool Has(SubprocessFeatures feature) => (Features & feature) == feature;

    /// <summary><see cref="Features"/>, for <see cref="SubprocessFactAttribute"/>'s discoverer.</summary>
    internal SubprocessFeatures FeaturesOfBinding => Features;

    /// <summary>The return code of a child killed by <paramref name="signal"/>, as the implementation reports it.</summary>
    protected int KilledBy(int signal) => Has(SubprocessFeatures.NegativeSignalCodes) ? -signal : 128 + signal;

    /// <summary><see cref="Transports.TestUtil.Run"/> on a loop made ready by <see cref="Prepare"/>.</summary>
    protected void Run(LoopKind kind, Func<BaseEventLoop, LoopTask> body, double timeoutSeconds = 60, List<ExceptionContext>? errors = null) =>
        Transports.TestUtil.Run(kind, loop =>
        {
            Prepare(loop);
            return body(loop);
        }, timeoutSeconds, errors);

    /// <summary>Asserts that starting fails with NotSupportedException naming <paramref name="option"/>, and leaves no child.</summary>
    protected static async LoopTask AssertRefused(string option, Func<LoopTask> start)
    {
        var ex = await Assert.ThrowsAsync<NotSupportedException>(async () => await start());
        Assert.Contains(option, ex.Message, StringComparison.Ordinal);
        Assert.Contains("PidFdSubprocessTransportFactory", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>As <see cref="AssertRefused"/> for a child started with <paramref name="options"/>.</summary>
    protected static LoopTask AssertRefused(BaseEventLoop loop, string option, SubprocessOptions options) =>
        AssertRefused(option, async () => await loop.SubprocessExecAsync(() => new SubprocessRecorder(loop), "/bin/sh", ["-c", "exit 0"], options));

    /// <summary>Registers <see cref="ProcessSubprocessTransportFactory"/> on <paramref name="loop"/>.</summary>
    internal static void UseProcessImplementation(BaseEventLoop loop) =>
        loop.Transports.Register<ISubprocessTransportFactory>(new ProcessSubprocessTransportFactory());

    /// <summary>Registers the posix_spawn implementation with every child watched by pid through SIGCHLD, as where pidfd_open is refused.</summary>
    internal static void UseSigChldImplementation(BaseEventLoop loop) =>
        loop.Transports.Register<ISubprocessTransportFactory>(PidFdSubprocessTransportFactory.WithoutPidFd);

    /// <summary>How many signals the transport sent its child (both implementations count them; for "a finished child is never signalled").</summary>
    internal static int SignalsSentTo(ISubprocessTransport transport) => transport switch
    {
        PidFdSubprocessTransport pidfd => pidfd.SignalsSent,
        ProcessSubprocessTransport process => process.SignalsSent,
        _ => throw new NotSupportedException($"No signal count for a {transport.GetType().Name}."),
    };
}

/// <summary>
/// A fact of a <see cref="SubprocessSuite"/> that only an implementation with <see cref="Requires"/> can run, and whose
/// lack cannot be asserted in this process (such as a limit that ends the process): on a binding without it the test is
/// reported skipped, with the reason, not passed by doing nothing.
/// </summary>
[XunitTestCaseDiscoverer("Tulip.Tests.Subprocess.SubprocessFactDiscoverer", "Tulip.Tests")]
[AttributeUsage(AttributeTargets.Method)]
public sealed class SubprocessFactAttribute : FactAttribute
{
    /// <summary>What the implementation under test must support.</summary>
    public SubprocessFeatures Requires { get; set; }

    /// <summary>Why a binding without <see cref="Requires"/> cannot run the test.</summary>
    public string? Because { get; set; }
}

/// <summary>Finds <see cref="SubprocessFactAttribute"/> tests; each binding's test case skips if its implementation lacks the feature.</summary>
public sealed class SubprocessFactDiscoverer(IMessageSink diagnosticMessageSink) : IXunitTestCaseDiscoverer
{
    /// <inheritdoc/>
    public IEnumerable<IXunitTestCase> Discover(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo factAttribute)
    {
        yield return new SubprocessTestCase(diagnosticMessageSink, discoveryOptions.MethodDisplayOrDefault(), discoveryOptions.MethodDisplayOptionsOrDefault(), testMethod);
    }
}

/// <summary>A test case skipped when the binding's <see cref="SubprocessSuite"/> lacks what the fact requires.</summary>
public sealed class SubprocessTestCase : XunitTestCase
{
    [Obsolete("Called by the de-serializer; should only be called by deriving classes for de-serialization purposes")]
    public SubprocessTestCase()
    {
    }

    public SubprocessTestCase(IMessageSink diagnosticMessageSink, TestMethodDisplay defaultMethodDisplay, TestMethodDisplayOptions defaultMethodDisplayOptions, ITestMethod testMethod)
        : base(diagnosticMessageSink, defaultMethodDisplay, defaultMethodDisplayOptions, testMethod)
    {
    }

    /// <inheritdoc/>
    protected override string? GetSkipReason(IAttributeInfo factAttribute)
    {
        var requires = factAttribute.GetNamedArgument<SubprocessFeatures>(nameof(SubprocessFactAttribute.Requires));
        var type = TestMethod.TestClass.Class.ToRuntimeType();
        if (type.IsAbstract || Activator.CreateInstance(type) is not SubprocessSuite suite)
        {
            return base.GetSkipReason(factAttribute);
        }

        var lacking = requires & ~suite.FeaturesOfBinding;
        return lacking == SubprocessFeatures.None
            ? base.GetSkipReason(factAttribute)
            : $"{type.Name}'s implementation lacks {lacking}: {factAttribute.GetNamedArgument<string?>(nameof(SubprocessFactAttribute.Because))}";
    }
}
