// The proof of the namespace scheme (docs/ARCHITECTURE.md, "Namespaces"): this project is a default
// one (ImplicitUsings enabled: System, System.IO, System.Collections.Generic, System.Linq,
// System.Net.Http, System.Threading, System.Threading.Tasks) and imports Tulip's flat core and
// Tulip.Testing. Each SDK type below whose name Tulip's coming modules also use is written
// unqualified, so if Tulip or Tulip.Testing ever defines one of them, this file stops compiling
// (CS0104, ambiguous reference) and `dotnet test Tulip.slnx`, which builds it, fails. The namespace
// is a user's, outside Tulip: inside `namespace Tulip.X` a Tulip type would silently win over the
// SDK's instead of colliding, and prove nothing. Tulip.Streams is imported too: its reader and
// writer are LoopStreamReader/LoopStreamWriter, so it sits beside System.IO with no alias (issue 10).
using Tulip;
using Tulip.Streams;
using Tulip.Testing;

namespace NamespaceProof;

internal static class Namespaces
{
    /// <summary>Uses each colliding SDK name and a few Tulip types; returns a line saying so.</summary>
    public static string Use()
    {
        using var buffer = new MemoryStream();
        using (StreamWriter writer = new(buffer, leaveOpen: true))
        {
            writer.Write("streams");
        }

        buffer.Position = 0;
        using StreamReader reader = new(buffer);
        string text = reader.ReadToEnd();
        Type tulipReader = typeof(LoopStreamReader); // beside System.IO's StreamReader, unqualified both
        GC.KeepAlive(tulipReader);

        Lock gate = new();
        using Semaphore semaphore = new(1, 1);
        using Barrier barrier = new(1);
        Queue<int> queue = new([1, 2]);
        PriorityQueue<string, int> priorities = new();
        priorities.Enqueue("first", 0);
        Task completed = Task.CompletedTask;

        // Tulip's core and Tulip.Testing, side by side with them.
        using var loop = new TestEventLoop();
        int answer = loop.RunUntilComplete(async () =>
        {
            await Tasks.Sleep(1);
            return queue.Sum();
        });
        lock (gate)
        {
            semaphore.WaitOne();
            semaphore.Release();
        }

        barrier.SignalAndWait();
        return $"namespaces: {text} {answer} {priorities.Dequeue()} {completed.IsCompleted} {nameof(EventLoop)} {nameof(Future)}";
    }
}
