using System;
using System.Collections.Generic;
using System.Runtime.Versioning;
using System.Threading;

namespace Tulip;

/// <summary>
/// Watches pidfds for loops that have no fd readiness of their own (the proactor): one background thread
/// for the whole process, in poll(2) over every pidfd being watched and an eventfd that tells it the set
/// changed. A pidfd turns readable when its child exits; the watch then ends and its callback runs on this
/// thread (it should only hand the news to its loop). The thread exists only while something is watched.
/// </summary>
/// <remarks>
/// A pidfd may be closed and its number reused while the thread is inside poll() with the old number: the
/// callback of the new watch may then run before its child has exited. Callers must treat the callback as
/// "look now", and watch again when the child still runs (<see cref="PidFdSubprocessTransport"/> does).
/// </remarks>
[SupportedOSPlatform("linux")]
internal sealed class PidFdWatcher
{
    internal static readonly PidFdWatcher Shared = new();

    private readonly object _gate = new();
    private readonly Dictionary<int, Action> _watches = [];
    private int _wakeFd = -1;
    private Thread? _thread;

    private PidFdWatcher()
    {
    }

    /// <summary>How many pidfds are watched (for tests).</summary>
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

    /// <summary>Whether the watcher thread runs (for tests: it ends once nothing is watched).</summary>
    internal bool IsRunning
    {
        get
        {
            lock (_gate)
            {
                return _thread is not null;
            }
        }
    }

    /// <summary>Watches <paramref name="pidfd"/> until it turns readable, then runs <paramref name="readable"/> once, on the watcher thread.</summary>
    /// <exception cref="InvalidOperationException">The pidfd is watched already.</exception>
    internal void Watch(int pidfd, Action readable)
    {
        ArgumentNullException.ThrowIfNull(readable);
        lock (_gate)
        {
            if (!_watches.TryAdd(pidfd, readable))
            {
                throw new InvalidOperationException($"pidfd {pidfd} is watched already.");
            }

            if (_wakeFd < 0)
            {
                int fd = Interop.EventFd(0, Interop.EFD_CLOEXEC | Interop.EFD_NONBLOCK);
                if (fd < 0)
                {
                    _watches.Remove(pidfd);
                    throw Interop.GetExceptionForErrno(Interop.GetLastErrno(), "eventfd() for the pidfd watcher");
                }

                _wakeFd = fd;
            }

            if (_thread is null)
            {
                _thread = new Thread(Run, maxStackSize: 256 * 1024) { IsBackground = true, Name = "Tulip pidfd watcher" };
                _thread.UnsafeStart();
                return;
            }
        }

        Wake();
    }

    /// <summary>Stops watching <paramref name="pidfd"/>; false if it was not watched (its callback ran or is running).</summary>
    internal bool Unwatch(int pidfd)
    {
        bool removed;
        lock (_gate)
        {
            removed = _watches.Remove(pidfd);
        }

        if (removed)
        {
            Wake();
        }

        return removed;
    }

    private unsafe void Wake()
    {
        ulong one = 1;
        int fd;
        lock (_gate)
        {
            fd = _wakeFd;
        }

        if (fd >= 0)
        {
            _ = Interop.Write(fd, (byte*)&one, sizeof(ulong));
        }
    }

    private unsafe void Run()
    {
        var fired = new List<Action>();
        var polled = new Interop.PollFd[8];
        while (true)
        {
            int count;
            lock (_gate)
            {
                if (_watches.Count == 0)
                {
                    // Nothing to watch: the thread ends (a later Watch starts another); the eventfd stays for it.
                    _thread = null;
                    return;
                }

                count = _watches.Count + 1;
                if (polled.Length < count)
                {
                    polled = new Interop.PollFd[Math.Max(count, polled.Length * 2)];
                }

                polled[0] = new Interop.PollFd { Fd = _wakeFd, Events = Interop.POLLIN };
                int i = 1;
                foreach (int fd in _watches.Keys)
                {
                    polled[i++] = new Interop.PollFd { Fd = fd, Events = Interop.POLLIN };
                }
            }

            int ready;
            fixed (Interop.PollFd* p = polled)
            {
                ready = Interop.Poll(p, (nuint)count, -1);
            }

            if (ready < 0)
            {
                continue; // EINTR; the set is rebuilt anyway
            }

            if ((polled[0].REvents & Interop.POLLIN) != 0)
            {
                ulong value;
                _ = Interop.Read(polled[0].Fd, (byte*)&value, sizeof(ulong));
            }

            lock (_gate)
            {
                for (int i = 1; i < count; i++)
                {
                    // POLLNVAL: closed behind us (after an Unwatch that raced this poll); the lookup below finds nothing then.
                    if (polled[i].REvents != 0 && _watches.Remove(polled[i].Fd, out var callback))
                    {
                        fired.Add(callback);
                    }
                }
            }

            foreach (var callback in fired)
            {
                try
                {
                    callback();
                }
                catch (Exception)
                {
                    // A callback only posts to its loop; one that fails must not end the watch of the others.
                }
            }

            fired.Clear();
        }
    }
}
