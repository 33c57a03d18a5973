using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Tulip;

/// <summary>
/// The child watch where pidfd is not available (pidfd_open refused with ENOSYS or EPERM, or missing from libc): one
/// SIGCHLD registration for the whole process, through .NET's <see cref="PosixSignalRegistration"/>, at which every
/// watched child's callback runs ("look now"); each reaps only its own pid with waitid(P_PID, pid, WNOHANG), never
/// waitpid(-1). The registration exists only while something is watched.
/// </summary>
/// <remarks>
/// <para>
/// Coexistence with <see cref="System.Diagnostics.Process"/>: the runtime has its own SIGCHLD handler (dotnet/runtime
/// pal_signal.c), which reaps only the pids of its Process objects (it peeks at exited children with WNOWAIT and
/// waitpid()s its own), and then runs the PosixSignalRegistration handlers on the thread pool. So neither takes the
/// other's exit status. The exception is the runtime's: when SIGCHLD was ignored at start-up, or the process is pid 1,
/// it reaps every child with waitpid(-1); the callback then finds ECHILD (see <see cref="PidFdSubprocessTransport"/>).
/// </para>
/// <para>
/// The handler never cancels the signal: the runtime's own work that follows a SIGCHLD (terminal settings for its
/// children) still runs. Signals coalesce, so every SIGCHLD checks every watched child; a watch checks once as it is
/// made, for a child that exited before the registration. A PosixSignalRegistration made later by someone else for
/// SIGCHLD that cancels the signal runs first and hides it from this one (the runtime's order); nothing in Tulip does.
/// </para>
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed class SigChldWatcher
{
    internal static readonly SigChldWatcher Shared = new();

    private readonly object _gate = new();
    private readonly Dictionary<int, Action> _watches = [];
    private PosixSignalRegistration? _registration;

    private SigChldWatcher()
    {
    }

    /// <summary>How many children are watched (for tests).</summary>
    internal int Count
    {
        get
        {
            lock (_gate)
            {
                return _watches.Count;
            }
        }
    }

    /// <summary>Whether the SIGCHLD registration exists (for tests: it goes once nothing is watched).</summary>
    internal bool IsRegistered
    {
        get
        {
            lock (_gate)
            {
                return _registration is not null;
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="check"/> at every SIGCHLD until <see cref="Unwatch"/>, on a thread-pool thread, and once now on
    /// this thread. It should try to reap <paramref name="pid"/> (WNOHANG) and unwatch once it has.
    /// </summary>
    /// <exception cref="InvalidOperationException">The pid is watched already.</exception>
    internal void Watch(int pid, Action check)
    {
        ArgumentNullException.ThrowIfNull(check);
        lock (_gate)
        {
            if (!_watches.TryAdd(pid, check))
            {
                throw new InvalidOperationException($"pid {pid} is watched already.");
            }

            try
            {
                _registration ??= PosixSignalRegistration.Create(PosixSignal.SIGCHLD, OnSigChld);
            }
            catch
            {
                _watches.Remove(pid);
                throw;
            }
        }

        check(); // it may have exited before the registration: no SIGCHLD will tell of that
    }

    /// <summary>Stops watching <paramref name="pid"/>; false if it was not watched.</summary>
    internal bool Unwatch(int pid)
    {
        PosixSignalRegistration? unused = null;
        bool removed;
        lock (_gate)
        {
            removed = _watches.Remove(pid);
            if (removed && _watches.Count == 0)
            {
                unused = _registration;
                _registration = null;
            }
        }

        unused?.Dispose();
        return removed;
    }

    /// <summary>On a thread-pool thread, after the runtime's own SIGCHLD handling: every watched child looks.</summary>
    private void OnSigChld(PosixSignalContext context)
    {
        Action[] checks;
        lock (_gate)
        {
            if (_watches.Count == 0)
            {
                return;
            }

            checks = [.. _watches.Values];
        }

        foreach (var check in checks)
        {
            try
            {
                check();
            }
            catch (Exception)
            {
                // A check only reaps and posts to its loop; one that fails must not end the others'.
            }
        }
    }
}
