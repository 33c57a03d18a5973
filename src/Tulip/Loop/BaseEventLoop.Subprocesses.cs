using System;
using System.Collections.Generic;
using System.Threading;

namespace Tulip;

// Subprocesses (issue 13), resolved through the registry like the pipe methods: the loop checks what
// does not depend on the implementation, and the loop's ISubprocessTransportFactory does the rest. A
// loop with pipes falls back to the library's: posix_spawn + pidfd (src/Tulip/Subprocesses) where Tulip's
// Linux interop is available, else the portable one on System.Diagnostics.Process (Subprocesses/Portable);
// a loop without pipes has none until one is registered, and refuses with a hint.
public abstract partial class BaseEventLoop
{
    /// <summary>The shell of <see cref="SubprocessShellAsync{TProtocol}"/>, as asyncio's (and POSIX's) /bin/sh.</summary>
    private const string Shell = "/bin/sh";

    /// <inheritdoc/>
    public LoopTask<(ISubprocessTransport Transport, TProtocol Protocol)> SubprocessExecAsync<TProtocol>(Func<TProtocol> protocolFactory,
        string program, IReadOnlyList<string> arguments, SubprocessOptions? options = null, CancellationToken cancellationToken = default)
        where TProtocol : ISubprocessProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        CheckArgument(program, nameof(program));
        ArgumentNullException.ThrowIfNull(arguments);
        for (int i = 0; i < arguments.Count; i++)
        {
            CheckArgument(arguments[i], nameof(arguments), allowEmpty: true);
        }

        options ??= DefaultSubprocessOptions;
        CheckSubprocessOptions(options);
        return SubprocessTransports(nameof(SubprocessExecAsync)).SpawnAsync(this, protocolFactory, program, arguments, options, cancellationToken);
    }

    /// <inheritdoc/>
    public LoopTask<(ISubprocessTransport Transport, TProtocol Protocol)> SubprocessShellAsync<TProtocol>(Func<TProtocol> protocolFactory,
        string command, SubprocessOptions? options = null, CancellationToken cancellationToken = default)
        where TProtocol : ISubprocessProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        CheckArgument(command, nameof(command));
        options ??= DefaultSubprocessOptions;
        CheckSubprocessOptions(options);
        return SubprocessTransports(nameof(SubprocessShellAsync)).SpawnAsync(this, protocolFactory, Shell, ["-c", command], options, cancellationToken);
    }

    private static readonly SubprocessOptions DefaultSubprocessOptions = new();

    private ISubprocessTransportFactory SubprocessTransports(string member) =>
        Transports.Resolve<ISubprocessTransportFactory>(static loop =>
            // The library's spawn and pidfd watch serve any loop on Linux that has pipes of its own (the selector's
            // readiness pipes, a registered implementation such as the proactor's); a loop with none (a virtual-clock
            // loop) gets nothing, so the call is refused with the hint.
            // Without Linux interop (off Linux, or forbidden), the portable one on System.Diagnostics.Process.
            !(loop is IReadinessEventLoop || loop.Transports.TryGet<IPipeTransportFactory>(out _)) ? null
            : LinuxInterop.IsAvailable ? PidFdSubprocessTransportFactory.Instance
            : ProcessSubprocessTransportFactory.Instance)
        ?? throw Unsupported(member);

    /// <summary>A string that goes to exec: not null, no NUL (C strings end there), not empty unless allowed.</summary>
    private static void CheckArgument(string? value, string name, bool allowEmpty = false)
    {
        ArgumentNullException.ThrowIfNull(value, name);
        if (!allowEmpty && value.Length == 0)
        {
            throw new ArgumentException("The value is empty.", name);
        }

        if (value.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"The value holds a NUL character, which cannot pass to exec: '{value.Replace("\0", "\\0", StringComparison.Ordinal)}'.", name);
        }
    }

    private static void CheckSubprocessOptions(SubprocessOptions options)
    {
        ArgumentNullException.ThrowIfNull(options.StandardInput, "options.StandardInput");
        ArgumentNullException.ThrowIfNull(options.StandardOutput, "options.StandardOutput");
        ArgumentNullException.ThrowIfNull(options.StandardError, "options.StandardError");
        if (options.StandardInput.Kind == SubprocessStdioKind.StandardOutput || options.StandardOutput.Kind == SubprocessStdioKind.StandardOutput)
        {
            throw new ArgumentException(
                "SubprocessStdio.StandardOutput merges stderr into stdout: it is only for options.StandardError.", nameof(options));
        }

        if (options.WorkingDirectory is { } cwd)
        {
            CheckArgument(cwd, "options.WorkingDirectory");
        }

        if (options.Executable is { } executable)
        {
            CheckArgument(executable, "options.Executable");
        }

        if (options.Environment is { } environment)
        {
            foreach (var (name, value) in environment)
            {
                CheckVariable(name);
                CheckArgument(value, $"options.Environment[{name}]", allowEmpty: true);
            }
        }

        if (options.EnvironmentUpdates is { } updates)
        {
            foreach (var (name, value) in updates)
            {
                CheckVariable(name);
                if (value is not null)
                {
                    CheckArgument(value, $"options.EnvironmentUpdates[{name}]", allowEmpty: true);
                }
            }
        }

        if (options.PassFds is { } passFds)
        {
            foreach (int fd in passFds)
            {
                if (fd < 3)
                {
                    throw new ArgumentOutOfRangeException(nameof(options), fd,
                        "options.PassFds holds an fd below 3: fds 0, 1 and 2 are set by StandardInput, StandardOutput and StandardError.");
                }
            }
        }

        if (options.ProcessGroup is { } group)
        {
            if (group < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(options), group, "options.ProcessGroup is negative: give 0 (a new group) or a group id.");
            }

            if (options.StartNewSession)
            {
                throw new ArgumentException(
                    "options.StartNewSession and options.ProcessGroup together: a new session already makes the child lead a new process group.", nameof(options));
            }
        }
    }

    private static void CheckVariable(string name)
    {
        CheckArgument(name, "options.Environment");
        if (name.Contains('=', StringComparison.Ordinal))
        {
            throw new ArgumentException($"The environment variable name '{name}' holds '=', which ends a name.", nameof(name));
        }
    }
}
