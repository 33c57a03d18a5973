using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace Tulip.Tests.Loop;

public abstract partial class EventLoopContractTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void An_exception_in_a_callback_goes_to_the_handler_with_the_handle_and_the_loop_keeps_running(bool debug)
    {
        using var h = NewLoop();
        h.Loop.Debug = debug;
        var boom = new InvalidTimeZoneException("boom");
        bool after = false;
        var handle = h.Loop.CallSoon(() => throw boom);
        h.Loop.CallSoon(() => after = true);
        h.Loop.CallLater(0, () => throw boom);
        h.Loop.CallLater(0.001, h.Loop.Stop);
        h.RunForever();

        Assert.True(after);
        var contexts = h.TakeContexts();
        Assert.Equal(2, contexts.Length);
        Assert.All(contexts, c => Assert.Same(boom, c.Exception));
        Assert.Same(handle, contexts[0].Handle);
        Assert.IsAssignableFrom<TimerHandle>(contexts[1].Handle);
        Assert.Contains("Exception in callback", contexts[0].Message);
    }

    [Fact]
    public void A_handler_that_throws_is_logged_and_not_fatal()
    {
        using var h = NewLoop(recordExceptions: false);
        h.Loop.SetExceptionHandler((_, _) => throw new InvalidProgramException("handler broke"));
        bool after = false;
        h.Loop.CallSoon(() => throw new FormatException("callback broke"));
        h.Loop.CallSoon(() => after = true);
        h.RunOnce();

        Assert.True(after);
        var error = Assert.Single(h.Logs.Entries, e => e.Level == LogLevel.Error);
        Assert.IsType<InvalidProgramException>(error.Exception);
        Assert.Contains("exception handler", error.Message);
        Assert.Contains("callback broke", error.Message);
    }

    [Fact]
    public void The_default_handler_logs_through_the_loggers_given_to_the_loop()
    {
        var logs = new CapturingLoggerFactory();
        using var h = NewLoop(recordExceptions: false, loggerFactory: logs);
        Assert.Null(h.Loop.GetExceptionHandler());
        h.Loop.CallSoon(() => throw new FormatException("callback broke"));
        h.RunOnce();

        var error = Assert.Single(logs.Entries, e => e.Level == LogLevel.Error);
        Assert.IsType<FormatException>(error.Exception);
        Assert.Contains("Exception in callback", error.Message);
    }

    [Fact]
    public void SetExceptionHandler_null_restores_the_default_handler()
    {
        using var h = NewLoop();
        h.Loop.SetExceptionHandler(null);
        h.Loop.CallExceptionHandler(new ExceptionContext("by hand"));
        Assert.Contains(h.Logs.Entries, e => e.Level == LogLevel.Error && e.Message.Contains("by hand"));
    }

    [Fact]
    public void Debug_mode_logs_a_slow_callback()
    {
        using var h = NewLoop();
        h.Loop.Debug = true;
        h.Loop.SlowCallbackDuration = 0;
        int x = 0;
        h.Loop.CallSoon(() => x++);
        h.RunOnce();

        Assert.Equal(1, x);
        Assert.Contains(h.Logs.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("Executing") && e.Message.Contains("took"));
    }

    [Fact]
    public void Outside_debug_mode_no_slow_callback_is_logged()
    {
        using var h = NewLoop();
        h.Loop.Debug = false;
        h.Loop.SlowCallbackDuration = 0;
        h.Loop.CallSoon(() => { });
        h.RunOnce();
        Assert.DoesNotContain(h.Logs.Entries, e => e.Level == LogLevel.Warning);
    }

    [Fact]
    public void Debug_mode_records_where_handles_and_futures_were_created()
    {
        using var h = NewLoop();
        h.Loop.Debug = false;
        var plain = h.Loop.CallSoon(() => { });
        Assert.Null(plain.SourceTraceback);
        Assert.Null(h.Loop.CreateFuture<int>().SourceTraceback);

        h.Loop.Debug = true;
        var handle = h.Loop.CallSoon(() => { });
        var timer = h.Loop.CallLater(0, () => { });
        var future = h.Loop.CreateFuture<int>();
        Assert.NotNull(handle.SourceTraceback);
        Assert.NotNull(timer.SourceTraceback);
        Assert.NotNull(future.SourceTraceback);
        string here = nameof(Debug_mode_records_where_handles_and_futures_were_created);
        Assert.Contains(here, handle.SourceTraceback!.ToString());
        Assert.Contains(here, future.SourceTraceback!.ToString());
        future.Cancel();
        h.RunOnce();
    }

    [Fact]
    public void TULIP_DEBUG_is_read_when_the_loop_is_made()
    {
        string? saved = Environment.GetEnvironmentVariable("TULIP_DEBUG");
        try
        {
            Environment.SetEnvironmentVariable("TULIP_DEBUG", "1");
            using (var on = NewLoop())
            {
                Assert.True(on.Loop.Debug);
            }

            Environment.SetEnvironmentVariable("TULIP_DEBUG", null);
            using var off = NewLoop();
            Assert.False(off.Loop.Debug);
        }
        finally
        {
            Environment.SetEnvironmentVariable("TULIP_DEBUG", saved);
        }
    }

    [Fact]
    public void An_exception_never_retrieved_is_reported_to_the_handler()
    {
        using var h = NewLoop();
        FailAndDrop(h.Loop);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        h.RunOnce();

        var context = Assert.Single(h.TakeContexts());
        Assert.Contains("never retrieved", context.Message);
        Assert.IsType<FormatException>(context.Exception);
    }

    [Fact]
    public void A_retrieved_exception_is_not_reported()
    {
        using var h = NewLoop();
        FailRetrieveAndDrop(h.Loop);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        h.RunOnce();
        Assert.Empty(h.TakeContexts());
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void FailAndDrop(BaseEventLoop loop) => loop.CreateFuture<int>().SetException(new FormatException("lost"));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void FailRetrieveAndDrop(BaseEventLoop loop)
    {
        var f = loop.CreateFuture<int>();
        f.SetException(new FormatException("seen"));
        Assert.NotNull(f.Exception());
    }
}
