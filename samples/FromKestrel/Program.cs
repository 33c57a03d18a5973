// dotnet run --project samples/FromKestrel [loop|pool]: docs/COMING_FROM_KESTREL.md's program, a
// System.IO.Pipelines frame parser served on a Tulip loop (TULIP_LOOP names it; epoll by default),
// with the handler on the loop thread (loop, the default) or on the thread pool (pool).
using FromKestrel;
using Tulip;

string where = args.Length == 0 ? "loop" : args[0];
if (args.Length > 1 || where is not ("loop" or "pool"))
{
    Console.Error.WriteLine("usage: FromKestrel [loop|pool]   (where the Pipelines handler runs: the loop thread, or the thread pool)");
    return 2;
}

EventLoop.Run(() => FrameDemo.RunAsync(Console.Out, handlerOnThreadPool: where == "pool"));
return 0;
