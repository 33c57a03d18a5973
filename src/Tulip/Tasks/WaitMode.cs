namespace Tulip;

/// <summary>When <see cref="Tasks.Wait"/> returns: asyncio's <c>return_when</c> constants.</summary>
public enum WaitMode
{
    /// <summary>As soon as any future is done or cancelled (<c>FIRST_COMPLETED</c>).</summary>
    FirstCompleted,

    /// <summary>
    /// As soon as any future finishes with an exception, or when all are done if none does
    /// (<c>FIRST_EXCEPTION</c>). A cancelled future does not count as an exception.
    /// </summary>
    FirstException,

    /// <summary>When every future is done or cancelled (<c>ALL_COMPLETED</c>, the default).</summary>
    AllCompleted,
}
