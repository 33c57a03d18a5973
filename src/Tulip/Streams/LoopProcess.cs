using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip.Streams;

/// <summary>
/// A child process with stream pipes: asyncio's <c>asyncio.subprocess.Process</c>, made by <see cref="CreateExecAsync"/>
/// (<c>create_subprocess_exec</c>) and <see cref="CreateShellAsync"/> (<c>create_subprocess_shell</c>) on the running loop.
/// </summary>
/// <remarks>
/// <para>Its stdin is a <see cref="LoopStreamWriter"/> and its stdout and stderr are <see cref="LoopStreamReader"/>s, each
/// null when that stream is not a pipe (see <see cref="SubprocessOptions"/>). The readers pause the pipe when their
/// buffer passes the limit, so a chatty child waits for its reader. Built on
/// <see cref="IEventLoop.SubprocessExecAsync{TProtocol}"/>, so it runs on any loop that has subprocess transports.</para>
/// <para>A child that writes more than a pipe holds blocks until it is read: read its output while waiting, or use
/// <see cref="CommunicateAsync"/>, which does both. <see cref="DisposeAsync"/> kills a child that still runs and waits
/// until it is reaped. For the loop thread.</para>
/// </remarks>
public sealed class LoopProcess : IAsyncDisposable
{
    private readonly ISubprocessTransport _transport;
    private readonly StreamProtocol _protocol;

    private LoopProcess(ISubprocessTransport transport, StreamProtocol protocol)
    {
        _transport = transport;
        _protocol = protocol;
        StandardInput = protocol.Stdin;
        StandardOutput = protocol.Stdout;
        StandardError = protocol.Stderr;
    }

    /// <summary>The child's process id.</summary>
    public int Pid => _transport.Pid;

    /// <summary>The exit code once the child has exited, or null while it runs; negative: killed by that signal.</summary>
    public int? ReturnCode => _transport.ReturnCode;

    /// <summary>The child's stdin, or null if it is not a pipe. Close it (or <see cref="LoopStreamWriter.WriteEof"/>) to send EOF.</summary>
    public LoopStreamWriter? StandardInput { get; }

    /// <summary>The child's stdout, or null if it is not a pipe.</summary>
    public LoopStreamReader? StandardOutput { get; }

    /// <summary>The child's stderr, or null if it is not a pipe (or merged into stdout).</summary>
    public LoopStreamReader? StandardError { get; }

    /// <summary>The transport beneath.</summary>
    public ISubprocessTransport Transport => _transport;

    /// <summary>Starts <paramref name="program"/> with <paramref name="arguments"/> (asyncio's <c>create_subprocess_exec</c>).</summary>
    /// <param name="program">The program, looked up in PATH when it has no '/'.</param>
    /// <param name="arguments">Its arguments.</param>
    /// <param name="options">The options; by default all three streams are pipes.</param>
    /// <param name="limit">The readers' <see cref="LoopStreamReader.Limit"/>.</param>
    /// <param name="cancellationToken">Cancels the start (the child is then killed and reaped).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is zero or negative.</exception>
    /// <exception cref="InvalidOperationException">No loop is running on this thread.</exception>
    /// <exception cref="FileNotFoundException">The program was not found; the other start failures as for <see cref="IEventLoop.SubprocessExecAsync{TProtocol}"/>.</exception>
    public static LoopTask<LoopProcess> CreateExecAsync(string program, IReadOnlyList<string> arguments, SubprocessOptions? options = null,
        int limit = LoopStreamReader.DefaultLimit, CancellationToken cancellationToken = default)
    {
        LoopStreamReader.CheckLimit(limit);
        var loop = EventLoop.GetRunningLoop();
        return StartAsync(loop.SubprocessExecAsync(() => new StreamProtocol(limit), program, arguments, options, cancellationToken));
    }

    /// <summary>Runs <paramref name="command"/> through <c>/bin/sh -c</c> (asyncio's <c>create_subprocess_shell</c>); see <see cref="CreateExecAsync"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is zero or negative.</exception>
    /// <exception cref="InvalidOperationException">No loop is running on this thread.</exception>
    public static LoopTask<LoopProcess> CreateShellAsync(string command, SubprocessOptions? options = null,
        int limit = LoopStreamReader.DefaultLimit, CancellationToken cancellationToken = default)
    {
        LoopStreamReader.CheckLimit(limit);
        var loop = EventLoop.GetRunningLoop();
        return StartAsync(loop.SubprocessShellAsync(() => new StreamProtocol(limit), command, options, cancellationToken));
    }

