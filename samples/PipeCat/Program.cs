// cat over pipe transports: stdin (ConnectReadPipeAsync) is copied to stdout
// (ConnectWritePipeAsync), with flow control from one to the other: when stdout's buffer passes
// its high-water mark, stdin stops being read until it drains.
//
//   seq 1 200000 | dotnet run --project samples/PipeCat | tail -1
//   dotnet run --project samples/PipeCat < /etc/hostname      # refused: a regular file cannot be polled
//
// Both fds are made non-blocking, which is a property of the open file they share with the
// processes on the other ends: run it between pipes rather than on an interactive terminal.
using System;
using Tulip;

namespace Tulip.Samples.PipeCat;

internal static class Program
{
    private static int Main()
    {
        // .NET's console opens its stdout stream (a dup of fd 1) the first time any console stream is
        // written, stderr included; by the end the transport has closed fd 1, and that dup would fail
        // (EBADF: an unhandled exception where the message should be). Open it now.
        _ = Console.Out;
        try
        {
            long copied = EventLoop.Run(CopyAsync);
            Console.Error.WriteLine($"pipecat: {copied} bytes");
            return 0;
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"pipecat: {e.Message}");
            return 2;
        }
    }

    private static async LoopTask<long> CopyAsync()
    {
        var loop = EventLoop.GetRunningLoop();
        var output = new Output(loop);
        var (stdout, _) = await loop.ConnectWritePipeAsync(() => output, 1);
        var input = new Input(loop, stdout);
        var (stdin, _) = await loop.ConnectReadPipeAsync(() => input, 0);
        output.Source = stdin;

        await input.Done;          // the end of stdin
        stdout.Close();            // flushes what is buffered, then closes
        var error = await output.Lost;
        if (error is not null)
        {
            Console.Error.WriteLine($"pipecat: stdout: {error.Message}"); // e.g. the reader went away: EPIPE
        }

        return input.Copied;
    }

    /// <summary>Copies what stdin delivers to stdout.</summary>
    private sealed class Input(IEventLoop loop, IWriteTransport stdout) : Protocol
    {
        public Future<bool> Done { get; } = loop.CreateFuture<bool>();

        public long Copied { get; private set; }

        public override void DataReceived(ReadOnlySpan<byte> data)
        {
            stdout.Write(data);
            Copied += data.Length;
        }

        public override void ConnectionLost(Exception? exception) => Done.TrySetResult(true);
    }

    /// <summary>stdout's protocol: pauses stdin while stdout is behind.</summary>
    private sealed class Output(IEventLoop loop) : Protocol
    {
        public IReadTransport? Source { get; set; }

        public Future<Exception?> Lost { get; } = loop.CreateFuture<Exception?>();

        public override void PauseWriting() => Source?.PauseReading();

        public override void ResumeWriting() => Source?.ResumeReading();

        public override void ConnectionLost(Exception? exception)
        {
            Lost.TrySetResult(exception);
            Source?.Close();       // nowhere left to write: stop reading too
        }
    }
}
