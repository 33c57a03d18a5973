using System;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip.Streams;

/// <summary>
/// Enumerates a <see cref="LoopStreamReader"/>'s lines until EOF: what <c>await foreach (byte[] line in reader)</c>
/// uses (asyncio's <c>async for line in reader</c>). Not for direct use.
/// </summary>
/// <remarks>
/// A line that is buffered already is returned with no wait and no task; otherwise
/// <see cref="MoveNextAsync"/> waits as <see cref="LoopStreamReader.ReadLineAsync"/> does, so
/// cancelling the enumerating task delivers <see cref="CancelledError"/> at the await, and the
/// bytes of the unfinished line stay in the reader.
/// </remarks>
public sealed class StreamReaderLineEnumerator : IAsyncDisposable
{
    private readonly LoopStreamReader _reader;
    private readonly CancellationToken _cancellationToken;

    internal StreamReaderLineEnumerator(LoopStreamReader reader, CancellationToken cancellationToken)
    {
        _reader = reader;
        _cancellationToken = cancellationToken;
    }

    /// <summary>The line read by the last <see cref="MoveNextAsync"/> that returned true.</summary>
    public byte[] Current { get; private set; } = [];

    /// <summary>Reads the next line: true with it in <see cref="Current"/>, false at EOF.</summary>
    /// <exception cref="System.IO.InvalidDataException">A line is longer than the reader's limit (see <see cref="LoopStreamReader.ReadLineAsync"/>).</exception>
    public ValueFuture<bool> MoveNextAsync()
    {
        if (!_cancellationToken.IsCancellationRequested && _reader.TryTakeBufferedLine(out var line))
        {
            Current = line;
            return new ValueFuture<bool>(line.Length != 0);
        }

        return new ValueFuture<bool>(MoveNextSlowAsync());
    }

    /// <summary>Nothing to release: the reader stays as it is.</summary>
    public ValueTask DisposeAsync() => default;

    private async LoopTask<bool> MoveNextSlowAsync()
    {
        var line = await _reader.ReadLineAsync(_cancellationToken);
        Current = line;
        return line.Length != 0;
    }
}