    private static async LoopTask<LoopProcess> StartAsync(LoopTask<(ISubprocessTransport Transport, StreamProtocol Protocol)> start)
    {
        var (transport, protocol) = await start;
        return new LoopProcess(transport, protocol);
    }

    /// <summary>Waits until the child has exited and returns its <see cref="ReturnCode"/> (asyncio's <c>wait</c>).</summary>
    /// <remarks>Cancelling the wait leaves the child alone; it can be waited for again. Any number of waits may be pending.
    /// It does not read the child's output: a child blocked on a full pipe never exits (see <see cref="CommunicateAsync"/>).</remarks>
    public async LoopTask<int> WaitAsync(CancellationToken cancellationToken = default)
    {
        // Shielded: a cancelled wait must not cancel the exit future that every other wait shares.
        return await Tasks.Shield(_protocol.Exited, cancellationToken);
    }

    /// <summary>
    /// Writes <paramref name="input"/> to stdin and closes it, reads stdout and stderr to their end, and waits for the
    /// child to exit (asyncio's <c>communicate</c>): all at once, so no size of input or output deadlocks.
    /// </summary>
    /// <returns>What the child wrote to stdout and stderr; null for a stream that is not a pipe.</returns>
    /// <remarks>A child that exits without reading all its input is not an error (the broken pipe is ignored, as asyncio does).</remarks>
    /// <exception cref="InvalidOperationException"><paramref name="input"/> is given but stdin is not a pipe.</exception>
    public async LoopTask<(byte[]? Output, byte[]? Error)> CommunicateAsync(ReadOnlyMemory<byte>? input = null, CancellationToken cancellationToken = default)
    {
        if (input is { Length: > 0 } && StandardInput is null)
        {
            throw new InvalidOperationException("CommunicateAsync was given input, but the child's stdin is not a pipe (SubprocessStdio.Pipe).");
        }

        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var loop = EventLoop.GetRunningLoop();
        var feeding = StandardInput is { } stdin ? loop.CreateTask(() => FeedAsync(stdin, input)) : null;
        var output = StandardOutput is { } stdout ? loop.CreateTask(() => stdout.ReadAsync()) : null;
        var error = StandardError is { } stderr ? loop.CreateTask(() => stderr.ReadAsync()) : null;
        try
        {
            if (feeding is not null)
            {
                await feeding;
            }

            byte[]? outBytes = output is null ? null : await output;
            byte[]? errBytes = error is null ? null : await error;
            await WaitAsync(cancellationToken);
            return (outBytes, errBytes);
        }
        finally
        {
            // Cancelled midway: stop the helpers; the child is left alone, as asyncio leaves it.
            feeding?.Cancel();
            output?.Cancel();
            error?.Cancel();
        }
    }

