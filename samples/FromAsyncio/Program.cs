// dotnet run --project samples/FromAsyncio [wordcount|upper]
//   wordcount (the default): docs/COMING_FROM_ASYNCIO.md's program, WordCount.cs, the port of wordcount.py;
//   upper: docs/PORTING.md's example, UpperServer.cs.
// The loop is the one TULIP_LOOP names (epoll by default).
using FromAsyncio;
using Tulip;

switch (args.Length == 0 ? "wordcount" : args[0])
{
    case "wordcount" when args.Length <= 1:
        EventLoop.Run(() => WordCount.RunAsync(Console.Out));
        return 0;
    case "upper" when args.Length == 1:
        Console.WriteLine(EventLoop.Run(() => UpperServer.RunAsync("hello", "tulip")));
        return 0;
    default:
        Console.Error.WriteLine("usage: FromAsyncio [wordcount|upper]   (wordcount: docs/COMING_FROM_ASYNCIO.md; upper: docs/PORTING.md)");
        return 2;
}
