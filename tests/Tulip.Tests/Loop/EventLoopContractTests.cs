using Microsoft.Extensions.Logging;

namespace Tulip.Tests.Loop;

/// <summary>
/// The event loop contract (PEP 3156, issue 2), written once and bound to every loop (STYLE §11):
/// a subclass only says how to make its loop. The partial files split it by aspect: scheduling,
/// threads, errors and debug mode, futures, tasks, names, I/O. Bound to each loop kind of
/// <see cref="LoopKinds"/> by a sealed subclass of one line below.
/// </summary>
/// <remarks>
/// Every subclass runs in <see cref="NativeFdCollection"/>: some tests count /proc/self/fd or rely on
/// the kernel handing out the lowest free fd number, and others load every core with thread-safe calls.
/// </remarks>
public abstract partial class EventLoopContractTests : LoopSuite
{
    /// <summary>Binds the contract to <paramref name="kind"/>.</summary>
    protected EventLoopContractTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>Makes the loop under test.</summary>
    protected BaseEventLoop CreateLoop(ILoggerFactory? loggerFactory) => Kind.Create(loggerFactory);

    /// <summary>A loop under test with the leave-nothing-behind checks of <see cref="LoopHarness"/>.</summary>
    private protected LoopHarness NewLoop(bool recordExceptions = true, bool checkFds = false, ILoggerFactory? loggerFactory = null) =>
        new(CreateLoop, recordExceptions, checkFds, loggerFactory);

    /// <summary>Waits for a thread, bounded: a hung thread fails the test instead of the run.</summary>
    private protected static void JoinBounded(Thread thread) =>
        Assert.True(thread.Join(LoopHarness.Patience), $"Thread {thread.Name} did not finish within {LoopHarness.Patience.TotalSeconds} s.");
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollEventLoopTests() : EventLoopContractTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollEventLoopTests() : EventLoopContractTests(LoopKinds.Poll);

// Not ProactorEventLoopTests: that name is the proactor's own tests (tests/Tulip.Tests/Proactor/).
[Collection(NativeFdCollection.Name)]
public sealed class ProactorEventLoopContractTests() : EventLoopContractTests(LoopKinds.Proactor);
