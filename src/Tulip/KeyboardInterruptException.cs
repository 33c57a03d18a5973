using System;
using System.Threading;

namespace Tulip;

/// <summary>
/// Thrown by <see cref="EventLoop.Run{T}"/> and <see cref="Runner.Run{T}"/> when SIGINT (Ctrl-C)
/// interrupted the main task: the task was cancelled, its cleanup (<c>finally</c> blocks, <c>catch
/// (CancelledError)</c> handlers, awaits included) has run, and so has the runner's shutdown of the
/// tasks left. asyncio 3.11's <c>KeyboardInterrupt</c> from <c>asyncio.run</c>. An
/// <see cref="OperationCanceledException"/>; the main task's <see cref="CancelledError"/> is the
/// inner exception.
/// </summary>
/// <remarks>
/// <para>
/// Left unhandled, it ends the process the way an interrupted process ends: the runtime's
/// unhandled-exception report is not printed and the process kills itself with SIGINT (default
/// disposition), so its exit status is 130 (128 + SIGINT) and a shell running it knows it was
/// interrupted, as CPython does after an uncaught <c>KeyboardInterrupt</c>.
/// <see cref="AppDomain.ProcessExit"/> handlers do not run then (they do not on a plain Ctrl-C either).
/// A program that catches it decides for itself, e.g. <c>catch (KeyboardInterruptException) { return 130; }</c>
/// in <c>Main</c>.
/// </para>
/// <para>
/// The first instance made in a process subscribes to <see cref="AppDomain.UnhandledException"/>
/// for this; the handler acts on this exception type only.
/// </para>
/// </remarks>
public class KeyboardInterruptException : OperationCanceledException
{
    private static int s_unhandledHookInstalled;

    /// <summary>Creates the exception with the default message.</summary>
    public KeyboardInterruptException() : this(null, null) { }

    /// <summary>Creates the exception with a message (null: the default one).</summary>
    public KeyboardInterruptException(string? message) : this(message, null) { }

    /// <summary>Creates the exception with a message (null: the default one) and the main task's cancellation.</summary>
    public KeyboardInterruptException(string? message, Exception? innerException)
        : base(message ?? "Interrupted by SIGINT (Ctrl-C): the main task was cancelled and has cleaned up.", innerException)
    {
        if (Interlocked.Exchange(ref s_unhandledHookInstalled, 1) == 0)
        {
            AppDomain.CurrentDomain.UnhandledException += OnUnhandledException;
        }
    }

    /// <summary>The exit status of a process ended by SIGINT, as a shell reports it: 128 + 2.</summary>
    public const int ExitCode = 128 + 2; // SIGINT is 2 on every POSIX system (and what Windows' C runtime calls it)

    private static void OnUnhandledException(object sender, UnhandledExceptionEventArgs e)
    {
        if (e.ExceptionObject is not KeyboardInterruptException)
        {
            return;
        }

        try
        {
            Console.Out.Flush();
            Console.Error.Flush();
        }
        catch (Exception)
        {
            // A closed or broken stdout must not keep the process from ending as interrupted.
        }

        // Die of SIGINT itself (the "wait and cooperative exit" convention, as CPython 3.8+): with the
        // default disposition the kernel ends the whole process when the signal is generated.
        if (LinuxInterop.IsAvailable && Interop.Signal(Interop.SIGINT, Interop.SIG_DFL) != -1)
        {
            Interop.Kill(Interop.GetPid(), Interop.SIGINT);
        }

        // Only if the signal could not end the process: the same status by exit(2).
        Environment.Exit(ExitCode);
    }
}
