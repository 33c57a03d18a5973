using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Diagnostics;
using System.IO;
using System.Threading;

namespace Tulip;

/// <summary>
/// A portable <see cref="ISubprocessTransportFactory"/> on <see cref="Process"/>, for every loop whose registry has pipes
/// (<see cref="IPipeTransportFactory"/>): the child's redirected streams are joined to the loop's own pipe transports, its
/// exit is <see cref="Process.Exited"/> posted to the loop. A loop falls back to it when Tulip's Linux interop is not
/// available (off Linux, or with the <c>Tulip.ForbidLinuxInterop</c> switch); elsewhere register it yourself:
/// <c>loop.Transports.Register&lt;ISubprocessTransportFactory&gt;(new ProcessSubprocessTransportFactory())</c>.
/// </summary>
/// <remarks>
/// <para>
/// The same contract as the posix_spawn implementation (the default on Linux), within what Process can do. Supported:
/// each standard stream as a pipe, inherited, or /dev/null; the working directory; the environment (replaced or
/// updated); the program looked up in the child's PATH (then passed to Process by its full path, which is also its
/// argv[0]). /dev/null is emulated, as Process cannot open a file for the child: stdin is a pipe closed at once (the
/// child reads end of file), stdout and stderr are pipes the loop reads and discards until the transport ends (a
/// grandchild that still writes after that gets a broken pipe, as it would not with /dev/null).
/// </para>
/// <para>
/// Refused with <see cref="NotSupportedException"/>, as Process has no way to do them: stderr merged into stdout, a
/// given fd, handle or stream for a standard stream, <see cref="SubprocessOptions.PassFds"/>, a new session or process
/// group, an <see cref="SubprocessOptions.Executable"/> other than the program, and any signal but SIGKILL (on Windows,
/// SIGTERM too). A child killed by signal N reports 128 + N on Unix, not asyncio's -N (<see cref="ProcessSubprocessTransport"/>).
/// Fds of this process that are not close-on-exec reach the child (Process does not close them; .NET opens its own
/// close-on-exec), and on Unix the child starts with SIGPIPE ignored, as .NET ignores it in this process (Process resets
/// the handlers it set, not ignored signals; bpo-31034's bug: a child writing to a closed pipe gets EPIPE instead of dying). A start failure throws what the posix_spawn implementation throws: <see cref="FileNotFoundException"/>
/// (no such program, or its interpreter missing), <see cref="DirectoryNotFoundException"/> (no such working directory),
/// <see cref="Win32Exception"/> for the rest (not executable: EACCES).
/// </para>
/// </remarks>
public sealed class ProcessSubprocessTransportFactory : ISubprocessTransportFactory
{
    /// <summary>The errno (and Windows error) for a missing file: ENOENT, ERROR_FILE_NOT_FOUND.</summary>
    private const int NoSuchFile = 2;

    /// <summary>The one a loop falls back to.</summary>
    internal static readonly ProcessSubprocessTransportFactory Instance = new();

