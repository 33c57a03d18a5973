using System;
using System.Threading;

namespace Tulip.Streams;

/// <summary>
/// asyncio's stream functions (<c>open_connection</c>, <c>start_server</c> and their UNIX-socket
/// forms), on the running loop: each connection gets a <see cref="LoopStreamReader"/>, a
/// <see cref="StreamReaderProtocol"/> and a <see cref="LoopStreamWriter"/>.
/// </summary>
/// <remarks>
/// They work on any loop whose <see cref="IEventLoop.CreateConnectionAsync{TProtocol}"/> /
/// <see cref="IEventLoop.CreateServerAsync"/> (and UNIX forms) work: the loop's own errors (an
/// unsupported option, a refused connection) are what they throw. <c>limit</c> is the reader's
/// <see cref="LoopStreamReader.Limit"/>. Bad arguments throw before any I/O.
/// </remarks>
public static class StreamConnections
{
    /// <summary>Connects to <paramref name="host"/>:<paramref name="port"/> (asyncio's <c>open_connection</c>).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="host"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is zero or negative.</exception>
    /// <exception cref="InvalidOperationException">No loop is running on this thread.</exception>
    public static LoopTask<(LoopStreamReader Reader, LoopStreamWriter Writer)> OpenConnectionAsync(string host, int port,
        ConnectionOptions? options = null, int limit = LoopStreamReader.DefaultLimit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        LoopStreamReader.CheckLimit(limit);
        var loop = EventLoop.GetRunningLoop();
        return OpenCoreAsync(loop, unixPath: null, host, port, options, limit, cancellationToken);
    }

    /// <summary>Connects to the UNIX socket at <paramref name="path"/> (asyncio's <c>open_unix_connection</c>).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="path"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is zero or negative.</exception>
    /// <exception cref="InvalidOperationException">No loop is running on this thread.</exception>
    public static LoopTask<(LoopStreamReader Reader, LoopStreamWriter Writer)> OpenUnixConnectionAsync(string path,
        ConnectionOptions? options = null, int limit = LoopStreamReader.DefaultLimit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        LoopStreamReader.CheckLimit(limit);
        var loop = EventLoop.GetRunningLoop();
        return OpenCoreAsync(loop, path, host: null, port: 0, options, limit, cancellationToken);
    }

    /// <summary>
    /// Serves <paramref name="host"/>:<paramref name="port"/> (null host: every interface), calling
    /// <paramref name="clientConnected"/> with each connection's reader and writer (asyncio's <c>start_server</c>).
    /// </summary>
    /// <remarks>
    /// An exception from <paramref name="clientConnected"/> goes to the loop's exception handler and
    /// closes that connection; the server goes on. See <see cref="StreamReaderProtocol"/>.
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="clientConnected"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is zero or negative.</exception>
    /// <exception cref="InvalidOperationException">No loop is running on this thread.</exception>
    public static LoopTask<Server> StartServerAsync(Func<LoopStreamReader, LoopStreamWriter, LoopTask> clientConnected, string? host, int port,
        ServerOptions? options = null, int limit = LoopStreamReader.DefaultLimit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(clientConnected);
        LoopStreamReader.CheckLimit(limit);
        var loop = EventLoop.GetRunningLoop();
        return loop.CreateServerAsync(
            () => new StreamReaderProtocol(new LoopStreamReader(limit), clientConnected),
            host is null ? null : [host], port, options, cancellationToken);
    }

    /// <summary>
    /// Serves the UNIX socket <paramref name="path"/>, calling <paramref name="clientConnected"/> with
    /// each connection's reader and writer (asyncio's <c>start_unix_server</c>).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="clientConnected"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is zero or negative.</exception>
    /// <exception cref="InvalidOperationException">No loop is running on this thread.</exception>
    public static LoopTask<Server> StartUnixServerAsync(Func<LoopStreamReader, LoopStreamWriter, LoopTask> clientConnected, string? path,
        ServerOptions? options = null, int limit = LoopStreamReader.DefaultLimit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(clientConnected);
        LoopStreamReader.CheckLimit(limit);
        var loop = EventLoop.GetRunningLoop();
        return loop.CreateUnixServerAsync(
            () => new StreamReaderProtocol(new LoopStreamReader(limit), clientConnected),
            path, options, cancellationToken);
    }

    private static async LoopTask<(LoopStreamReader Reader, LoopStreamWriter Writer)> OpenCoreAsync(IEventLoop loop, string? unixPath, string? host, int port,
        ConnectionOptions? options, int limit, CancellationToken cancellationToken)
    {
        var reader = new LoopStreamReader(limit);
        var protocol = new StreamReaderProtocol(reader);
        var (transport, _) = unixPath is null
            ? await loop.CreateConnectionAsync(() => protocol, host, port, options, cancellationToken)
            : await loop.CreateUnixConnectionAsync(() => protocol, unixPath, options, cancellationToken);
        return (reader, new LoopStreamWriter(transport, protocol, reader));
    }
}
