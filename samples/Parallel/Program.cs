using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using Tulip;
using Tulip.Queues;

namespace Tulip.Samples.Parallel;

/// <summary>
/// scripts/parallel [-j N] [--timeout SECONDS]: runs each line of standard input as a shell command, at most N at once,
/// writing each job's output whole and in input order (see <see cref="ParallelJobs"/>), on the loop kind TULIP_LOOP
/// names. Exit status: the number of failed jobs (at most 101); 2 for bad arguments or an unknown TULIP_LOOP; after
/// SIGTERM or SIGINT, once every running job has been ended, 128 + the signal's number.
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        var settings = ParallelSettings.Parse(args, out string? error, out bool help);
        if (help)
        {
            Console.Out.Write(ParallelSettings.Help);
            Console.Out.WriteLine();
            return 0;
        }

        if (settings is null)
        {
            Console.Error.WriteLine(error);
            Console.Error.WriteLine(ParallelSettings.Usage);
            Console.Error.WriteLine("Try 'parallel --help' for more.");
            return 2;
        }

        if (!LoopChoice.TryChoose("parallel", null, out var loopFactory))
        {
            return 2;
        }

        using var loop = loopFactory();
        using var stdout = Console.OpenStandardOutput();
        using var stderr = Console.OpenStandardError();
        using var stop = new CancellationTokenSource();
        int signalled = 0;
        try
        {
            return loop.RunUntilComplete(async () =>
            {
                // On SIGTERM or SIGINT: start no more jobs and end the running ones (ParallelJobs does both on stop).
                foreach (var signal in (ReadOnlySpan<PosixSignal>)[PosixSignal.SIGTERM, PosixSignal.SIGINT])
                {
                    int number = signal == PosixSignal.SIGTERM ? 15 : 2;
                    loop.AddSignalHandler(signal, () =>
                    {
                        if (signalled == 0)
                        {
                            signalled = number;
                        }

                        stop.Cancel();
                    });
                }

                var lines = new StdinLines(loop);
                int failed = await ParallelJobs.RunAsync(lines.NextAsync, settings, result => WriteAsync(loop, stdout, stderr, result), stop.Token);
                return signalled != 0 ? 128 + signalled : failed;
            });
        }
        catch (IOException e)
        {
            // Our own stdout or stderr failed (a reader that went away): every job has been ended by then.
            Console.Error.WriteLine($"parallel: cannot write the jobs' output: {e.Message}");
            return signalled != 0 ? 128 + signalled : 1;
        }
    }

    /// <summary>Writes one job's output off the loop thread (a slow reader of parallel's stdout must not stall the loop's timers).</summary>
    private static LoopTask WriteAsync(IEventLoop loop, Stream stdout, Stream stderr, JobResult result) =>
        loop.RunInExecutor(() =>
        {
            if (result.Output.Length > 0)
            {
                stdout.Write(result.Output);
                stdout.Flush();
            }

            if (result.Error.Length > 0)
            {
                stderr.Write(result.Error);
                stderr.Flush();
            }
        });

    /// <summary>
    /// Standard input's lines, read by a thread of their own and handed to the loop through a queue: stdin may be a file,
    /// a pipe or a terminal, and a blocking read on a thread serves all three on every loop kind. The thread is a
    /// background one, so a read still blocked at exit does not keep the process alive.
    /// </summary>
    private sealed class StdinLines
    {
        private readonly Queue<string?> _lines = new();

        public StdinLines(IEventLoop loop)
        {
            var thread = new Thread(() =>
            {
                try
                {
                    using var reader = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false));
                    while (reader.ReadLine() is { } line)
                    {
                        loop.CallSoonThreadSafe(static s => s.Queue.PutNowait(s.Line), (Queue: _lines, Line: (string?)line));
                    }
                }
                catch (IOException e)
                {
                    loop.CallSoonThreadSafe(static m => Console.Error.WriteLine($"parallel: cannot read standard input: {m}"), e.Message);
                }
                catch (InvalidOperationException)
                {
                    return; // the loop closed while we read: the program is ending
                }

                try
                {
                    loop.CallSoonThreadSafe(static q => q.PutNowait(null), _lines);
                }
                catch (InvalidOperationException)
                {
                    // The loop closed first.
                }
            })
            { IsBackground = true, Name = "parallel stdin" };
            thread.Start();
        }

        public async LoopTask<string?> NextAsync(CancellationToken cancellationToken) => await _lines.GetAsync(cancellationToken);
    }
}
