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
