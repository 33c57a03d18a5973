using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.IO;
using System.Threading;

namespace Tulip;

public abstract partial class BaseEventLoop
{
    // signal -> its registration. Guarded by: the loop thread (Add/Remove/Close).
    private readonly Dictionary<PosixSignal, SignalRegistration> _signalHandlers = new();

    // How many of the registrations are for SIGINT (as PosixSignal.SIGINT or as the raw 2), so that
    // Runner's Ctrl-C handling, on .NET's signal thread, leaves SIGINT to them. Written on the loop
    // thread, read on any (Volatile).
    private int _sigIntHandlers;

    /// <summary>Whether a SIGINT handler is set with <see cref="AddSignalHandler"/>. Any thread.</summary>
    internal bool HasSigIntHandler => Volatile.Read(ref _sigIntHandlers) > 0;

    /// <summary>
    /// Runs <paramref name="callback"/> on the loop thread when <paramref name="signal"/> arrives.
    /// Built on .NET's <see cref="PosixSignalRegistration"/>, so any loop supports it; setting a
    /// handler again replaces the callback. Signals that arrive while the callback is pending are
    /// coalesced into one run (as the kernel coalesces them): a burst never crashes the process
    /// and never leaves the handler unrun.
    /// </summary>
    /// <param name="signal">A <see cref="PosixSignal"/> or, on Unix, a raw signal number cast to it (SIGUSR1 is <c>(PosixSignal)10</c>).</param>
    /// <param name="callback">Runs on the loop thread.</param>
    /// <exception cref="ArgumentException">The signal cannot be handled (SIGKILL, SIGSTOP, an unknown number).</exception>
    public void AddSignalHandler(PosixSignal signal, Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        CheckCallable();
        int raw = (int)signal;
        if (raw is 9 or 19 || raw == 0 || raw > 64)
        {
            throw new ArgumentException($"Signal {signal} cannot be handled: SIGKILL and SIGSTOP cannot be caught, and a raw signal number is 1 to 64.", nameof(signal));
        }

        if (_signalHandlers.TryGetValue(signal, out var existing))
        {
            existing.Callback = callback;
            return;
        }

        var registration = new SignalRegistration(this, callback);
        try
        {
            registration.Registration = PosixSignalRegistration.Create(signal, registration.OnSignal);
        }
        catch (Exception ex) when (ex is PlatformNotSupportedException or IOException or ArgumentOutOfRangeException)
        {
            throw new ArgumentException($"Signal {signal} cannot be handled on this platform: {ex.Message}", nameof(signal), ex);
        }

        _signalHandlers[signal] = registration;
        if (IsSigInt(signal))
        {
            Volatile.Write(ref _sigIntHandlers, _sigIntHandlers + 1);
        }
    }

    /// <summary>
    /// How long a removed handler's .NET registration outlives its removal, ignoring what arrives, before
    /// it is disposed and the signal's default action is back. .NET's signal thread dispatches signals
    /// some time after the kernel delivered them; one of a burst dispatched after the registration was
    /// disposed would meet the default action and, for most signals, end the process. Every signal the
    /// inert registration ignores restarts the wait, so a slow burst is drained whole.
    /// </summary>
    internal static readonly TimeSpan SignalDrainTime = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Removes the handler for <paramref name="signal"/> and restores the default behaviour; returns whether one was set.
    /// The callback never runs after this returns, not even for a signal that arrived before; signals already
    /// delivered and not yet dispatched by .NET are ignored (<see cref="SignalDrainTime"/>) rather than
    /// meeting the default action.
    /// </summary>
    public bool RemoveSignalHandler(PosixSignal signal)
    {
        CheckCallable();
        if (!_signalHandlers.Remove(signal, out var registration))
        {
            return false;
        }

        registration.Retire();
        if (IsSigInt(signal))
        {
            Volatile.Write(ref _sigIntHandlers, _sigIntHandlers - 1);
        }

        return true;
    }

    // PosixSignal.SIGINT is -2 (a portable value); a raw signal number cast to PosixSignal is 2.
    private static bool IsSigInt(PosixSignal signal) => signal == PosixSignal.SIGINT || (int)signal == Interop.SIGINT;

    private void CloseSignalHandlers()
    {
        foreach (var registration in _signalHandlers.Values)
        {
            registration.Retire();
        }

        _signalHandlers.Clear();
        Volatile.Write(ref _sigIntHandlers, 0);
    }

    /// <summary>One signal's handler: the .NET registration and the loop callback it schedules.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The drain timer disposes itself, with the registration, when the signals have drained; nothing else may end it sooner.")]
    private sealed class SignalRegistration
    {
        private static readonly Action<object?, object?> s_run = static (r, _) => ((SignalRegistration)r!).Run();
        private static readonly TimerCallback s_drained = static r => ((SignalRegistration)r!).OnDrainTimer();
        private readonly BaseEventLoop _loop;
        // 1 while a run is scheduled and not started: further signals are coalesced into it.
        private int _pending;
        // Set on the loop thread by Retire: from then on signals are ignored and the registration waits for
        // SignalDrainTime of quiet before it is disposed (see SignalDrainTime).
        private volatile bool _retired;
        // 1 when a signal arrived since the drain timer last fired. Any thread.
        private int _signalledWhileDraining;
        private Timer? _drain;

        public SignalRegistration(BaseEventLoop loop, Action callback)
        {
            _loop = loop;
            Callback = callback;
        }

        public Action Callback { get; set; }

        public PosixSignalRegistration? Registration { get; set; }

        /// <summary>Runs on .NET's signal-handling thread.</summary>
        public void OnSignal(PosixSignalContext context)
        {
            // Handled: the default action (terminate, for most) does not run. But SIGCHLD, whose default is to ignore it: a
            // cancel would only skip the runtime's own work after it (terminal settings for its children) and, as .NET stops
            // at the first handler that cancels, hide it from the others, such as the subprocess SIGCHLD watch.
            // (Raw, SIGCHLD is 17 on Linux only.)
            context.Cancel = !(context.Signal == PosixSignal.SIGCHLD || (OperatingSystem.IsLinux() && (int)context.Signal == Interop.SIGCHLD));
            if (_retired)
            {
                Volatile.Write(ref _signalledWhileDraining, 1);
                return;
            }

            if (Interlocked.Exchange(ref _pending, 1) == 0 && !_loop.ScheduleFromAnyThread(s_run, this, null))
            {
                Volatile.Write(ref _pending, 0);
            }
        }

        private void Run()
        {
            Volatile.Write(ref _pending, 0);
            // Scheduled before the handler was removed: the removal wins.
            if (!_retired)
            {
                Callback();
            }
        }

        /// <summary>Loop thread: stops running the callback and disposes the registration once signals have drained.</summary>
        public void Retire()
        {
            // Once per registration: Remove takes it out of the table, Close clears the table.
            _retired = true;
            _drain = new Timer(s_drained, this, SignalDrainTime, Timeout.InfiniteTimeSpan);
        }

        // A thread-pool thread: disposes the registration after a quiet SignalDrainTime, or waits another.
        private void OnDrainTimer()
        {
            if (Interlocked.Exchange(ref _signalledWhileDraining, 0) == 1)
            {
                _drain!.Change(SignalDrainTime, Timeout.InfiniteTimeSpan);
                return;
            }

            Registration!.Dispose();
            _drain!.Dispose();
        }
    }
}
