namespace Tulip.Tests;

/// <summary>
/// A contract suite written once (an abstract subclass) and bound to each loop kind by a sealed
/// subclass of one line: <c>public sealed class EpollXxxTests() : XxxTests(LoopKinds.Epoll);</c>
/// (STYLE §11). <c>LoopKindsTests</c> checks that every such suite is bound to every kind in
/// <see cref="LoopKinds.All"/>.
/// </summary>
public abstract class LoopSuite
{
    /// <summary>Binds the suite to <paramref name="kind"/>.</summary>
    protected LoopSuite(LoopKind kind)
    {
        ArgumentNullException.ThrowIfNull(kind);
        Kind = kind;
    }

    /// <summary>The loop kind this binding runs the suite on.</summary>
    public LoopKind Kind { get; }

    /// <summary>The kind's name, for test output.</summary>
    protected string Backend => Kind.Name;
}

/// <summary>
/// Marks a contract suite that a loop kind in <see cref="LoopKinds.All"/> cannot run yet: that loop lacks
/// the feature the suite tests, or has a known bug the suite finds intermittently (a flaky binding would
/// make CI red at random, and a retry would hide the bug); the reason names the issue. <c>LoopKindsTests</c>
/// then accepts the missing binding, lists the exemption in its output, and checks that the reason
/// names the issue that is to remove it. Remove the attribute with the binding's arrival.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class NotYetOnLoopKindAttribute(string kind, string reason) : Attribute
{
    /// <summary>The loop kind's name (<see cref="LoopKind.Name"/>).</summary>
    public string Kind { get; } = kind;

    /// <summary>What the loop lacks, and the issue that adds it ("issue N: ...").</summary>
    public string Reason { get; } = reason;
}
