using System;
using System.Runtime.InteropServices;
using System.Threading;

namespace Tulip;

public sealed partial class Runner
{
    /// <summary>
    /// SIGINT while <see cref="Run{T}"/> runs a main task (asyncio's <c>Runner._on_sigint</c>): the
    /// first one cancels the task on the loop thread and is handled; any later one, or one after the
    /// task is done, is left to .NET's default, which kills the process with SIGINT at once.
    /// </summary>
    private sealed class Interrupt : IDisposable
    {
        private static readonly Action<Future> s_cancel = static task =>
        {
            if (!task.Done)
            {
                task.Cancel("Interrupted by SIGINT (Ctrl-C).");
            }
        };

        private readonly IEventLoop _loop;
        private readonly Future _task;
        private PosixSignalRegistration? _registration;
        // Signals seen; written on .NET's signal thread, read by Run afterwards (Interlocked/Volatile).
        private int _count;
        // 1 once the main task is done (set on the loop thread by its done callback; read on the signal thread).
        private int _taskDone;

        private Interrupt(IEventLoop loop, Future task)
        {
            _loop = loop;
            _task = task;
        }

        /// <summary>Whether a SIGINT cancelled the main task.</summary>
        public bool Interrupted => Volatile.Read(ref _count) > 0;

        public static Interrupt Install(IEventLoop loop, Future task)
        {
            var interrupt = new Interrupt(loop, task);
            task.AddCallbackCore(static (_, state) => Volatile.Write(ref ((Interrupt)state!)._taskDone, 1), interrupt);
            try
            {
                interrupt._registration = PosixSignalRegistration.Create(PosixSignal.SIGINT, interrupt.OnSigInt);
            }
            catch (PlatformNotSupportedException)
            {
                // No signals here (a browser, say): the main task simply runs without Ctrl-C handling.
            }

            return interrupt;
        }

        /// <summary>Runs on .NET's signal-handling thread.</summary>
        private void OnSigInt(PosixSignalContext context)
        {
            if (_loop is BaseEventLoop { HasSigIntHandler: true })
            {
                return; // the loop's own SIGINT handler decides (its registration cancels the default)
            }

            if (Interlocked.Increment(ref _count) != 1 || Volatile.Read(ref _taskDone) != 0)
            {
                context.Cancel = false; // a second Ctrl-C, or nothing left to cancel: end at once
                return;
            }

            try
            {
                _loop.CallSoonThreadSafe(s_cancel, _task); // wakes the loop if it waits
                context.Cancel = true;
            }
            catch (Exception)
            {
                // The loop closed under us (Run is returning): nothing to cancel, so end as the default would.
                context.Cancel = false;
            }
        }

        public void Dispose() => _registration?.Dispose();
    }
}
