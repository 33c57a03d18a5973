// The Tulip port of wordcount.py beside it, the program of docs/COMING_FROM_ASYNCIO.md: streams, a
// lock, a bounded queue, two task groups and a timeout. The tests compile this file, run it on
// every loop, run wordcount.py with /usr/bin/python3, and require the same lines (WordCountTests).
using System.Globalization;
using System.Net;
using System.Text;
using Tulip;
using Tulip.Streams;
// System.Threading and System.Collections.Generic (implicit usings) have these names too.
using Lock = Tulip.Synchronization.Lock;
using Words = Tulip.Queues.Queue<string?>;

namespace FromAsyncio;

public static class WordCount
{
    private static readonly (string Name, string[] Lines)[] Texts =
    [
        ("alice", ["the cat sat on the mat", "the dog sat too"]),
        ("bob", ["a cat and a dog", "and the mat"]),
        ("carol", ["the end"]),
    ];

    private const double Patience = 0.1;   // seconds carol waits for an answer that comes only after her EOF

    /// <summary>Runs the service and its three clients, writing what wordcount.py prints to <paramref name="output"/>.</summary>
    public static async LoopTask RunAsync(TextWriter output)
    {
        var words = new Words(maxsize: 4);                // bounded: a fast client waits for the workers
        var counts = new Dictionary<string, int>();
        var counting = new Lock();

        async LoopTask Worker()
        {
            while (await words.GetAsync() is string word)
            {
                using (await counting.AcquireAsync())
                {
                    int n = counts.GetValueOrDefault(word);
                    await Tasks.Sleep(0);                 // a round trip to a store: without the lock, counts are lost
                    counts[word] = n + 1;
                }

                words.TaskDone();
            }
        }

        async LoopTask Handle(LoopStreamReader reader, LoopStreamWriter writer)
        {
            string name = Encoding.UTF8.GetString(await reader.ReadLineAsync()).Trim();
            int n = 0;
            await foreach (byte[] line in reader)         // to EOF
            {
                foreach (string word in Encoding.UTF8.GetString(line).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
                {
                    await words.PutAsync(word);
                    n++;
                }
            }

            await words.JoinAsync();                      // every word put so far is counted
            writer.Write(Encoding.UTF8.GetBytes($"{name}: {n} words counted\n"));
            await writer.DrainAsync();
            writer.Close();
            await writer.WaitClosedAsync();
        }

        async LoopTask<string> Client(int port, string name, string[] lines, bool halfClose)
        {
            var (reader, writer) = await StreamConnections.OpenConnectionAsync("127.0.0.1", port);
            writer.Write(Encoding.UTF8.GetBytes($"{name}\n"));
            foreach (string line in lines)
            {
                writer.Write(Encoding.UTF8.GetBytes($"{line}\n"));
            }

            if (halfClose)
            {
                writer.WriteEof();
            }
            else
            {
                try
                {
                    // Not `using (Tasks.Timeout(Patience))`: that block would end in CancelledError (C#
                    // does not show Dispose the exception); WithTimeout turns the expiry into TimeoutError.
                    await Tasks.WithTimeout(Patience, () => reader.ReadLineAsync());   // the server answers only after EOF
                }
                catch (TimeoutError)
                {
                    output.WriteLine($"{name}: no answer within {Patience.ToString(CultureInfo.InvariantCulture)} s, half-closing");
                    writer.WriteEof();
                }
            }

            string answer = Encoding.UTF8.GetString(await reader.ReadLineAsync()).TrimEnd('\n');
            writer.Close();
            await writer.WaitClosedAsync();
            return answer;
        }

        LoopTask<string>[] answers = [];
        await using (var server = await StreamConnections.StartServerAsync(Handle, "127.0.0.1", 0))
        {
            int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
            await TaskGroup.RunAsync(async workers =>
            {
                for (int i = 0; i < 3; i++)
                {
                    _ = workers.CreateTask(Worker);       // the group keeps it; `_ =` says the task is not awaited here
                }

                await using (var clients = new TaskGroup())
                {
                    answers = [.. Texts.Select(t => clients.CreateTask(() => Client(port, t.Name, t.Lines, t.Name != "carol")))];
                }

                for (int i = 0; i < 3; i++)
                {
                    await words.PutAsync(null);           // one stop sign per worker
                }
            });
        }

        foreach (var answer in answers)
        {
            output.WriteLine(answer.Result());
        }

        var top = counts.OrderBy(kv => -kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Take(4);
        output.WriteLine("top: " + string.Join(", ", top.Select(kv => $"{kv.Key} {kv.Value}")));
    }
}
