using System;

namespace Tulip.Testing.Internal;

/// <summary>A growable FIFO of bytes: append at the end, take from the front. Not thread-safe.</summary>
internal sealed class ByteQueue
{
    private byte[] _buffer = Array.Empty<byte>();
    private int _start;
    private int _end;

    public int Count => _end - _start;

    public ReadOnlySpan<byte> Span => _buffer.AsSpan(_start, Count);

    public void Append(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        if (_buffer.Length - _end < data.Length)
        {
            int count = Count;
            if (_buffer.Length - count < data.Length)
            {
                var bigger = new byte[Math.Max(count + data.Length, _buffer.Length * 2)];
                Span.CopyTo(bigger);
                _buffer = bigger;
            }
            else
            {
                Span.CopyTo(_buffer);
            }

            _start = 0;
            _end = count;
        }

        data.CopyTo(_buffer.AsSpan(_end));
        _end += data.Length;
    }

    /// <summary>Removes and returns up to <paramref name="max"/> bytes from the front.</summary>
    public byte[] Take(int max)
    {
        int n = Math.Min(max, Count);
        var result = _buffer.AsSpan(_start, n).ToArray();
        _start += n;
        if (_start == _end)
        {
            _start = _end = 0;
        }

        return result;
    }

    public void Clear() => _start = _end = 0;
}
