using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Tulip.Streams;

namespace Tulip.Tests.Streams;

/// <summary>What the DuplexPipe suites share: a Pipelines line parser, pipe helpers and a thread-checking transport.</summary>
internal static class DuplexPipeTestSupport
{
    /// <summary>
    /// A Pipelines line parser (SequenceReader): reads <paramref name="input"/> line by line and hands
    /// each line, without its '\n', to <paramref name="onLine"/>; returns the unterminated tail at EOF.
    /// Written as .NET code is, with plain awaits, so it runs on the loop thread or on the thread pool.
    /// </summary>
    public static async Task<string> ReadLinesAsync(PipeReader input, Func<string, ValueTask> onLine)
    {
        while (true)
        {
            ReadResult result = await input.ReadAsync();
            var buffer = result.Buffer;
            var lines = new List<string>();
            var reader = new SequenceReader<byte>(buffer);
            while (reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n'))
            {
                lines.Add(Encoding.UTF8.GetString(line));
            }

            string tail = Encoding.UTF8.GetString(buffer.Slice(reader.Position));
            input.AdvanceTo(reader.Position, buffer.End);
            foreach (var line in lines)
            {
                await onLine(line);
            }

            if (result.IsCompleted)
            {
                await input.CompleteAsync();
                return tail;
            }
        }
    }

    /// <summary>Reads <paramref name="input"/> to its end and returns every byte.</summary>
    public static async Task<byte[]> ReadToEndAsync(PipeReader input)
    {
        var all = new MemoryStream();
        while (true)
        {
            ReadResult result = await input.ReadAsync();
            foreach (var segment in result.Buffer)
            {
                all.Write(segment.Span);
            }

            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                await input.CompleteAsync();
                return all.ToArray();
            }
        }
    }

    public static async Task WriteTextAsync(PipeWriter output, string text)
    {
        FlushResult result = await output.WriteAsync(Encoding.UTF8.GetBytes(text));
        Assert.False(result.IsCompleted, "the connection's reader side completed while writing");
    }

    /// <summary>
    /// A server whose connections run <paramref name="serve"/> as a loop task with their protocol; returns
    /// the server and a list that collects the tasks (await them to see a server's failure).
    /// </summary>
    public static async LoopTask<(Server Server, List<LoopTask> Serving)> StartServer(BaseEventLoop loop, Func<DuplexPipeProtocol, LoopTask> serve)
    {
        var serving = new List<LoopTask>();
        var server = await loop.CreateServerAsync(() => new DuplexPipeProtocol(connectionMade: p => serving.Add(serve(p))), ["127.0.0.1"], 0);
        return (server, serving);
    }

    /// <summary>Echoes each line upper-cased, then completes its output when its input ends.</summary>
    public static async LoopTask UpperCaseLines(DuplexPipeProtocol pipe)
    {
        string tail = await ReadLinesAsync(pipe.Input, line => WriteUpper(pipe.Output, line));
        await WriteTextAsync(pipe.Output, tail.ToUpperInvariant());
        await pipe.Output.CompleteAsync();
    }

    private static async ValueTask WriteUpper(PipeWriter output, string line) => await WriteTextAsync(output, line.ToUpperInvariant() + "\n");
}

/// <summary>
/// Sits between a transport and a <see cref="DuplexPipeProtocol"/> and hands the protocol a
/// <see cref="ThreadCheckingTransport"/>: every call the protocol makes on its transport is checked to
/// come from the loop thread.
/// </summary>
internal sealed class ThreadCheckingProtocol(DuplexPipeProtocol inner) : IBufferedProtocol
{
    public DuplexPipeProtocol Inner { get; } = inner;

    public ThreadCheckingTransport? Transport { get; private set; }

    public void ConnectionMade(IBaseTransport transport)
    {
        Transport = new ThreadCheckingTransport((ITransport)transport, Environment.CurrentManagedThreadId);
        Inner.ConnectionMade(Transport);
    }

    public Memory<byte> GetBuffer(int sizeHint) => Inner.GetBuffer(sizeHint);

    public void BufferUpdated(int bytesWritten) => Inner.BufferUpdated(bytesWritten);

    public bool EofReceived() => Inner.EofReceived();

    public void ConnectionLost(Exception? exception) => Inner.ConnectionLost(exception);

    public void PauseWriting() => Inner.PauseWriting();

    public void ResumeWriting() => Inner.ResumeWriting();
}

/// <summary>Forwards to a transport and records each call made from a thread other than the loop's.</summary>
internal sealed class ThreadCheckingTransport(ITransport inner, int loopThread) : ITransport
{
    private int _calls;
    private readonly List<string> _offLoop = new();

    public IReadOnlyList<string> OffLoopCalls
    {
        get
        {
            lock (_offLoop)
            {
                return _offLoop.ToList();
            }
        }
    }

    public int Calls => Volatile.Read(ref _calls);

    public bool IsClosing => Check(nameof(IsClosing), inner.IsClosing);

    public bool IsReading => Check(nameof(IsReading), inner.IsReading);

    public bool CanWriteEof => Check(nameof(CanWriteEof), inner.CanWriteEof);

    public object? GetExtraInfo(string name, object? defaultValue = null) => Check(nameof(GetExtraInfo), inner.GetExtraInfo(name, defaultValue));

    public void Close() => Do(nameof(Close), inner.Close);

    public void SetProtocol(IBaseProtocol protocol) => Do(nameof(SetProtocol), () => inner.SetProtocol(protocol));

    public IBaseProtocol GetProtocol() => Check(nameof(GetProtocol), inner.GetProtocol());

    public void PauseReading() => Do(nameof(PauseReading), inner.PauseReading);

    public void ResumeReading() => Do(nameof(ResumeReading), inner.ResumeReading);

    public void Write(ReadOnlySpan<byte> data)
    {
        Check(nameof(Write), 0);
        inner.Write(data);
    }

    public void WriteLines(IEnumerable<ReadOnlyMemory<byte>> data) => Do(nameof(WriteLines), () => inner.WriteLines(data));

    public void WriteEof() => Do(nameof(WriteEof), inner.WriteEof);

    public void Abort() => Do(nameof(Abort), inner.Abort);

    public int GetWriteBufferSize() => Check(nameof(GetWriteBufferSize), inner.GetWriteBufferSize());

    public (int Low, int High) GetWriteBufferLimits() => Check(nameof(GetWriteBufferLimits), inner.GetWriteBufferLimits());

    public void SetWriteBufferLimits(int? high = null, int? low = null) => Do(nameof(SetWriteBufferLimits), () => inner.SetWriteBufferLimits(high, low));

    private void Do(string name, Action call)
    {
        Check(name, 0);
        call();
    }

    private T Check<T>(string name, T value)
    {
        Interlocked.Increment(ref _calls);
        if (Environment.CurrentManagedThreadId != loopThread)
        {
            lock (_offLoop)
            {
                _offLoop.Add($"{name} on thread {Environment.CurrentManagedThreadId}");
            }
        }

        return value;
    }
}
