// The server side, written as a Kestrel ConnectionHandler's OnConnectedAsync would be: a loop over
// PipeReader.ReadAsync that takes every whole frame from what has arrived, answers each with the
// payload upper-cased (ASCII), flushes once per batch, and ends when the peer half-closes. It takes
// an IDuplexPipe and nothing of Tulip's, so it runs unchanged on a Tulip connection (FrameDemo.cs),
// on Kestrel, or on two in-memory Pipes (the tests).
using System.Buffers;
using System.IO.Pipelines;

namespace FromKestrel;

public static class UpperHandler
{
    /// <summary>Serves one connection until the peer has sent its last frame and half-closed; returns the frames served.</summary>
    /// <exception cref="InvalidDataException">The peer sent a bad header or stopped in the middle of a frame (the connection is aborted).</exception>
    public static async Task<int> ServeAsync(IDuplexPipe connection, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        PipeReader input = connection.Input;
        PipeWriter output = connection.Output;
        int frames = 0;
        try
        {
            while (true)
            {
                ReadResult result = await input.ReadAsync(cancellationToken);
                ReadOnlySequence<byte> buffer = result.Buffer;
                while (Frames.TryRead(ref buffer, out ReadOnlySequence<byte> payload))
                {
                    WriteUpper(output, payload);
                    frames++;
                }

                // Consumed up to the first incomplete frame; examined everything, so the next read
                // waits for more bytes instead of returning the same ones.
                input.AdvanceTo(buffer.Start, buffer.End);
                FlushResult flush = await output.FlushAsync(cancellationToken);   // waits while the peer does not read
                if (result.IsCompleted)
                {
                    if (!buffer.IsEmpty)
                    {
                        throw new InvalidDataException($"The peer closed in the middle of a frame ({buffer.Length} bytes of it had come).");
                    }

                    break;
                }

                if (flush.IsCompleted)
                {
                    break;                               // the connection is gone: nobody to answer
                }
            }
        }
        catch (Exception ex)
        {
            // Kestrel's way to abort: complete both pipes with the exception (a reset, unsent data dropped).
            await input.CompleteAsync(ex);
            await output.CompleteAsync(ex);
            throw;
        }

        await input.CompleteAsync();
        await output.CompleteAsync();                    // sends what is left, then EOF
        return frames;
    }

    private static void WriteUpper(PipeWriter output, ReadOnlySequence<byte> payload)
    {
        Frames.WriteHeader(output, (int)payload.Length);   // at most MaxPayload: TryRead checked it
        foreach (ReadOnlyMemory<byte> segment in payload)
        {
            ReadOnlySpan<byte> from = segment.Span;
            while (!from.IsEmpty)
            {
                Span<byte> to = output.GetSpan(1);       // the pipe's own memory: no intermediate copy
                int n = Math.Min(to.Length, from.Length);
                for (int i = 0; i < n; i++)
                {
                    byte b = from[i];
                    to[i] = b is >= (byte)'a' and <= (byte)'z' ? (byte)(b - 32) : b;
                }

                output.Advance(n);
                from = from[n..];
            }
        }
    }
}
