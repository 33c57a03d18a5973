using System.Net.Security;
using Microsoft.Extensions.Logging;
using Tulip.Testing;

namespace Tulip.Tests.Loop;

/// <summary>
/// What a loop says when it refuses a member (issue 9): the loop and the member, what is missing,
/// and what to do instead, never "use" the very loop that refuses. Subprocesses (issue 13) are refused
/// on the loops with no ISubprocessTransportFactory (the virtual-clock loop here, the proactor in SubprocessRegistryTests).
/// </summary>
public abstract class RefusalMessageContractTests : LoopSuite
{
    protected RefusalMessageContractTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>The virtual-clock loop, as a kind of its own: it refuses I/O with advice of its own.</summary>
    internal static LoopKind TestLoop { get; } = new("test", static lf => new TestEventLoop(loggerFactory: lf), readiness: false);

    /// <summary>Makes the loop under test.</summary>
    private BaseEventLoop CreateLoop(ILoggerFactory? loggerFactory) => Kind.Create(loggerFactory);

    private static void AssertDoesNotSendUsBack(BaseEventLoop loop, string message) =>
        Assert.DoesNotContain($"Use {loop.GetType().Name}", message, StringComparison.Ordinal);
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollRefusalMessageTests() : RefusalMessageContractTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollRefusalMessageTests() : RefusalMessageContractTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorRefusalMessageTests() : RefusalMessageContractTests(LoopKinds.Proactor);

/// <summary>TLS timeouts that make no sense are refused before any socket is made, on every real loop.</summary>
[Collection(NativeFdCollection.Name)]
public sealed class SslOptionsRefusalTests
{
    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void Ssl_timeouts_without_ssl_or_not_positive_are_refused(string kind)
    {
        using var harness = new LoopHarness(LoopKinds.Named(kind).Create);
        var loop = harness.Loop;

        var noSsl = Assert.Throws<ArgumentException>(() => loop.RunUntilComplete(() =>
            loop.CreateConnectionAsync(() => new RecordingProtocol(), "127.0.0.1", 9, new ConnectionOptions { SslHandshakeTimeout = 5 })));
        Assert.Contains("only meaningful with Ssl", noSsl.Message, StringComparison.Ordinal);

        var zero = Assert.Throws<ArgumentOutOfRangeException>(() => loop.RunUntilComplete(() =>
            loop.CreateConnectionAsync(() => new RecordingProtocol(), "127.0.0.1", 9,
                new ConnectionOptions { Ssl = new SslClientAuthenticationOptions { TargetHost = "localhost" }, SslShutdownTimeout = 0 })));
        Assert.Contains("positive number of seconds", zero.Message, StringComparison.Ordinal);
    }
}

/// <summary>The virtual-clock loop: its own advice for I/O, the base's for what no loop has.</summary>
public sealed class TestEventLoopRefusalMessageTests() : RefusalMessageContractTests(RefusalMessageContractTests.TestLoop)
{
    [Fact]
    public void SubprocessExecAsync_is_refused_with_what_to_do_instead()
    {
        using var harness = new LoopHarness(TestLoop.Create);
        var loop = harness.Loop;

        var ex = Assert.Throws<NotSupportedException>(() =>
        {
            loop.SubprocessExecAsync<ISubprocessProtocol>(() => throw new InvalidOperationException("never made"), "true", []);
        });

        Assert.StartsWith($"{loop.GetType().Name} does not support SubprocessExecAsync.", ex.Message, StringComparison.Ordinal);
        Assert.Contains("ISubprocessTransportFactory", ex.Message, StringComparison.Ordinal);
        Assert.Contains("System.Diagnostics.Process", ex.Message, StringComparison.Ordinal);
        Assert.Contains("ConnectReadPipeAsync", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SubprocessShellAsync_is_refused_with_what_to_do_instead()
    {
        using var harness = new LoopHarness(TestLoop.Create);
        var loop = harness.Loop;

        var ex = Assert.Throws<NotSupportedException>(() =>
        {
            loop.SubprocessShellAsync<ISubprocessProtocol>(() => throw new InvalidOperationException("never made"), "true");
        });

        Assert.StartsWith($"{loop.GetType().Name} does not support SubprocessShellAsync.", ex.Message, StringComparison.Ordinal);
        Assert.Contains("ISubprocessTransportFactory", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Socket_members_point_to_the_in_memory_loop()
    {
        using var loop = new TestEventLoop();

        var ex = Assert.Throws<NotSupportedException>(() => loop.AddReader(0, () => { }));

        Assert.StartsWith("TestEventLoop does not support AddReader.", ex.Message, StringComparison.Ordinal);
        Assert.Contains("MemoryEventLoop", ex.Message, StringComparison.Ordinal);
    }
}
