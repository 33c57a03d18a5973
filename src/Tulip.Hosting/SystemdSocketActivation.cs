using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Tulip.Hosting;

/// <summary>One socket systemd passed: its fd and its <c>FileDescriptorName=</c>.</summary>
/// <param name="Fd">The file descriptor: 3 for the first (<c>SD_LISTEN_FDS_START</c>), then 4, ...</param>
/// <param name="Name">Its name from <c>LISTEN_FDNAMES</c>; systemd's default is the socket unit's name, <c>unknown</c> when none was passed.</param>
public readonly record struct SystemdListenFd(int Fd, string Name);

/// <summary>
/// Systemd's socket activation protocol (sd_listen_fds(3)): a service started for a <c>.socket</c> unit gets the
/// unit's sockets as fds 3, 4, ... with <c>LISTEN_PID</c> (the pid they are for), <c>LISTEN_FDS</c> (how many)
/// and <c>LISTEN_FDNAMES</c> (their names, colon-separated) in its environment.
/// </summary>
/// <remarks>
/// The environment is not changed (sd_listen_fds' <c>unset_environment</c> is false): the variables name this
/// process by pid, so a child that inherits them ignores them. The fds taken are marked close-on-exec, so
/// children do not inherit the sockets.
/// </remarks>
public static partial class SystemdSocketActivation
{
    /// <summary>The first fd passed (<c>SD_LISTEN_FDS_START</c>).</summary>
    public const int FirstFd = 3;

    /// <summary>
    /// The fds passed to process <paramref name="processId"/>, read from <paramref name="environment"/>; empty
    /// when <c>LISTEN_PID</c> or <c>LISTEN_FDS</c> is unset or <c>LISTEN_PID</c> names another process (sd_listen_fds
    /// returns 0 then too). Opens nothing.
    /// </summary>
    /// <param name="environment">Reads one variable; null for unset.</param>
    /// <param name="processId">This process's id (<see cref="Environment.ProcessId"/>).</param>
    /// <exception cref="FormatException"><c>LISTEN_PID</c> or <c>LISTEN_FDS</c> is not a number, or <c>LISTEN_FDNAMES</c> has a different count.</exception>
    public static IReadOnlyList<SystemdListenFd> GetListenFds(Func<string, string?> environment, int processId)
    {
        ArgumentNullException.ThrowIfNull(environment);
        string? pid = environment("LISTEN_PID");
        string? fds = environment("LISTEN_FDS");
        if (string.IsNullOrEmpty(pid) || string.IsNullOrEmpty(fds))
        {
            return [];
        }

        if (!int.TryParse(pid, NumberStyles.None, CultureInfo.InvariantCulture, out int listenPid) || listenPid <= 0)
        {
            throw new FormatException($"LISTEN_PID='{pid}' is not a process id; systemd sets it to the pid of the process the sockets are for.");
        }

        if (listenPid != processId)
        {
            return [];
        }

        if (!int.TryParse(fds, NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count > 65536)
        {
            throw new FormatException($"LISTEN_FDS='{fds}' is not a count of fds; systemd sets it to the number of sockets passed from fd {FirstFd}.");
        }

        string[]? names = environment("LISTEN_FDNAMES") is { Length: > 0 } joined ? joined.Split(':') : null;
        if (names is not null && names.Length != count)
        {
            throw new FormatException($"LISTEN_FDNAMES has {names.Length} names for LISTEN_FDS={count} fds; it gives one name per fd, separated by ':'.");
        }

        var result = new SystemdListenFd[count];
        for (int i = 0; i < count; i++)
        {
            result[i] = new SystemdListenFd(FirstFd + i, names?[i] ?? "unknown");
        }

        return result;
    }

    /// <summary>
    /// The listening stream sockets passed to this process (those named <paramref name="name"/>, or all), as
    /// sockets that own their fds. Fails with a message that says what was passed instead.
    /// </summary>
    internal static IReadOnlyList<Socket> TakeListenSockets(Func<string, string?> environment, string? name, TulipEndpoint endpoint)
    {
        var all = GetListenFds(environment, Environment.ProcessId);
        var chosen = new List<SystemdListenFd>();
        foreach (var fd in all)
        {
            if (name is null || fd.Name == name)
            {
                chosen.Add(fd);
            }
        }

        if (chosen.Count == 0)
        {
            throw new InvalidOperationException(all.Count == 0
                ? $"The Tulip endpoint {endpoint} found no socket from systemd: LISTEN_FDS and LISTEN_PID (this process, {Environment.ProcessId}) " +
                  "are not set. Start the service from a .socket unit (or systemd-socket-activate), or listen on an address instead."
                : $"The Tulip endpoint {endpoint} found no socket named '{name}' from systemd; the names passed are: " +
                  $"{string.Join(", ", all.Select(f => f.Name))} (FileDescriptorName= in the .socket unit).");
        }

        var sockets = new List<Socket>();
        try
        {
            foreach (var fd in chosen)
            {
                sockets.Add(OpenListeningSocket(fd, endpoint));
            }
        }
        catch
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }

            throw;
        }

        return sockets;
    }

    private static Socket OpenListeningSocket(SystemdListenFd fd, TulipEndpoint endpoint)
    {
        Socket socket;
        try
        {
            socket = new Socket(new SafeSocketHandle(fd.Fd, ownsHandle: true));
        }
        catch (SocketException ex)
        {
            throw new InvalidOperationException(
                $"The Tulip endpoint {endpoint}: fd {fd.Fd} ('{fd.Name}') from systemd is not a socket ({ex.SocketErrorCode}); " +
                "Tulip serves stream sockets (ListenStream= in the .socket unit).", ex);
        }

        try
        {
            if (socket.SocketType != SocketType.Stream)
            {
                throw new InvalidOperationException(
                    $"The Tulip endpoint {endpoint}: fd {fd.Fd} ('{fd.Name}') from systemd is a {socket.SocketType} socket; " +
                    "Tulip serves stream sockets (ListenStream= in the .socket unit).");
            }

            if (socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.AcceptConnection) is not int accepting || accepting == 0)
            {
                throw new InvalidOperationException(
                    $"The Tulip endpoint {endpoint}: fd {fd.Fd} ('{fd.Name}') from systemd is not listening (a connection, as Accept=yes passes); " +
                    "Tulip serves listening sockets: set Accept=no in the .socket unit.");
            }

            if (fcntl(fd.Fd, F_SETFD, FD_CLOEXEC) == -1)
            {
                throw new InvalidOperationException($"fcntl(F_SETFD, FD_CLOEXEC) failed on fd {fd.Fd} from systemd: errno {Marshal.GetLastPInvokeError()}.");
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return socket;
    }

    private const int F_SETFD = 2;
    private const int FD_CLOEXEC = 1;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(int fd, int cmd, int arg);
}
