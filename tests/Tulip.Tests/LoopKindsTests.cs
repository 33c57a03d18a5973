using Xunit.Abstractions;
using System.Reflection;

namespace Tulip.Tests;

/// <summary>
/// The binding of suites to loop kinds: every contract suite (an abstract <see cref="LoopSuite"/>)
/// runs on every kind of <see cref="LoopKinds.All"/>, so a kind added there is named, with each
/// suite that still lacks it, until it has joined them all.
/// </summary>
public sealed class LoopKindsTests(ITestOutputHelper output)
{
    private readonly ITestOutputHelper _output = output;

    [Fact]
    public void EverySuiteIsBoundToEveryLoopKind()
    {
        var types = typeof(LoopSuite).Assembly.GetTypes();
        var suites = types.Where(t => t.IsAbstract && t.IsSubclassOf(typeof(LoopSuite))).ToList();
        Assert.NotEmpty(suites);
        var bindings = types.Where(t => !t.IsAbstract && t.IsSubclassOf(typeof(LoopSuite)))
            .Select(t => (Type: t, Kind: KindOf(t)))
            .ToList();
        var missing = new List<string>();
        foreach (var suite in suites)
        {
            var pending = suite.GetCustomAttributes(typeof(NotYetOnLoopKindAttribute), inherit: false).Cast<NotYetOnLoopKindAttribute>().ToList();
            foreach (var kind in LoopKinds.All)
            {
                bool bound = bindings.Any(b => b.Type.IsSubclassOf(suite) && b.Kind == kind);
                var exemption = pending.FirstOrDefault(p => p.Kind == kind.Name);
                if (exemption is not null && bound)
                {
                    missing.Add($"{suite.Name} is bound to '{kind.Name}' and still marked NotYetOnLoopKind(\"{kind.Name}\"): remove the attribute.");
                }
                else if (exemption is not null)
                {
                    _output.WriteLine($"{suite.Name}: not on '{kind.Name}' yet: {exemption.Reason}");
                }
                else if (!bound)
                {
                    missing.Add($"{suite.Name} has no binding for loop kind '{kind.Name}': add one line beside its others, " +
                        $"such as 'public sealed class {Capitalized(kind.Name)}{suite.Name.Replace("ContractTests", "Tests", StringComparison.Ordinal)}() : {suite.Name}(LoopKinds.{Capitalized(kind.Name)});'");
                }
            }
        }

        Assert.True(missing.Count == 0, string.Join("\n", missing));
    }

    [Fact]
    public void EveryExemption_NamesAKindOfAll_AndTheIssueThatEndsIt()
    {
        var marks = typeof(LoopSuite).Assembly.GetTypes()
            .SelectMany(t => t.GetCustomAttributes(typeof(NotYetOnLoopKindAttribute), inherit: false).Cast<NotYetOnLoopKindAttribute>()
                .Select(a => (Type: t, Mark: a)))
            .ToList();
        Assert.All(marks, m =>
        {
            Assert.True(m.Type.IsAbstract && m.Type.IsSubclassOf(typeof(LoopSuite)), $"{m.Type.Name}: only a contract suite can be exempted");
            Assert.Contains(LoopKinds.All, k => k.Name == m.Mark.Kind);
            Assert.Matches(@"^issue \d+: \S", m.Mark.Reason);
        });
    }

    [Fact]
    public void EveryBindingIsSealedAndDerivesFromASuite()
    {
        var loose = typeof(LoopSuite).Assembly.GetTypes()
            .Where(t => !t.IsAbstract && t.IsSubclassOf(typeof(LoopSuite)) && (!t.IsSealed || t.BaseType == typeof(LoopSuite)))
            .Select(t => t.Name)
            .ToList();
        Assert.True(loose.Count == 0, "bindings must be sealed subclasses of an abstract suite: " + string.Join(", ", loose));
    }

    [Fact]
    public void Names_AreUnique_AndEachNamesItsKind()
    {
        var kinds = LoopKinds.All.Append(LoopKinds.Memory).ToList();
        Assert.Equal(kinds.Count, kinds.Select(k => k.Name).Distinct(StringComparer.Ordinal).Count());
        Assert.All(kinds, k => Assert.Same(k, LoopKinds.Named(k.Name)));
        Assert.Equal(LoopKinds.All.Select(k => k.Name), ((IEnumerable<object[]>)LoopKinds.Names).Select(row => (string)row[0]));
    }

    [Fact]
    public void Named_UnknownName_FailsWithTheKnownOnes()
    {
        var ex = Assert.Throws<ArgumentException>(() => LoopKinds.Named("kqueue"));
        Assert.Contains("'kqueue'", ex.Message);
        Assert.All(LoopKinds.All, k => Assert.Contains(k.Name, ex.Message));
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void Create_GivesANewOpenLoopEachTime(string name)
    {
        var kind = LoopKinds.Named(name);
        using var a = kind.Create();
        using var b = kind.Create();
        Assert.NotSame(a, b);
        Assert.False(a.IsClosed);
        Assert.Equal(10, a.RunUntilComplete(async () =>
        {
            await Tasks.Sleep(0);
            return 10;
        }));
    }

    /// <summary>A kind's name converts to the kind (<c>base("epoll")</c>), through the list.</summary>
    [Fact]
    public void OlderBindingByName_ResolvesThroughTheList()
    {
        LoopKind kind = "poll";
        Assert.Same(LoopKinds.Poll, kind);
        LoopKind memory = "memory";
        Assert.Same(LoopKinds.Memory, memory);
        var ex = Assert.Throws<ArgumentException>(() =>
        {
            LoopKind unknown = "kqueue";
            return unknown;
        });
        Assert.Contains("'kqueue'", ex.Message);
    }

    /// <summary>The kind a binding runs its suite on: its constructor only stores what it is given.</summary>
    private static LoopKind KindOf(Type binding)
    {
        var constructor = binding.GetConstructors().Single();
        var suite = (LoopSuite)constructor.Invoke(new object?[constructor.GetParameters().Length]);
        return suite.Kind;
    }

    // The property and class-name spelling of a kind's name: "epoll" -> "Epoll", "io_uring" -> "IoUring".
    private static string Capitalized(string name) =>
        string.Concat(name.Split('_', StringSplitOptions.RemoveEmptyEntries).Select(part => char.ToUpperInvariant(part[0]) + part[1..]));
}
