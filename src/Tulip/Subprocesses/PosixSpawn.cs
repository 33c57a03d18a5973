using System;
using System.Collections;
using System.Collections.Generic;
using System.ComponentModel;
using System.IO;
using System.IO.Pipes;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Text;
using System.Threading;

namespace Tulip;

/// <summary>A started child: its pid, its pidfd, and the parent's ends of its pipes (-1 where not piped). The caller owns every fd.</summary>
internal readonly record struct SpawnedChild(int Pid, int PidFd, int StdinFd, int StdoutFd, int StderrFd);

/// <summary>
/// Starts a child with posix_spawn(3), never fork(2) (glibc's posix_spawn is clone(CLONE_VM | CLONE_VFORK) and exec,
/// which reports the exec's errno back as its result), and opens its pidfd. Loop-neutral: any loop that can watch
/// a pidfd, or wait for it on a thread, can use it.
/// </summary>
/// <remarks>
/// In the child, in this order: fds 0, 1, 2 set up as asked (pipes, /dev/null, a given fd, stderr to stdout); the
/// <see cref="SubprocessOptions.PassFds"/> made inheritable (dup2(fd, fd) clears FD_CLOEXEC, glibc 2.29+); every other
/// fd from 3 up closed (the gaps below the highest pass fd one by one, the rest with closefrom, glibc 2.34+), so a
/// descriptor some library opened without O_CLOEXEC does not leak either; the signal mask emptied and SIGPIPE and
/// SIGXFSZ reset to their default action (.NET ignores SIGPIPE, and an ignored signal survives exec: bpo-31034;
/// the pair is Python's restore_signals); setsid or setpgid as asked; chdir; exec with the environment given.
/// Every fd this makes in the parent is O_CLOEXEC, so a System.Diagnostics.Process started meanwhile on another
/// thread inherits none of them.
/// </remarks>
[SupportedOSPlatform("linux")]
internal static unsafe class PosixSpawn
{
    /// <summary>glibc's default search path when PATH is unset (confstr(_CS_PATH)).</summary>
    private const string DefaultPath = "/bin:/usr/bin";

    /// <summary>Whether posix_spawn_file_actions_addclosefrom_np exists (glibc 2.34+); without it, fds rely on O_CLOEXEC alone.</summary>
    private static bool s_hasCloseFrom = true;