    /// <inheritdoc/>
    public async LoopTask<(ISubprocessTransport Transport, TProtocol Protocol)> SpawnAsync<TProtocol>(IEventLoop loop, Func<TProtocol> protocolFactory,
        string program, IReadOnlyList<string> arguments, SubprocessOptions options, CancellationToken cancellationToken)
        where TProtocol : ISubprocessProtocol
    {
        ArgumentNullException.ThrowIfNull(loop);
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentNullException.ThrowIfNull(program);
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(options);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var startInfo = MakeStartInfo(program, arguments, options);
        var protocol = protocolFactory() ?? throw new InvalidOperationException("The protocol factory returned null.");
        ProcessSubprocessTransport? transport = null;
        var process = new Process { StartInfo = startInfo, EnableRaisingEvents = true };
        // Attached before the start, so an exit at once is not missed; it reaches the transport, made below on this
        // thread before the loop runs the posted callback.
        process.Exited += (_, _) => ProcessSubprocessTransport.OnExitedThreadSafe(loop, process, () => transport);
        try
        {
            process.Start();
        }
        catch (Win32Exception ex)
        {
            process.Dispose();
            throw StartFailure(ex, program, options);
        }

        // Taken from Process now: once read, Process leaves them to the reader to close (its Close() skips them).
        Stream? stdin = startInfo.RedirectStandardInput ? process.StandardInput.BaseStream : null;
        Stream? stdout = startInfo.RedirectStandardOutput ? process.StandardOutput.BaseStream : null;
        Stream? stderr = startInfo.RedirectStandardError ? process.StandardError.BaseStream : null;
        transport = new ProcessSubprocessTransport(loop, process, protocol, program);
        var drains = new Stream?[2];
        try
        {
            // /dev/null as stdin: end of file at once.
            if (options.StandardInput.Kind == SubprocessStdioKind.DevNull)
            {
                stdin!.Dispose();
                stdin = null;
            }

            drains[0] = options.StandardOutput.Kind == SubprocessStdioKind.DevNull ? stdout : null;
            drains[1] = options.StandardError.Kind == SubprocessStdioKind.DevNull ? stderr : null;
            if (drains[0] is not null)
            {
                stdout = null;
            }

            if (drains[1] is not null)
            {
                stderr = null;
            }

            var pipes = new IDisposable?[] { stdin, stdout, stderr };
            stdin = stdout = stderr = null; // the base disposes what it does not connect
            await transport.ConnectPipesAsync(pipes);
            for (int i = 0; i < drains.Length; i++)
            {
                if (drains[i] is { } drain)
                {
                    drains[i] = null;
                    transport.AddDrain((await loop.ConnectReadPipeAsync(static () => new Discard(), drain, cancellationToken)).Transport);
                }
            }

            var waiter = loop.CreateFuture<VoidResult>();
            transport.Start(waiter);
            await waiter;
        }
        catch
        {
            stdin?.Dispose();
            stdout?.Dispose();
            stderr?.Dispose();
            foreach (var drain in drains)
            {
                drain?.Dispose();
            }

            // Kills the child; its exit (the runtime reaps it) ends the transport, which disposes the Process and the drains.
            transport.Abandon();
            transport.Close();
            throw;
        }

        return (transport, protocol);
    }