    private static async LoopTask FeedAsync(LoopStreamWriter stdin, ReadOnlyMemory<byte>? input)
    {
        try
        {
            if (input is { Length: > 0 } data)
            {
                stdin.Write(data.Span);
                await stdin.DrainAsync();
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException)
        {
            // The child exited without reading everything (EPIPE): asyncio ignores BrokenPipeError and ConnectionResetError here.
        }

        stdin.Close();
    }

    /// <summary>Sends <paramref name="signal"/> to the child; nothing once it has been reaped.</summary>
    public void SendSignal(int signal) => _transport.SendSignal(signal);

    /// <summary>Asks the child to stop (SIGTERM); nothing once it has been reaped.</summary>
    public void Terminate() => _transport.Terminate();

    /// <summary>Stops the child (SIGKILL); nothing once it has been reaped.</summary>
    public void Kill() => _transport.Kill();

    /// <summary>Closes the pipes, kills the child if it still runs, and waits until it has been reaped and the transport is done.</summary>
    public ValueTask DisposeAsync()
    {
        _transport.Close();
        var lost = _protocol.Lost;
        return lost.Done ? default : new ValueTask(lost.AsTask());
    }

    /// <inheritdoc/>
    public override string ToString() => $"<LoopProcess {Pid} {(ReturnCode is { } code ? $"returncode={code}" : "running")}>";

    /// <summary>asyncio's <c>SubprocessStreamProtocol</c>: the pipes feed the readers; stdin's flow control drives the writer's drain.</summary>
    private sealed class StreamProtocol(int limit) : SubprocessProtocol
    {
        private ISubprocessTransport? _transport;
        // The writer's flow-control half (StreamReaderProtocol is asyncio's FlowControlMixin here), fed stdin's events.
        private StreamReaderProtocol? _stdinFlow;

        public LoopStreamWriter? Stdin { get; private set; }

        public LoopStreamReader? Stdout { get; private set; }

        public LoopStreamReader? Stderr { get; private set; }

        public Future<int> Exited { get; private set; } = null!;

        public Future<VoidResult> Lost { get; private set; } = null!;

        public override void ConnectionMade(IBaseTransport transport)
        {
            _transport = (ISubprocessTransport)transport;
            var loop = EventLoop.GetRunningLoop();
            Exited = loop.CreateFuture<int>();
            Lost = loop.CreateFuture<VoidResult>();
            if (_transport.GetPipeTransport(1) is IReadTransport stdout)
            {
                Stdout = new LoopStreamReader(limit);
                Stdout.SetTransport(stdout);
            }

            if (_transport.GetPipeTransport(2) is IReadTransport stderr)
            {
                Stderr = new LoopStreamReader(limit);
                Stderr.SetTransport(stderr);
            }

            if (_transport.GetPipeTransport(0) is IWriteTransport stdin)
            {
                var adapter = new WriteOnlyTransport(stdin);
                _stdinFlow = new StreamReaderProtocol(new LoopStreamReader(limit));
                _stdinFlow.ConnectionMade(adapter);
                Stdin = new LoopStreamWriter(adapter, _stdinFlow, reader: null);
            }
        }

        public override void PipeDataReceived(int fd, ReadOnlySpan<byte> data) => (fd == 1 ? Stdout : Stderr)?.FeedData(data);

        public override void PipeConnectionLost(int fd, Exception? exception)
        {
            if (fd == 0)
            {
                _stdinFlow?.ConnectionLost(exception);
                return;
            }

            var reader = fd == 1 ? Stdout : Stderr;
            if (reader is null)
            {
                return;
            }

            if (exception is null)
            {
                reader.FeedEof();
            }
            else
            {
                reader.SetException(exception);
            }
        }

        public override void PauseWriting() => _stdinFlow?.PauseWriting();

        public override void ResumeWriting() => _stdinFlow?.ResumeWriting();

        public override void ProcessExited() => Exited.TrySetResult(_transport!.ReturnCode ?? 255);

        public override void ConnectionLost(Exception? exception) => Lost.TrySetResult(default);
    }

    /// <summary>The stdin pipe as the <see cref="ITransport"/> a <see cref="LoopStreamWriter"/> writes to: its read side reads nothing.</summary>
    private sealed class WriteOnlyTransport(IWriteTransport pipe) : ITransport
    {
        public bool IsReading => false;

        public bool IsClosing => pipe.IsClosing;

        public bool CanWriteEof => pipe.CanWriteEof;

        public object? GetExtraInfo(string name, object? defaultValue = null) => pipe.GetExtraInfo(name, defaultValue);

        public void Close() => pipe.Close();

        public void SetProtocol(IBaseProtocol protocol) => pipe.SetProtocol(protocol);

        public IBaseProtocol GetProtocol() => pipe.GetProtocol();

        public void PauseReading()
        {
        }

        public void ResumeReading()
        {
        }

        public void Write(ReadOnlySpan<byte> data) => pipe.Write(data);

        public void WriteLines(IEnumerable<ReadOnlyMemory<byte>> data) => pipe.WriteLines(data);

        public void WriteEof() => pipe.WriteEof();

        public void Abort() => pipe.Abort();

        public int GetWriteBufferSize() => pipe.GetWriteBufferSize();

        public (int Low, int High) GetWriteBufferLimits() => pipe.GetWriteBufferLimits();

        public void SetWriteBufferLimits(int? high = null, int? low = null) => pipe.SetWriteBufferLimits(high, low);
    }
}
