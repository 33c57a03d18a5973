using System.Net.Sockets;
using Tulip;

namespace Tulip.Tests.Transports;

/// <summary>How CreateConnectionAsync reports that every address failed (asyncio's create_connection rules).</summary>
/// <remarks>
/// Names <see cref="SelectorEventLoop"/> because the rule is its internal helper today (no loop is
/// made); the connect paths of every loop kind are covered by the stream contract suite.
/// </remarks>
public sealed class ConnectFailureTests
{
    [Fact]
    public void OneFailure_IsThrownAsItIs()
    {
        var only = new SocketException((int)SocketError.ConnectionRefused, "connect to 127.0.0.1:1: refused");
        Assert.Same(only, SelectorEventLoop.ConnectFailure([only]));
    }

    [Fact]
    public void AllFailedAlike_IsTheFirstSocketException()
    {
        var first = new SocketException((int)SocketError.ConnectionRefused, "connect to [::1]:1: refused");
        var second = new SocketException((int)SocketError.ConnectionRefused, "connect to 127.0.0.1:1: refused");
        Assert.Same(first, SelectorEventLoop.ConnectFailure([first, second]));
    }

    [Fact]
    public void DifferentFailures_AreAnExceptionGroupOfAllInOrder()
    {
        var refused = new SocketException((int)SocketError.ConnectionRefused, "connect to [::1]:1: refused");
        var unreachable = new SocketException((int)SocketError.NetworkUnreachable, "connect to 10.0.0.1:1: unreachable");
        var group = Assert.IsType<ExceptionGroup>(SelectorEventLoop.ConnectFailure([refused, unreachable]));
        Assert.Equal([refused, unreachable], group.InnerExceptions);
        Assert.StartsWith("Multiple exceptions: connect to [::1]:1: refused; connect to 10.0.0.1:1: unreachable", group.Message);
        Assert.IsAssignableFrom<AggregateException>(group); // callers that catch AggregateException still do
    }

    [Fact]
    public void NoAddress_IsHostNotFound()
    {
        var ex = Assert.IsType<SocketException>(SelectorEventLoop.ConnectFailure([]));
        Assert.Equal(SocketError.HostNotFound, ex.SocketErrorCode);
    }
}