    /// <summary>What Process is told: checks what it cannot do (nothing is started yet) and finds the program as exec would.</summary>
    private static ProcessStartInfo MakeStartInfo(string program, IReadOnlyList<string> arguments, SubprocessOptions options)
    {
        if (options.StandardError.Kind == SubprocessStdioKind.StandardOutput)
        {
            throw Refused("options.StandardError = SubprocessStdio.StandardOutput (stderr merged into stdout)",
                "Process gives each redirected stream a pipe of its own, and cannot join the child's fd 2 to its fd 1");
        }

        foreach (var (name, stdio) in (ReadOnlySpan<(string, SubprocessStdio)>)[
            ("StandardInput", options.StandardInput), ("StandardOutput", options.StandardOutput), ("StandardError", options.StandardError)])
        {
            if (stdio.Kind == SubprocessStdioKind.Fd)
            {
                throw Refused($"options.{name} = {stdio} (a given fd, handle or stream)",
                    "Process can only give the child a new pipe or the parent's own stream");
            }
        }

        if (options.PassFds is { Count: > 0 })
        {
            throw Refused("options.PassFds", "Process cannot choose the fds the child inherits");
        }

        if (options.StartNewSession)
        {
            throw Refused("options.StartNewSession", "Process cannot make the child call setsid()");
        }

        if (options.ProcessGroup is not null)
        {
            throw Refused("options.ProcessGroup", "Process cannot make the child call setpgid()");
        }

        if (options.Executable is { } executable && executable != program)
        {
            throw Refused("options.Executable other than the program",
                "Process passes the file it runs as argv[0], and cannot give the child another name");
        }

        var info = new ProcessStartInfo
        {
            UseShellExecute = false,
            RedirectStandardInput = options.StandardInput.Kind != SubprocessStdioKind.Inherit,
            RedirectStandardOutput = options.StandardOutput.Kind != SubprocessStdioKind.Inherit,
            RedirectStandardError = options.StandardError.Kind != SubprocessStdioKind.Inherit,
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        if (options.WorkingDirectory is { } cwd)
        {
            if (!Directory.Exists(cwd))
            {
                throw NoWorkingDirectory(cwd);
            }

            info.WorkingDirectory = cwd;
        }

        if (options.Environment is { } environment)
        {
            info.Environment.Clear();
            foreach (var (name, value) in environment)
            {
                info.Environment[name] = value;
            }
        }

        if (options.EnvironmentUpdates is { } updates)
        {
            foreach (var (name, value) in updates)
            {
                if (value is null)
                {
                    info.Environment.Remove(name);
                }
                else
                {
                    info.Environment[name] = value;
                }
            }
        }

        info.FileName = FindProgram(program, options.WorkingDirectory, info.Environment.TryGetValue("PATH", out string? path) ? path : null);
        return info;
    }

    /// <summary>
    /// The file exec would run for <paramref name="program"/> on Unix: a path with a '/' from the child's working
    /// directory; a bare name in the child's PATH (the first executable match, else the first match, which exec then
    /// refuses with EACCES). Process itself would look in the parent's PATH, and in this program's own directory and
    /// the current one first. On Windows, Process's own search (CreateProcess's rules) is kept.
    /// </summary>
    private static string FindProgram(string program, string? cwd, string? path)
    {
        if (OperatingSystem.IsWindows())
        {
            return program;
        }

        string from = cwd is null ? Directory.GetCurrentDirectory() : Path.GetFullPath(cwd);
        if (program.Contains('/', StringComparison.Ordinal))
        {
            string full = Path.GetFullPath(program, from);
            return File.Exists(full) ? full : throw NoSuchProgram(program);
        }

        const UnixFileMode Executable = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        string? found = null;
        // POSIX's default search path when PATH is unset (confstr(_CS_PATH) on Linux and macOS).
        foreach (string dir in (path ?? "/usr/bin:/bin").Split(':'))
        {
            string candidate = Path.GetFullPath(Path.Combine(dir.Length == 0 ? "." : dir, program), from);
            if (!File.Exists(candidate))
            {
                continue;
            }

            if ((File.GetUnixFileMode(candidate) & Executable) != 0)
            {
                return candidate;
            }

            found ??= candidate;
        }

        return found ?? throw NoSuchProgram(program);
    }

    /// <summary>Process's start error as the posix_spawn implementation reports the same errno.</summary>
    private static Exception StartFailure(Win32Exception ex, string program, SubprocessOptions options)
    {
        if (options.WorkingDirectory is { } cwd && !Directory.Exists(cwd))
        {
            return NoWorkingDirectory(cwd);
        }

        return ex.NativeErrorCode == NoSuchFile
            ? new FileNotFoundException($"Cannot run '{program}': {ex.Message}", program, ex)
            : ex;
    }

    private static FileNotFoundException NoSuchProgram(string program) =>
        new($"Cannot run '{program}': no such file (a program without a '/' is looked up in the child's PATH).", program);

    private static DirectoryNotFoundException NoWorkingDirectory(string cwd) =>
        new($"Cannot start the child in '{cwd}' (options.WorkingDirectory): no such directory.");

    private static NotSupportedException Refused(string option, string why) =>
        new($"{option} is not supported by {nameof(ProcessSubprocessTransportFactory)}: {why}. " +
            "The posix_spawn implementation (PidFdSubprocessTransportFactory, the default on Linux when Tulip's Linux interop is available) supports it.");

    /// <summary>Reads a /dev/null stream's pipe and drops what comes.</summary>
    private sealed class Discard : IProtocol
    {
        public void ConnectionMade(IBaseTransport transport)
        {
        }

        public void DataReceived(ReadOnlySpan<byte> data)
        {
        }

        public bool EofReceived() => false;

        public void ConnectionLost(Exception? exception)
        {
        }

        public void PauseWriting()
        {
        }

        public void ResumeWriting()
        {
        }
    }
}