    /// <summary>Starts the child; throws (leaving nothing open and no child) if it cannot be started.</summary>
    /// <exception cref="FileNotFoundException">The program was not found (ENOENT).</exception>
    /// <exception cref="DirectoryNotFoundException">The working directory does not exist.</exception>
    /// <exception cref="Win32Exception">posix_spawn failed with another errno (EACCES, ENOEXEC...).</exception>
    /// <exception cref="ArgumentException">A pass fd or a given stdio fd is not open.</exception>
    /// <remarks>With <paramref name="usePidFd"/>, the child's pidfd is opened, unless this system has none (then, as without, it is -1:
    /// the caller watches the child by pid).</remarks>
    internal static SpawnedChild Start(string program, IReadOnlyList<string> arguments, SubprocessOptions options, bool usePidFd = true)
    {
        string[] environment = BuildEnvironment(options);
        string file = options.Executable ?? program;
        string path = ResolveProgram(program, file, environment, options.WorkingDirectory);
        if (options.WorkingDirectory is { } cwd && !Directory.Exists(cwd))
        {
            throw new DirectoryNotFoundException($"Cannot start '{program}': the working directory '{cwd}' does not exist.");
        }

        if (options.PassFds is { } passFds)
        {
            foreach (int fd in passFds)
            {
                if (Interop.Fcntl(fd, Interop.F_GETFD) < 0)
                {
                    throw new ArgumentException($"options.PassFds: fd {fd} is not open in this process.", nameof(options));
                }
            }
        }

        // Everything opened here is closed in the finally, but the parent's pipe ends, which are handed over on success.
        var toClose = new List<int>();
        var handles = new List<SafeHandle>();
        var parentEnds = new List<int>();
        int stdinParent = -1, stdoutParent = -1, stderrParent = -1;
        void* actions = NativeMemory.AllocZeroed(Interop.SpawnObjectSize);
        void* attributes = NativeMemory.AllocZeroed(Interop.SpawnObjectSize);
        void* sigset = NativeMemory.AllocZeroed(Interop.SigSetSize);
        bool actionsMade = false, attributesMade = false, started = false;
        var strings = new List<IntPtr>();
        try
        {
            Check(Interop.SpawnFileActionsInit(actions), "posix_spawn_file_actions_init");
            actionsMade = true;
            Check(Interop.SpawnAttrInit(attributes), "posix_spawnattr_init");
            attributesMade = true;

            stdinParent = SetUpStdio(actions, 0, options.StandardInput, toClose, parentEnds, handles);
            stdoutParent = SetUpStdio(actions, 1, options.StandardOutput, toClose, parentEnds, handles);
            stderrParent = SetUpStdio(actions, 2, options.StandardError, toClose, parentEnds, handles);
            SetUpOtherFds(actions, options.PassFds);

            if (options.WorkingDirectory is { } directory)
            {
                byte* dir = Utf8(directory, strings);
                Check(Interop.SpawnFileActionsAddChdir(actions, dir), "posix_spawn_file_actions_addchdir_np");
            }

            short flags = Interop.POSIX_SPAWN_SETSIGMASK | Interop.POSIX_SPAWN_SETSIGDEF;
            if (options.StartNewSession)
            {
                flags |= Interop.POSIX_SPAWN_SETSID;
            }

            if (options.ProcessGroup is { } group)
            {
                flags |= Interop.POSIX_SPAWN_SETPGROUP;
                Check(Interop.SpawnAttrSetPGroup(attributes, group), "posix_spawnattr_setpgroup");
            }

            Check(Interop.SpawnAttrSetFlags(attributes, flags), "posix_spawnattr_setflags");
            _ = Interop.SigEmptySet(sigset);
            Check(Interop.SpawnAttrSetSigMask(attributes, sigset), "posix_spawnattr_setsigmask");
            _ = Interop.SigAddSet(sigset, Interop.SIGPIPE);
            _ = Interop.SigAddSet(sigset, Interop.SIGXFSZ);
            Check(Interop.SpawnAttrSetSigDefault(attributes, sigset), "posix_spawnattr_setsigdefault");

            byte** argv = (byte**)NativeMemory.AllocZeroed((nuint)(arguments.Count + 2), (nuint)sizeof(byte*));
            strings.Add((IntPtr)argv);
            argv[0] = Utf8(program, strings);
            for (int i = 0; i < arguments.Count; i++)
            {
                argv[i + 1] = Utf8(arguments[i], strings);
            }

            byte** envp = (byte**)NativeMemory.AllocZeroed((nuint)(environment.Length + 1), (nuint)sizeof(byte*));
            strings.Add((IntPtr)envp);
            for (int i = 0; i < environment.Length; i++)
            {
                envp[i] = Utf8(environment[i], strings);
            }

            int pid;
            int error = Interop.PosixSpawn(&pid, Utf8(path, strings), actions, attributes, argv, envp);
            if (error != 0)
            {
                // glibc has reaped the child that failed to exec.
                throw SpawnFailure(error, program, path, options.WorkingDirectory);
            }

            int pidfd = usePidFd ? OpenPidFd(pid, program) : -1;

            started = true;
            return new SpawnedChild(pid, pidfd, stdinParent, stdoutParent, stderrParent);
        }
        finally
        {
            foreach (int fd in toClose)
            {
                _ = Interop.Close(fd);
            }

            foreach (var handle in handles)
            {
                handle.DangerousRelease();
            }

            if (!started)
            {
                foreach (int fd in parentEnds)
                {
                    _ = Interop.Close(fd);
                }
            }

            foreach (var p in strings)
            {
                NativeMemory.Free((void*)p);
            }

            if (actionsMade)
            {
                _ = Interop.SpawnFileActionsDestroy(actions);
            }

            if (attributesMade)
            {
                _ = Interop.SpawnAttrDestroy(attributes);
            }

            NativeMemory.Free(actions);
            NativeMemory.Free(attributes);
            NativeMemory.Free(sigset);
        }
    }

