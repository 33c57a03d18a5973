using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;

namespace Tulip;

/// <summary>
/// Options for <see cref="IEventLoop.SubprocessExecAsync{TProtocol}"/> and <see cref="IEventLoop.SubprocessShellAsync{TProtocol}"/>:
/// asyncio's (and <c>subprocess.Popen</c>'s) keyword arguments.
/// </summary>
public sealed record SubprocessOptions
{
    /// <summary>The child's stdin (fd 0): <see cref="SubprocessStdio.Pipe"/>, <see cref="SubprocessStdio.DevNull"/>,
    /// <see cref="SubprocessStdio.Inherit"/> or a given fd. Defaults to a pipe, written through <c>GetPipeTransport(0)</c>.</summary>
    public SubprocessStdio StandardInput { get; init; } = SubprocessStdio.Pipe;

    /// <summary>The child's stdout (fd 1), as <see cref="StandardInput"/>. Defaults to a pipe, read by <see cref="ISubprocessProtocol.PipeDataReceived"/>(1, ...).</summary>
    public SubprocessStdio StandardOutput { get; init; } = SubprocessStdio.Pipe;

    /// <summary>The child's stderr (fd 2), as <see cref="StandardInput"/>, or <see cref="SubprocessStdio.StandardOutput"/>
    /// to merge it into stdout (asyncio's <c>STDOUT</c>). Defaults to a pipe.</summary>
    public SubprocessStdio StandardError { get; init; } = SubprocessStdio.Pipe;

    /// <summary>The child's working directory. Defaults to null: the parent's.</summary>
    /// <remarks>A relative program path (one with a '/') is found from this directory, as exec finds it after the chdir.</remarks>
    public string? WorkingDirectory { get; init; }

    /// <summary>The child's whole environment, replacing the parent's (asyncio's <c>env</c>). Defaults to null: the parent's.</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    /// <summary>Variables to set (or, with a null value, to remove) on top of <see cref="Environment"/>, or of the parent's
    /// environment when that is null. Defaults to null: none.</summary>
    public IReadOnlyDictionary<string, string?>? EnvironmentUpdates { get; init; }

    /// <summary>Fds of this process the child inherits under the same numbers (asyncio's <c>pass_fds</c>); each must be
    /// open and at least 3. Every other fd but 0, 1 and 2 is closed in the child. Defaults to null: none.</summary>
    public IReadOnlyList<int>? PassFds { get; init; }

    /// <summary>Runs the child in a new session (setsid(2), asyncio's <c>start_new_session</c>): it leads a new session
    /// and process group, with no controlling terminal. Defaults to false.</summary>
    public bool StartNewSession { get; init; }

    /// <summary>Puts the child in process group <c>ProcessGroup</c> (setpgid(2), asyncio's <c>process_group</c>): 0 makes a new
    /// group led by the child, whose id is then its pid. Defaults to null: the parent's group. Not with <see cref="StartNewSession"/>.</summary>
    public int? ProcessGroup { get; init; }

    /// <summary>The file to run instead of the program, which then only names the child in its argv[0] (asyncio's
    /// <c>executable</c>). Looked up in PATH when it has no '/'. Defaults to null: the program itself.</summary>
    public string? Executable { get; init; }
}

/// <summary>What one of a child's standard fds is connected to (asyncio's <c>PIPE</c>, <c>DEVNULL</c>, <c>STDOUT</c>, None, or a file).</summary>
public enum SubprocessStdioKind
{
    /// <summary>A new pipe, whose other end the transport reads or writes.</summary>
    Pipe,

    /// <summary>/dev/null.</summary>
    DevNull,

    /// <summary>The parent's fd of the same number.</summary>
    Inherit,

    /// <summary>The child's stdout (for stderr only).</summary>
    StandardOutput,

    /// <summary>A file descriptor the caller gives (a raw fd, a <see cref="SafeHandle"/> or a <see cref="System.IO.Stream"/> that wraps one).</summary>
    Fd,
}

/// <summary>
/// What one of a child's standard fds (0, 1 or 2) is connected to: see <see cref="SubprocessOptions.StandardInput"/>.
/// </summary>
/// <remarks>A given fd stays the caller's: the child gets a copy, and the caller's handle is neither closed nor changed.
/// It must be open when the child is started.</remarks>
public sealed class SubprocessStdio
{
    private SubprocessStdio(SubprocessStdioKind kind, int fd = -1, SafeHandle? handle = null, Stream? stream = null)
    {
        Kind = kind;
        FdNumber = fd;
        Handle = handle;
        Stream = stream;
    }

    /// <summary>A new pipe (asyncio's <c>PIPE</c>).</summary>
    public static SubprocessStdio Pipe { get; } = new(SubprocessStdioKind.Pipe);

    /// <summary>/dev/null (asyncio's <c>DEVNULL</c>).</summary>
    public static SubprocessStdio DevNull { get; } = new(SubprocessStdioKind.DevNull);

    /// <summary>The parent's own fd (asyncio's None).</summary>
    public static SubprocessStdio Inherit { get; } = new(SubprocessStdioKind.Inherit);

    /// <summary>For stderr: the same as the child's stdout (asyncio's <c>STDOUT</c>).</summary>
    public static SubprocessStdio StandardOutput { get; } = new(SubprocessStdioKind.StandardOutput);

    /// <summary>What this is connected to.</summary>
    public SubprocessStdioKind Kind { get; }

    /// <summary>The raw fd given to <see cref="FromFd"/>, or -1.</summary>
    internal int FdNumber { get; }

    /// <summary>The handle given to <see cref="FromHandle"/>, or null.</summary>
    internal SafeHandle? Handle { get; }

    /// <summary>The stream given to <see cref="FromStream"/>, or null.</summary>
    internal Stream? Stream { get; }

    /// <summary>A file descriptor of this process, which stays the caller's.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fd"/> is negative.</exception>
    public static SubprocessStdio FromFd(int fd)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fd);
        return new(SubprocessStdioKind.Fd, fd: fd);
    }

    /// <summary>The fd of <paramref name="handle"/> (a <c>SafeFileHandle</c>, a socket's or a pipe's handle), which stays the caller's.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="handle"/> is null.</exception>
    public static SubprocessStdio FromHandle(SafeHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        return new(SubprocessStdioKind.Fd, handle: handle);
    }

    /// <summary>The fd of <paramref name="stream"/> (a <see cref="FileStream"/>, a pipe stream or a
    /// <see cref="System.Net.Sockets.NetworkStream"/>), which stays the caller's. Buffered data of the stream is not flushed.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="stream"/> is null.</exception>
    public static SubprocessStdio FromStream(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return new(SubprocessStdioKind.Fd, stream: stream);
    }

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        SubprocessStdioKind.Fd when Handle is not null => $"Fd({Handle.GetType().Name})",
        SubprocessStdioKind.Fd when Stream is not null => $"Fd({Stream.GetType().Name})",
        SubprocessStdioKind.Fd => $"Fd({FdNumber})",
        _ => Kind.ToString(),
    };
}
