using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace Tulip.Tests.Loop;

/// <summary>
/// Close says what it drops (issue 9): an "exception was never retrieved" report that a finalizer
/// queued before the loop closed reaches the exception handler instead of vanishing, and callbacks
/// scheduled from other threads that never ran are counted in the log.
/// </summary>
public abstract class CloseReportsTests : LoopSuite
{
    protected CloseReportsTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>Makes the loop under test.</summary>
    private BaseEventLoop CreateLoop(ILoggerFactory? loggerFactory) => Kind.Create(loggerFactory);

    [Fact]
    public void A_never_retrieved_report_queued_by_a_finalizer_before_Close_reaches_the_exception_handler()
    {
        using var h = new LoopHarness(CreateLoop);
        FailAndForget(h.Loop, "lost at close");
        // The finalizer runs on the finalizer thread and queues its report for the (open, idle) loop.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        GC.WaitForPendingFinalizers();

        h.Loop.Close();

        var context = Assert.Single(h.TakeContexts());
        Assert.Contains("exception was never retrieved", context.Message, StringComparison.Ordinal);
        Assert.Equal("lost at close", context.Exception?.Message);
    }

    [Theory]
    [InlineData(true, LogLevel.Warning)]
    [InlineData(false, LogLevel.Debug)]
    public void Close_logs_how_many_thread_safe_callbacks_it_dropped(bool debug, LogLevel level)
    {
        var logs = new CapturingLoggerFactory();
        using var h = new LoopHarness(CreateLoop, loggerFactory: logs);
        h.Loop.Debug = debug;
        int ran = 0;
        var other = new Thread(() =>
        {
            h.Loop.CallSoonThreadSafe(() => ran++);
            h.Loop.CallSoonThreadSafe(() => ran++);
        });
        other.Start();
        Assert.True(other.Join(LoopHarness.Patience));

        h.Loop.Close();

        Assert.Equal(0, ran);
        var entry = Assert.Single(logs.Entries, e => e.Message.Contains("dropped", StringComparison.Ordinal));
        Assert.Equal(level, entry.Level);
        Assert.Contains("dropped 2 callbacks scheduled from other threads", entry.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Close_with_nothing_queued_from_other_threads_logs_no_drop()
    {
        var logs = new CapturingLoggerFactory();
        using var h = new LoopHarness(CreateLoop, loggerFactory: logs);
        h.Loop.Debug = true;
        h.Loop.CallSoonThreadSafe(() => { });
        h.RunOnce();

        h.Loop.Close();

        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains("dropped", StringComparison.Ordinal));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void FailAndForget(BaseEventLoop loop, string message)
    {
        var future = loop.CreateFuture<int>();
        future.SetException(new InvalidOperationException(message));
    }
}

/// <summary>Close's reports on the epoll loop.</summary>
[Collection(NativeFdCollection.Name)]
public sealed class EpollCloseReportsTests() : CloseReportsTests(LoopKinds.Epoll);

/// <summary>Close's reports on the poll(2) loop.</summary>
[Collection(NativeFdCollection.Name)]
public sealed class PollCloseReportsTests() : CloseReportsTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorCloseReportsTests() : CloseReportsTests(LoopKinds.Proactor);