    /// <summary>
    /// Whether pidfd_open was refused as unavailable: ENOSYS (Linux before 5.3), EPERM (a seccomp filter, as some container
    /// runtimes have), or no such function in libc (glibc before 2.36). Then every child is watched by pid (SIGCHLD).
    /// </summary>
    internal static bool PidFdUnavailable => Volatile.Read(ref s_pidFdUnavailable);

    private static bool s_pidFdUnavailable;

    /// <summary>The pidfd of the child just started, or -1 if this system has none; throws (with the child killed and reaped) on any other failure.</summary>
    private static int OpenPidFd(int pid, string program)
    {
        if (PidFdUnavailable)
        {
            return -1;
        }

        int pidfd;
        try
        {
            pidfd = Interop.PidFdOpen(pid, 0);
        }
        catch (EntryPointNotFoundException)
        {
            Volatile.Write(ref s_pidFdUnavailable, true);
            return -1;
        }

        if (pidfd >= 0)
        {
            return pidfd;
        }

        int errno = Interop.GetLastErrno();
        if (errno is Interop.Errno.ENOSYS or Interop.Errno.EPERM)
        {
            Volatile.Write(ref s_pidFdUnavailable, true);
            return -1;
        }

        if (errno != Interop.Errno.ESRCH)
        {
            // ESRCH: someone reaped it already (the runtime's waitpid(-1) when SIGCHLD was ignored at start-up),
            // and the pid may be another process's: never signal it then.
            KillAndReap(pid);
        }

        throw Interop.GetExceptionForErrno(errno, $"pidfd_open(pid {pid}) for '{program}'");
    }

    /// <summary>Sends SIGKILL to a child this process started and reaps it (blocking: after SIGKILL that is prompt).</summary>
    internal static void KillAndReap(int pid)
    {
        _ = Interop.Kill(pid, Interop.SIGKILL);
        Interop.SigInfo info;
        while (Interop.WaitId(Interop.P_PID, pid, &info, Interop.WEXITED) < 0 && Interop.GetLastErrno() == Interop.Errno.EINTR)
        {
        }
    }

    /// <summary>
    /// Sets up the child's fd <paramref name="target"/> as <paramref name="stdio"/> says; returns the parent's end of a
    /// pipe, or -1. The child's ends (and copies of given fds) go to <paramref name="toClose"/>: they are closed in the
    /// parent once the child has its own; the parent's end goes to <paramref name="parentEnds"/>, closed if the start fails.
    /// </summary>
    private static int SetUpStdio(void* actions, int target, SubprocessStdio stdio, List<int> toClose, List<int> parentEnds, List<SafeHandle> handles)
    {
        switch (stdio.Kind)
        {
            case SubprocessStdioKind.Inherit:
                return -1;
            case SubprocessStdioKind.DevNull:
                fixed (byte* devNull = "/dev/null\0"u8)
                {
                    Check(Interop.SpawnFileActionsAddOpen(actions, target, devNull, target == 0 ? Interop.O_RDONLY : Interop.O_WRONLY, 0),
                        "posix_spawn_file_actions_addopen(/dev/null)");
                }

                return -1;
            case SubprocessStdioKind.StandardOutput:
                Check(Interop.SpawnFileActionsAddDup2(actions, 1, target), "posix_spawn_file_actions_adddup2(1, 2)");
                return -1;
            case SubprocessStdioKind.Pipe:
            {
                int* fds = stackalloc int[2];
                if (Interop.Pipe2(fds, Interop.O_CLOEXEC) < 0)
                {
                    Interop.ThrowForLastErrno("pipe2(O_CLOEXEC)");
                }

                int parent = target == 0 ? fds[1] : fds[0];
                int child = target == 0 ? fds[0] : fds[1];
                toClose.Add(child);
                parentEnds.Add(parent);
                AddDup2(actions, AboveStdio(child, toClose), target);
                return parent;
            }

            default:
            {
                int fd = FdOf(stdio, target, handles);
                // A copy at 3 or above, so that dup2 onto 0..2 never overwrites a source another target still needs.
                int copy = Interop.Fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (copy < 0)
                {
                    int errno = Interop.GetLastErrno();
                    throw errno == Interop.Errno.EBADF
                        ? new ArgumentException($"The fd {fd} given for the child's fd {target} is not open.")
                        : Interop.GetExceptionForErrno(errno, $"fcntl(fd {fd}, F_DUPFD_CLOEXEC)");
                }

                toClose.Add(copy);
                AddDup2(actions, copy, target);
                return -1;
            }
        }
    }

