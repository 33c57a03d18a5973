namespace Tulip.Tests.Loop;

/// <summary>
/// Ctrl-C under <see cref="EventLoop.Run{T}"/> (asyncio 3.11's runner), end to end in a child
/// process (tests/Tulip.TestProgram): the first SIGINT cancels the main task, its cleanup runs, and
/// the process ends with status 130; a second SIGINT ends it at once; SIGTERM keeps .NET's default.
/// Each test waits for the child's "ready" before it signals: no timing. Run on every loop kind
/// (TULIP_LOOP), since the signal must wake each kind's wait. In the non-parallel collection: they
/// start child processes, whose pipes the fd-counting tests would see.
/// </summary>
public abstract class InterruptTests : LoopSuite
{
    private const int SigInt = 2;
    private const int SigTerm = 15;

    protected InterruptTests(LoopKind kind) : base(kind)
    {
    }

    private ChildProgram Start(string mode) => ChildProgram.Start(mode, new Dictionary<string, string?> { ["TULIP_LOOP"] = Kind.Name });

    [Fact]
    public void The_loop_kind_comes_from_TULIP_LOOP()
    {
        using var child = Start("loop");
        Assert.Equal(0, child.WaitForExit());
        Assert.Equal([$"loop: {Kind.Name}"], child.Lines);
    }

    [Fact]
    public void SIGINT_cancels_the_main_task_runs_its_cleanup_and_exits_with_130()
    {
        using var child = Start("interrupt");
        child.WaitForLine("ready");
        child.Signal(SigInt);
        Assert.Equal(130, child.WaitForExit());
        Assert.Equal(["ready", "cleanup"], child.Lines); // and "Run returned" never: Run threw
        Assert.DoesNotContain("Unhandled exception", child.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public void The_caller_of_Run_sees_KeyboardInterruptException_after_the_cleanup()
    {
        using var child = Start("interrupt-caught");
        child.WaitForLine("ready");
        child.Signal(SigInt);
        Assert.Equal(3, child.WaitForExit());
        Assert.Equal(["ready", "cleanup", "caught KeyboardInterruptException, inner CancelledError"], child.Lines);
    }

    [Fact]
    public void A_main_task_that_catches_the_cancellation_and_returns_makes_Run_return()
    {
        using var child = Start("interrupt-returns");
        child.WaitForLine("ready");
        child.Signal(SigInt);
        Assert.Equal(0, child.WaitForExit());
        Assert.Equal(["ready", "result 7"], child.Lines);
    }

    [Fact]
    public void A_second_SIGINT_ends_the_process_at_once()
    {
        using var child = Start("stubborn");
        child.WaitForLine("ready");
        child.Signal(SigInt);
        child.WaitForLine("ignored the first");
        child.Signal(SigInt);
        Assert.Equal(130, child.WaitForExit());
        Assert.Equal(["ready", "ignored the first"], child.Lines); // no "cleanup": killed where it waited
    }

    [Fact]
    public void SIGTERM_keeps_the_default_and_ends_the_process_without_cleanup()
    {
        using var child = Start("sigterm");
        child.WaitForLine("ready");
        child.Signal(SigTerm);
        Assert.Equal(143, child.WaitForExit());
        Assert.Equal(["ready"], child.Lines);
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollInterruptTests() : InterruptTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollInterruptTests() : InterruptTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorInterruptTests() : InterruptTests(LoopKinds.Proactor);

/// <summary>What does not depend on the loop kind: a bad TULIP_LOOP, and the namespace proof run.</summary>
[Collection(NativeFdCollection.Name)]
public sealed class TestProgramTests
{
    [Fact]
    public void An_unknown_TULIP_LOOP_fails_with_the_known_kinds()
    {
        using var child = ChildProgram.Start("loop", new Dictionary<string, string?> { ["TULIP_LOOP"] = "foo" });
        Assert.NotEqual(0, child.WaitForExit());
        Assert.Contains("TULIP_LOOP='foo' is not a known loop kind; known: epoll, poll", child.StandardError, StringComparison.Ordinal);
        Assert.Empty(child.Lines);
    }

    [Fact]
    public void The_default_project_with_using_Tulip_builds_and_runs()
    {
        using var child = ChildProgram.Start("namespaces", new Dictionary<string, string?>());
        Assert.Equal(0, child.WaitForExit());
        Assert.Equal(["namespaces: streams 3 first True EventLoop Future"], child.Lines);
    }
}
