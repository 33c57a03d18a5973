// A program the tests start as a child process, one behaviour per mode (the first argument). It
// prints what it reaches on stdout, one line each, so a test can wait for "ready" before it
// signals and check "cleanup" and the exit status afterwards.
using NamespaceProof;
using Tulip;

namespace TulipTestProgram;

internal static class Program
{
    private static int Main(string[] args)
    {
        string mode = args.Length == 1 ? args[0] : "";
        switch (mode)
        {
            case "loop":
                // Which kind of loop EventLoop.Run makes (TULIP_LOOP, through the default policy).
                EventLoop.Run(async () =>
                {
                    var loop = EventLoop.GetRunningLoop();
                    Console.WriteLine($"loop: {EventLoopKinds.NameOf(loop) ?? loop.GetType().Name}");
                    await Tasks.Sleep(0);
                });
                return 0;
            case "interrupt":
                // Ctrl-C cancels the main task, its finally runs (awaits included), and the
                // KeyboardInterruptException left unhandled ends the process with status 130.
                EventLoop.Run(WaitWithCleanup);
                Console.WriteLine("Run returned"); // never: Run throws
                return 0;
            case "interrupt-caught":
                try
                {
                    EventLoop.Run(WaitWithCleanup);
                    return 0;
                }
                catch (KeyboardInterruptException e)
                {
                    Console.WriteLine($"caught {e.GetType().Name}, inner {e.InnerException?.GetType().Name}");
                    return 3;
                }
            case "interrupt-returns":
                // A main task that catches the cancellation and returns: Run returns its result.
                int result = EventLoop.Run(async () =>
                {
                    try
                    {
                        Console.WriteLine("ready");
                        await Tasks.Sleep(double.PositiveInfinity);
                        return 1;
                    }
                    catch (CancelledError)
                    {
                        return 7;
                    }
                });
                Console.WriteLine($"result {result}");
                return 0;
            case "stubborn":
                // Ignores the first Ctrl-C; the second ends the process at once, its finally unrun.
                EventLoop.Run(Stubborn);
                return 0;
            case "sigterm":
                // SIGTERM is left to .NET's default (documented on Runner): the process ends at once.
                EventLoop.Run(WaitWithCleanup);
                return 0;
            case "namespaces":
                Console.WriteLine(Namespaces.Use());
                return 0;
            case "portable":
                // The proactor with every Linux-specific path of Tulip forbidden (Portable.cs).
                return Portable.Run();
            default:
                Console.Error.WriteLine("usage: Tulip.TestProgram loop|interrupt|interrupt-caught|interrupt-returns|stubborn|sigterm|namespaces|portable");
                return 2;
        }
    }

    private static async LoopTask WaitWithCleanup()
    {
        try
        {
            Console.WriteLine("ready");
            await Tasks.Sleep(double.PositiveInfinity);
        }
        finally
        {
            await Tasks.Sleep(0); // cleanup may await: the loop still runs
            Console.WriteLine("cleanup");
        }
    }

    private static async LoopTask Stubborn()
    {
        try
        {
            Console.WriteLine("ready");
            try
            {
                await Tasks.Sleep(double.PositiveInfinity);
            }
            catch (CancelledError)
            {
                if (Tasks.CurrentTask() is LoopTask me)
                {
                    me.Uncancel();
                }

                Console.WriteLine("ignored the first");
            }

            await Tasks.Sleep(double.PositiveInfinity);
        }
        finally
        {
            Console.WriteLine("cleanup");
        }
    }
}