    private const int F_DUPFD_CLOEXEC = 1030;

    /// <summary>A pipe end the kernel numbered 0..2 (this process had closed its own) is copied above them first.</summary>
    private static int AboveStdio(int fd, List<int> toClose)
    {
        if (fd > 2)
        {
            return fd;
        }

        int copy = Interop.Fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
        {
            Interop.ThrowForLastErrno($"fcntl(fd {fd}, F_DUPFD_CLOEXEC)");
        }

        toClose.Add(copy);
        return copy;
    }

    private static void AddDup2(void* actions, int fd, int target) =>
        Check(Interop.SpawnFileActionsAddDup2(actions, fd, target), $"posix_spawn_file_actions_adddup2({fd}, {target})");

    private static int FdOf(SubprocessStdio stdio, int target, List<SafeHandle> handles)
    {
        if (stdio.Handle is null && stdio.Stream is null)
        {
            return stdio.FdNumber;
        }

        SafeHandle handle = stdio.Handle ?? stdio.Stream switch
        {
            FileStream file => file.SafeFileHandle,
            PipeStream pipe => pipe.SafePipeHandle,
            NetworkStream network => network.Socket.SafeHandle,
            _ => throw new ArgumentException(
                $"A {stdio.Stream!.GetType().Name} given for the child's fd {target} does not expose a file descriptor: give a FileStream, " +
                "a PipeStream or a NetworkStream, or the fd's SafeHandle."),
        };
        ObjectDisposedException.ThrowIf(handle.IsClosed, handle);
        if (handle.IsInvalid)
        {
            throw new ArgumentException($"The handle given for the child's fd {target} is invalid.");
        }

        bool added = false;
        handle.DangerousAddRef(ref added);
        handles.Add(handle);
        return checked((int)handle.DangerousGetHandle());
    }

