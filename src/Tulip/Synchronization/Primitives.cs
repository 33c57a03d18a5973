using System.Text;

namespace Tulip.Synchronization;

/// <summary>What the primitives share: a cancelled result, and asyncio's repr.</summary>
internal static class Primitives
{
    /// <summary>A value future that is already cancelled: a wait asked for with a cancelled token.</summary>
    public static ValueFuture<T> Cancelled<T>(BaseEventLoop loop)
    {
        var future = new Future<T>(loop);
        future.Cancel();
        return new ValueFuture<T>(future);
    }

    /// <summary><c>&lt;Name [state, waiters:n]&gt;</c>, as asyncio's <c>__repr__</c> prints it.</summary>
    public static string Describe(string name, string state, int waiters)
    {
        var text = new StringBuilder().Append('<').Append(name).Append(" [").Append(state);
        if (waiters > 0)
        {
            text.Append(", waiters:").Append(waiters);
        }

        return text.Append("]>").ToString();
    }
}
