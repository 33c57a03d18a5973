using System;
using System.Collections.Generic;
using System.Net;
using System.Threading.Tasks;
using Tulip;
using Tulip.Streams;
// The tests compile this file with the SDK's implicit usings, which bring System.IO's LoopStreamReader and
// LoopStreamWriter: these say which are meant.

namespace Tulip.Samples.TcpProxy;

/// <summary>The two connections of one proxied client, for whoever watches the proxy (the tests do).</summary>
/// <param name="Client">The accepted client's transport.</param>
/// <param name="Upstream">The transport of the connection to the upstream.</param>
public sealed record RelayPair(ITransport Client, ITransport Upstream);

/// <summary>
/// A TCP proxy written on Tulip.Streams: it listens, and for each client connects to the upstream and
/// relays bytes both ways, each direction a loop of read into a buffer, write, await drain. So a peer
/// that does not read pauses the other side (the writer waits in DrainAsync, the reader of the other
/// connection stops reading once its buffer is full, and the kernel then stalls that peer's sends):
/// memory stays bounded whatever the peers do.
/// </summary>
/// <remarks>
/// EOF from one side becomes a half-close (WriteEof) of the other; the pair is closed once both
/// directions have ended, or at once, both reset, when either side resets or fails. A client whose
/// upstream refuses (or cannot be reached) is closed at once. Everything runs on the loop thread.
/// </remarks>
public sealed class TcpProxy : IAsyncDisposable
{
    /// <summary>Bytes read at most in one go, per direction of each pair.</summary>
    public const int RelayBufferSize = 64 * 1024;

    private readonly string _upstreamHost;
    private readonly int _upstreamPort;
    private readonly List<RelayPair> _pairs = new();
    private Server? _server;

    private TcpProxy(string upstreamHost, int upstreamPort, Action<string>? log)
    {
        _upstreamHost = upstreamHost;
        _upstreamPort = upstreamPort;
        Log = log;
    }

    /// <summary>Where the proxy says what happened to a client (an upstream that refused, a reset); null: nowhere.</summary>
    public Action<string>? Log { get; }

    /// <summary>The listening server.</summary>
    public Server Server => _server!;

    /// <summary>The port the proxy listens on (the one asked for, or the one picked for port 0).</summary>
    public int Port => ((IPEndPoint)Server.Sockets[0].LocalEndPoint!).Port;

    /// <summary>The pairs being relayed now.</summary>
    public IReadOnlyList<RelayPair> Pairs => _pairs;

    /// <summary>
    /// The largest write buffer (<see cref="IWriteTransport.GetWriteBufferSize"/>) any of the proxy's
    /// transports had right after a relay wrote to it: what the proxy itself holds for a peer that
    /// does not read. Bounded by the transports' high-water mark plus one read.
    /// </summary>
    public int PeakWriteBufferSize { get; private set; }

    /// <summary>Starts listening on <paramref name="listenHost"/>:<paramref name="listenPort"/> (0: any free port), on the running loop.</summary>
    public static async LoopTask<TcpProxy> StartAsync(int listenPort, string upstreamHost, int upstreamPort,
        string listenHost = "127.0.0.1", Action<string>? log = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(upstreamHost);
        var proxy = new TcpProxy(upstreamHost, upstreamPort, log);
        proxy._server = await StreamConnections.StartServerAsync(proxy.ServeClientAsync, listenHost, listenPort);
        return proxy;
    }

    /// <summary>Stops listening and resets every pair still relayed.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_server is null)
        {
            return;
        }

        _server.Close();
        foreach (var pair in _pairs.ToArray())
        {
            pair.Client.Abort();
            pair.Upstream.Abort();
        }

        await _server.WaitClosedAsync();
    }

    private async LoopTask ServeClientAsync(LoopStreamReader clientReader, LoopStreamWriter clientWriter)
    {
        LoopStreamReader upstreamReader;
        LoopStreamWriter upstreamWriter;
        try
        {
            (upstreamReader, upstreamWriter) = await StreamConnections.OpenConnectionAsync(_upstreamHost, _upstreamPort);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Log?.Invoke($"tcp-proxy: upstream {_upstreamHost}:{_upstreamPort} unreachable ({e.Message}); closing client {clientWriter.GetExtraInfo("peername")}");
            clientWriter.Close();
            return;
        }

        var pair = new RelayPair(clientWriter.Transport, upstreamWriter.Transport);
        _pairs.Add(pair);
        try
        {
            var toUpstream = RelayAsync(clientReader, upstreamWriter, clientWriter);
            var toClient = RelayAsync(upstreamReader, clientWriter, upstreamWriter);
            await toUpstream;
            await toClient;
        }
        finally
        {
            // Both directions ended (or one reset both): the pair is done.
            _pairs.Remove(pair);
            clientWriter.Close();
            upstreamWriter.Close();
        }
    }

    /// <summary>One direction: what <paramref name="from"/> reads goes to <paramref name="to"/>, drained before the next read.</summary>
    private async LoopTask RelayAsync(LoopStreamReader from, LoopStreamWriter to, LoopStreamWriter fromWriter)
    {
        var buffer = new byte[RelayBufferSize];
        try
        {
            int n;
            while ((n = await from.ReadAsync(buffer.AsMemory())) > 0)
            {
                to.Write(buffer.AsSpan(0, n));
                PeakWriteBufferSize = Math.Max(PeakWriteBufferSize, to.Transport.GetWriteBufferSize());
                await to.DrainAsync(); // waits while the other peer does not read: no more reads meanwhile
            }

            // EOF: pass it on as a half-close; the other direction goes on.
            if (!to.IsClosing)
            {
                if (to.CanWriteEof)
                {
                    to.WriteEof();
                }
                else
                {
                    to.Close();
                }
            }
        }
        catch (Exception e)
        {
            // A reset or an error on either connection: reset both, so the other peer learns it too.
            Log?.Invoke($"tcp-proxy: {e.Message}; resetting both sides");
            fromWriter.Transport.Abort();
            to.Transport.Abort();
            if (e is OperationCanceledException)
            {
                throw;
            }
        }
    }
}
