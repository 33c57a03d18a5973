// docs/COMING_FROM_KESTREL.md's program: UpperHandler (plain System.IO.Pipelines code) serving TCP
// connections of a Tulip loop through DuplexPipeProtocol, and a client on a DuplexPipeProtocol too.
// The handler runs either on the loop thread or on the thread pool; the lines printed are the same.
// The tests compile this file and run it on every loop kind (FromKestrelTests).
using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Tulip;
using Tulip.Streams;

namespace FromKestrel;

public static class FrameDemo
{
    /// <summary>
    /// Serves on 127.0.0.1 (any port), sends three frames (one of 200,000 bytes, so it crosses many pipe
    /// segments and both pause thresholds), and writes what comes back to <paramref name="output"/>.
    /// </summary>
    /// <param name="output">Where the lines go.</param>
    /// <param name="handlerOnThreadPool">Run the handler on the thread pool (Task.Run) instead of on the loop thread.</param>
    public static async LoopTask RunAsync(TextWriter output, bool handlerOnThreadPool)
    {
        var loop = EventLoop.GetRunningLoop();
        int loopThread = Environment.CurrentManagedThreadId;
        var served = new List<Task<int>>();

        // Kestrel's ConnectionHandler.OnConnectedAsync(connection), where connection.Transport is the
        // IDuplexPipe: here the protocol is the pipe, and connectionMade (on the loop thread) starts the handler.
        await using var server = await loop.CreateServerAsync(() => new DuplexPipeProtocol(connectionMade: pipe =>
            served.Add(handlerOnThreadPool ? Task.Run(() => UpperHandler.ServeAsync(pipe)) : UpperHandler.ServeAsync(pipe))),
            ["127.0.0.1"], 0);
        int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;

        var (_, client) = await loop.CreateConnectionAsync(() => new DuplexPipeProtocol(), "127.0.0.1", port);
        byte[] big = new byte[200_000];
        for (int i = 0; i < big.Length; i++)
        {
            big[i] = (byte)('a' + i % 26);
        }

        // Read the answers while writing: a client that wrote everything before reading would stall once
        // the echo filled both directions' buffers (the flow control at work, not a bug).
        var answers = ReadFramesAsync(client.Input);
        foreach (byte[] payload in new[] { "hello"u8.ToArray(), "pipelines on tulip"u8.ToArray(), big })
        {
            Frames.Write(client.Output, payload);
            await client.Output.FlushAsync();
        }

        await client.Output.CompleteAsync();             // half-close: the handler's read completes
        List<byte[]> replies = await answers;
        int frames = await served.Single();

        for (int i = 0; i < replies.Count; i++)
        {
            byte[] r = replies[i];
            string head = Encoding.ASCII.GetString(r, 0, Math.Min(r.Length, 20));
            bool allUpper = r.All(b => b is < (byte)'a' or > (byte)'z');
            output.WriteLine($"frame {i + 1}: {r.Length} bytes: {head}{(r.Length > 20 ? "..." : "")} (upper-cased: {allUpper})");
        }

        output.WriteLine($"server: {frames} frames served, the third equal to what was sent upper-cased: {replies[2].AsSpan().SequenceEqual(Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(big).ToUpperInvariant()))}");
        output.WriteLine($"client back on the loop thread: {Environment.CurrentManagedThreadId == loopThread}");
    }

    /// <summary>Reads frames until the peer half-closes.</summary>
    private static async Task<List<byte[]>> ReadFramesAsync(PipeReader input)
    {
        var frames = new List<byte[]>();
        while (true)
        {
            ReadResult result = await input.ReadAsync();
            ReadOnlySequence<byte> buffer = result.Buffer;
            while (Frames.TryRead(ref buffer, out ReadOnlySequence<byte> payload))
            {
                frames.Add(payload.ToArray());
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                await input.CompleteAsync();
                return frames;
            }
        }
    }
}
