namespace Tulip.Tests.Streams;

using Tulip.Streams;

/// <summary>
/// What the reader tests share: awaiting an expected failure, letting the loop run until every
/// woken reader has taken its step, and a read transport that records flow control.
/// </summary>
internal static class ReaderTestSupport
{
    /// <summary>
    /// How many loop iterations <see cref="Settle"/> gives: a fed reader's waiter wakes its read on
    /// the next iteration, and a read that forwards to another (readline to readuntil, a memory read
    /// behind a value future) takes one more per level; five covers every level with room to spare,
    /// and a read still pending after them is waiting for data, not for the loop.
    /// </summary>
    private const int SettleIterations = 5;

    /// <summary>Runs the loop for a few iterations, so that a read woken by a feed finishes (or waits again).</summary>
    public static async LoopTask Settle()
    {
        for (int i = 0; i < SettleIterations; i++)
        {
            await Tasks.Yield();
        }
    }

    /// <summary>
    /// Calls <paramref name="start"/> and awaits the future it returns; returns the exception it
    /// failed with (thrown by the call itself or by the await), which must be a
    /// <typeparamref name="TException"/>.
    /// </summary>
    public static async LoopTask<TException> Throws<TException>(Func<Future> start)
        where TException : Exception
    {
        try
        {
            await start();
        }
        catch (Exception ex)
        {
            return Assert.IsAssignableFrom<TException>(ex);
        }

        Assert.Fail($"Expected {typeof(TException).Name}, but the read finished without an exception.");
        return null!;
    }

    /// <summary>As <see cref="Throws{TException}(Func{Future})"/>, for the memory reads' value futures.</summary>
    public static async LoopTask<TException> Throws<TException>(Func<ValueFuture<int>> start)
        where TException : Exception
    {
        try
        {
            await start();
        }
        catch (Exception ex)
        {
            return Assert.IsAssignableFrom<TException>(ex);
        }

        Assert.Fail($"Expected {typeof(TException).Name}, but the read finished without an exception.");
        return null!;
    }

    /// <summary>A memory read as a task of its own, so a test can start it, leave it pending and look at it later.</summary>
    public static async LoopTask<int> AsTask(ValueFuture<int> read) => await read;

    /// <summary>The bytes of an ASCII string.</summary>
    public static byte[] B(string ascii) => System.Text.Encoding.ASCII.GetBytes(ascii);

    /// <summary>Separators as the multi-separator <c>ReadUntilAsync</c> takes them.</summary>
    public static IReadOnlyList<ReadOnlyMemory<byte>> Seps(params string[] separators) =>
        separators.Select(s => (ReadOnlyMemory<byte>)B(s)).ToArray();

    /// <summary>
    /// The failure asyncio's readline raises (a <c>ValueError</c>) when a line is longer than the
    /// limit: Tulip throws an <see cref="InvalidDataException"/> whose inner exception is the
    /// <see cref="LimitOverrunError"/> readuntil gave.
    /// </summary>
    public static bool IsLineTooLong(Exception ex) => ex is InvalidDataException { InnerException: LimitOverrunError };

    /// <summary>Fails unless <paramref name="ex"/> is <see cref="IsLineTooLong"/>.</summary>
    public static void AssertLineTooLong(Exception ex) =>
        Assert.True(IsLineTooLong(ex), $"expected readline's line-too-long failure, got {ex.GetType().Name}: {ex.Message}");
}

/// <summary>A read transport that only records the flow control its reader asks for.</summary>
internal sealed class RecordingReadTransport : IReadTransport
{
    private IBaseProtocol? _protocol;

    /// <summary>"pause" and "resume", in the order the reader called them.</summary>
    public List<string> Calls { get; } = [];

    public bool IsReading { get; private set; } = true;

    public bool IsClosing { get; private set; }

    public void PauseReading()
    {
        Calls.Add("pause");
        IsReading = false;
    }

    public void ResumeReading()
    {
        Calls.Add("resume");
        IsReading = true;
    }

    public object? GetExtraInfo(string name, object? defaultValue = null) => defaultValue;

    public void Close() => IsClosing = true;

    public void SetProtocol(IBaseProtocol protocol) => _protocol = protocol;

    public IBaseProtocol GetProtocol() => _protocol ?? throw new InvalidOperationException("no protocol was set on this test transport");
}
