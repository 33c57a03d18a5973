namespace Tulip.Tests.Loop;

/// <summary>
/// The loop kind is chosen in one place: <see cref="EventLoopKinds"/> names the kinds and reads
/// TULIP_LOOP; <see cref="EventLoop.Run{T}"/>, <see cref="Runner"/> and the default policy take a
/// loop factory and otherwise use that. Run once per kind. In the non-parallel collection: one test
/// sets TULIP_LOOP in the process, which every EventLoop.Run reads.
/// </summary>
public abstract class LoopFactoryTests : LoopSuite
{
    protected LoopFactoryTests(LoopKind kind) : base(kind)
    {
    }

    /// <summary>The kind under test, as TULIP_LOOP spells it.</summary>
    private string Name => Kind.Name;

    private Func<IEventLoop> CountingFactory(List<IEventLoop> made) => () =>
    {
        var loop = EventLoopKinds.GetFactory(Name)();
        made.Add(loop);
        return loop;
    };

    // The kind a loop is, by name (EventLoopKinds.NameOf): choosing a kind by name must give a loop of that kind.
    private static string? KindOf(IEventLoop loop) => EventLoopKinds.NameOf(loop);

    [Fact]
    public void GetFactory_makes_a_new_open_loop_of_the_kind_each_call()
    {
        var factory = EventLoopKinds.GetFactory(Name);
        using var first = factory();
        using var second = factory();
        Assert.NotSame(first, second);
        Assert.Equal(Name, KindOf(first));
        Assert.False(first.IsClosed);
        using var upper = EventLoopKinds.GetFactory(Name.ToUpperInvariant())();
        Assert.Equal(Name, KindOf(upper));
    }

    [Fact]
    public void The_TULIP_LOOP_value_selects_the_kind()
    {
        using var loop = EventLoopKinds.FromEnvironmentValue(Name)();
        Assert.Equal(Name, KindOf(loop));
    }

    [Fact]
    public void Run_uses_the_factory_it_is_given_and_closes_that_loop()
    {
        var made = new List<IEventLoop>();
        IEventLoop? running = null;
        int result = EventLoop.Run(async () =>
        {
            running = EventLoop.GetRunningLoop();
            await Tasks.Sleep(0);
            return 5;
        }, loopFactory: CountingFactory(made));

        Assert.Equal(5, result);
        var loop = Assert.Single(made);
        Assert.Same(loop, running);
        Assert.True(loop.IsClosed);

        EventLoop.Run(async () => { running = EventLoop.GetRunningLoop(); await Tasks.Sleep(0); }, loopFactory: CountingFactory(made));
        Assert.Equal(2, made.Count);
        Assert.Same(made[1], running);
        Assert.Equal(Name, KindOf(made[1]));
    }

    [Fact]
    public void Runner_makes_its_loop_with_the_factory_once()
    {
        var made = new List<IEventLoop>();
        using (var runner = new Runner(loopFactory: CountingFactory(made)))
        {
            runner.Run(async () => { await Tasks.Sleep(0); return 1; });
            IEventLoop? second = null;
            runner.Run(async () => { second = EventLoop.GetRunningLoop(); await Tasks.Sleep(0); });
            Assert.Same(Assert.Single(made), second);
            Assert.Same(made[0], runner.Loop);
        }

        Assert.True(made[0].IsClosed);
    }

    [Fact]
    public void The_default_policy_uses_the_factory_it_is_given()
    {
        var made = new List<IEventLoop>();
        var policy = new DefaultEventLoopPolicy(CountingFactory(made));
        using var loop = policy.NewEventLoop();
        Assert.Same(Assert.Single(made), loop);
    }

    [Fact]
    public void A_policy_told_the_kind_makes_Run_use_it_and_the_loop_knows_its_name()
    {
        var previous = EventLoop.GetEventLoopPolicy();
        EventLoop.SetEventLoopPolicy(new DefaultEventLoopPolicy(EventLoopKinds.GetFactory(Name)));
        try
        {
            string? ran = EventLoop.Run(async () =>
            {
                await Tasks.Sleep(0);
                return KindOf(EventLoop.GetRunningLoop());
            });
            Assert.Equal(Name, ran);
        }
        finally
        {
            EventLoop.SetEventLoopPolicy(previous);
        }
    }