    /// <summary>Keeps the pass fds under their numbers (clearing FD_CLOEXEC) and closes every other fd from 3 up.</summary>
    private static void SetUpOtherFds(void* actions, IReadOnlyList<int>? passFds)
    {
        int closeFrom = 3;
        if (passFds is { Count: > 0 })
        {
            var keep = new HashSet<int>(passFds);
            foreach (int fd in keep)
            {
                AddDup2(actions, fd, fd);
                closeFrom = Math.Max(closeFrom, fd + 1);
            }

            // The fds open now between 3 and the highest pass fd, but the pass fds: closed one by one. One opened
            // after this look is O_CLOEXEC, as .NET and this library open every fd.
            foreach (string entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
            {
                if (int.TryParse(Path.GetFileName(entry), out int fd) && fd >= 3 && fd < closeFrom && !keep.Contains(fd))
                {
                    Check(Interop.SpawnFileActionsAddClose(actions, fd), $"posix_spawn_file_actions_addclose({fd})");
                }
            }
        }

        if (s_hasCloseFrom)
        {
            try
            {
                Check(Interop.SpawnFileActionsAddCloseFrom(actions, closeFrom), $"posix_spawn_file_actions_addclosefrom_np({closeFrom})");
            }
            catch (EntryPointNotFoundException)
            {
                s_hasCloseFrom = false; // glibc before 2.34: O_CLOEXEC alone keeps this process's fds out of the child
            }
        }
    }

    /// <summary>The child's environment: <see cref="SubprocessOptions.Environment"/> or this process's, then the updates.</summary>
    private static string[] BuildEnvironment(SubprocessOptions options)
    {
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        if (options.Environment is { } environment)
        {
            foreach (var (name, value) in environment)
            {
                variables[name] = value;
            }
        }
        else
        {
            // .NET keeps its own copy of the environment on Unix (Environment.SetEnvironmentVariable does not change
            // libc's environ), so the child gets that copy, as System.Diagnostics.Process gives it.
            foreach (DictionaryEntry entry in System.Environment.GetEnvironmentVariables())
            {
                variables[(string)entry.Key] = (string?)entry.Value ?? "";
            }
        }

        if (options.EnvironmentUpdates is { } updates)
        {
            foreach (var (name, value) in updates)
            {
                if (value is null)
                {
                    variables.Remove(name);
                }
                else
                {
                    variables[name] = value;
                }
            }
        }

        var result = new string[variables.Count];
        int i = 0;
        foreach (var (name, value) in variables)
        {
            result[i++] = name + "=" + value;
        }

        return result;
    }

    /// <summary>
    /// The file to exec: <paramref name="file"/> itself if it has a '/', else the first executable of that name in the
    /// child's PATH (execvp's search, made here so that it uses the child's PATH and reports ENOENT before starting).
    /// </summary>
    private static string ResolveProgram(string program, string file, string[] environment, string? cwd)
    {
        if (file.Contains('/', StringComparison.Ordinal))
        {
            return file;
        }

        string searchPath = DefaultPath;
        foreach (string variable in environment)
        {
            if (variable.StartsWith("PATH=", StringComparison.Ordinal))
            {
                searchPath = variable[5..];
                break;
            }
        }

        string? notExecutable = null;
        foreach (string dir in searchPath.Split(':'))
        {
            string candidate = dir.Length == 0 ? file : Path.Combine(dir, file);
            string probe = cwd is not null && !Path.IsPathRooted(candidate) ? Path.Combine(cwd, candidate) : candidate;
            if (Directory.Exists(probe) || !File.Exists(probe))
            {
                continue;
            }

            if (Interop.Access(probe, Interop.X_OK) == 0)
            {
                return candidate;
            }

            notExecutable ??= candidate;
        }

        // A file found but not executable: exec it anyway, so posix_spawn reports EACCES as execvp would.
        return notExecutable ?? throw new FileNotFoundException(
            $"Cannot start '{program}': no executable '{file}' was found in PATH ({searchPath}).", file);
    }

    private static Exception SpawnFailure(int errno, string program, string path, string? cwd)
    {
        string where = cwd is null ? "" : $" in '{cwd}'";
        string message = $"Cannot start '{program}' ({path}){where}: {Marshal.GetPInvokeErrorMessage(errno)}" +
            $" ({Interop.Errno.GetName(errno) ?? "errno"} {errno})";
        return errno == Interop.Errno.ENOENT
            ? new FileNotFoundException(message, path) { HResult = errno }
            : new Win32Exception(errno, message);
    }

    private static void Check(int error, string operation)
    {
        if (error != 0)
        {
            throw Interop.GetExceptionForErrno(error, operation);
        }
    }

    private static byte* Utf8(string value, List<IntPtr> strings)
    {
        int length = Encoding.UTF8.GetByteCount(value);
        byte* bytes = (byte*)NativeMemory.Alloc((nuint)length + 1);
        strings.Add((IntPtr)bytes);
        fixed (char* chars = value)
        {
            Encoding.UTF8.GetBytes(chars, value.Length, bytes, length);
        }

        bytes[length] = 0;
        return bytes;
    }
}
