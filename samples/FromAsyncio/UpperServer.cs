// The example of docs/PORTING.md: an asyncio program (a server whose worker tasks take lines from
// a queue, count them under a lock and write them back upper-cased) ported line for line. The
// tests compile this file and run it, so the document cannot go stale.
using System.Net;
using System.Text;
using Tulip;
using Tulip.Queues;
using Tulip.Streams;
using Tulip.Synchronization;
// System.Threading and System.Collections.Generic (implicit usings) have these names too.
using Lock = Tulip.Synchronization.Lock;
using Jobs = Tulip.Queues.Queue<(byte[] Line, Tulip.Streams.LoopStreamWriter Writer)>;

namespace FromAsyncio;

public static class UpperServer
{
    /// <summary>Serves one client that sends <paramref name="lines"/>; returns what it got back.</summary>
    public static async LoopTask<string> RunAsync(params string[] lines)
    {
        var jobs = new Jobs(maxsize: 16);
        var counting = new Lock();
        int served = 0;

        async LoopTask Worker()
        {
            await foreach (var (line, writer) in jobs)     // ends once the queue is shut down
            {
                using (await counting.AcquireAsync())
                {
                    served++;
                }

                writer.Write(Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(line).ToUpperInvariant()));
                await writer.DrainAsync();
                jobs.TaskDone();
            }
        }

        async LoopTask Handle(LoopStreamReader reader, LoopStreamWriter writer)
        {
            await foreach (byte[] line in reader)          // each line, with its "\n"
            {
                await jobs.PutAsync((line, writer));
            }

            await jobs.JoinAsync();
            writer.Close();
            await writer.WaitClosedAsync();
        }

        var workers = new[] { Worker(), Worker(), Worker() };
        await using var server = await StreamConnections.StartServerAsync(Handle, "127.0.0.1", 0);
        int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;

        var (r, w) = await StreamConnections.OpenConnectionAsync("127.0.0.1", port);
        foreach (var text in lines)
        {
            w.Write(Encoding.UTF8.GetBytes(text + "\n"));
        }

        w.WriteEof();
        byte[] reply = await r.ReadAsync();               // to EOF
        w.Close();
        await w.WaitClosedAsync();

        jobs.Shutdown();
        await Tasks.Gather(workers);
        return $"{Encoding.UTF8.GetString(reply)}served {served}";
    }
}