    [Fact]
    public void The_default_policy_and_Run_honour_TULIP_LOOP()
    {
        string? saved = Environment.GetEnvironmentVariable(EventLoopKinds.EnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(EventLoopKinds.EnvironmentVariable, Name);
            using (var loop = new DefaultEventLoopPolicy().NewEventLoop())
            {
                Assert.Equal(Name, KindOf(loop));
            }

            string? ran = null;
            EventLoop.Run(async () => { ran = KindOf(EventLoop.GetRunningLoop()); await Tasks.Sleep(0); });
            Assert.Equal(Name, ran);
        }
        finally
        {
            Environment.SetEnvironmentVariable(EventLoopKinds.EnvironmentVariable, saved);
        }
    }
}

[Collection(NativeFdCollection.Name)]
public sealed class EpollLoopFactoryTests() : LoopFactoryTests(LoopKinds.Epoll);

[Collection(NativeFdCollection.Name)]
public sealed class PollLoopFactoryTests() : LoopFactoryTests(LoopKinds.Poll);

[Collection(NativeFdCollection.Name)]
public sealed class ProactorLoopFactoryTests() : LoopFactoryTests(LoopKinds.Proactor);

/// <summary>What is true of the kinds as a whole: the names, the default, the errors.</summary>
public sealed class EventLoopKindsTests
{
    [Fact]
    public void The_known_kinds_are_epoll_then_poll_then_io_uring_then_proactor_and_the_default_is_the_best_available()
    {
        Assert.Equal(["epoll", "poll", "io_uring", "proactor"], EventLoopKinds.KnownNames);
        Assert.Equal(OperatingSystem.IsLinux() ? "epoll" : "proactor", EventLoopKinds.DefaultName);
        Assert.Equal(EventLoopKinds.DefaultName, EventLoopKinds.AvailableNames[0]);
        Assert.Equal("TULIP_LOOP", EventLoopKinds.EnvironmentVariable);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void Unset_or_empty_TULIP_LOOP_gives_the_default_kind(string? value)
    {
        using var loop = EventLoopKinds.FromEnvironmentValue(value)();
        Assert.Equal(EventLoopKinds.DefaultName, EventLoopKinds.NameOf(loop));
    }

    [Fact]
    public void An_unknown_TULIP_LOOP_fails_with_the_known_kinds()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => EventLoopKinds.FromEnvironmentValue("foo"));
        Assert.StartsWith("TULIP_LOOP='foo' is not a known loop kind; known: epoll, poll, io_uring, proactor.", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_name_fails_with_the_known_kinds()
    {
        var ex = Assert.Throws<ArgumentException>(() => EventLoopKinds.GetFactory("kqueue"));
        Assert.StartsWith("'kqueue' is not a known loop kind; known: epoll, poll, io_uring, proactor.", ex.Message, StringComparison.Ordinal);
        Assert.Equal("name", ex.ParamName);
        Assert.Throws<ArgumentNullException>(() => EventLoopKinds.GetFactory(null!));
    }

    [Fact]
    public void NameOf_names_only_the_kinds_it_makes_and_refuses_null()
    {
        using var memory = new Tulip.Testing.MemoryEventLoop();
        Assert.Null(EventLoopKinds.NameOf(memory));
        using var poll = new SelectorEventLoop("poll"); // made directly, not through a factory: still its kind
        Assert.Equal("poll", EventLoopKinds.NameOf(poll));
        poll.Close();
        Assert.Equal("poll", EventLoopKinds.NameOf(poll)); // closed or not
        var ex = Assert.Throws<ArgumentNullException>(() => EventLoopKinds.NameOf(null!));
        Assert.Equal("loop", ex.ParamName);
    }

    [Fact]
    public void A_factory_that_returns_null_is_refused_clearly()
    {
        var runnerError = Assert.Throws<InvalidOperationException>(() => EventLoop.Run(async () => { await Tasks.Sleep(0); return 1; }, loopFactory: () => null!));
        Assert.Contains("loop factory returned null", runnerError.Message, StringComparison.Ordinal);
        var policyError = Assert.Throws<InvalidOperationException>(() => new DefaultEventLoopPolicy(() => null!).NewEventLoop());
        Assert.Contains("loop factory returned null", policyError.Message, StringComparison.Ordinal);
    }
}
