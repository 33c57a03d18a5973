// The main demonstration: the pieces of PEP 3156 that every Tulip program uses, in one run.
// Run it with: dotnet run --project samples/Demo
using System;
using System.Threading.Tasks;
using Tulip;

namespace Tulip.Samples.Demo;

internal static class Program
{
    private static int Main()
    {
        int total = EventLoop.Run(MainAsync);
        Console.WriteLine($"done: total = {total}");
        return 0;
    }

    private static async LoopTask<int> MainAsync()
    {
        var loop = EventLoop.GetRunningLoop();

        // Callbacks run in the order scheduled; timers when they fall due.
        loop.CallSoon(() => Console.WriteLine("call_soon: first"));
        loop.CallSoon(static name => Console.WriteLine($"call_soon: {name}"), "second, with state and no closure");
        loop.CallLater(0.01, () => Console.WriteLine("call_later: 10 ms later"));

        // Coroutines are tasks; Gather waits for all of them.
        int[] squares = await Tasks.Gather(Square(2), Square(3), Square(4));
        Console.WriteLine($"gather: {string.Join(", ", squares)}");

        // Cancellation is delivered where the task awaits, and the task may handle it.
        var sleeper = Sleeper();
        await Tasks.Sleep(0.01);
        sleeper.Cancel("no more waiting");
        Console.WriteLine($"cancel: {await sleeper}");

        // Any .NET async API can be awaited; the task resumes on the loop thread.
        int threadBefore = Environment.CurrentManagedThreadId;
        await Task.Delay(5);
        Console.WriteLine($"await Task.Delay: back on the loop thread = {threadBefore == Environment.CurrentManagedThreadId}");

        // Blocking work goes to the executor (the thread pool) and comes back as a future.
        long sum = await loop.RunInExecutor(() => { long s = 0; for (int i = 1; i <= 1000; i++) s += i; return s; });
        Console.WriteLine($"run_in_executor: {sum}");

        // Name lookups never block the loop.
        var addresses = await loop.GetAddrInfoAsync("127.0.0.1", 8080, type: System.Net.Sockets.SocketType.Stream);
        Console.WriteLine($"getaddrinfo: {addresses[0].EndPoint} ({addresses[0].SocketType})");

        return squares[0] + squares[1] + squares[2];
    }

    private static async LoopTask<int> Square(int x)
    {
        await Tasks.Sleep(0.001 * x);
        return x * x;
    }

    private static async LoopTask<string> Sleeper()
    {
        try
        {
            await Tasks.Sleep(3600);
            return "slept an hour";
        }
        catch (CancelledError e)
        {
            return $"caught CancelledError(\"{e.Message}\") and returned";
        }
    }
}
