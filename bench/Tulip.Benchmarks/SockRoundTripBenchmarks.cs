using System;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;

namespace Tulip.Benchmarks;

/// <summary>
/// A request and its answer over loopback TCP through the loop's socket methods: the PEP's
/// <c>SockSendAllAsync</c>/<c>SockRecvAsync</c> (loop tasks) beside <c>SockSendAllValueAsync</c>/<c>SockRecvValueAsync</c>
/// (ValueTasks over pooled operations), on the epoll loop and the proactor. Per round trip
/// (OperationsPerInvoke); the Allocated column is the whole process's, the runtime's threads included
/// on the proactor (SockValueMethodTests measures the loop thread alone).
/// </summary>
[Config(typeof(BenchConfig))]
public class SockRoundTripBenchmarks
{
    private const int RoundTrips = 20_000;

    private BaseEventLoop _loop = null!;
    private Socket _listener = null!;
    private Socket _client = null!;
    private Socket _server = null!;
    private readonly byte[] _request = new byte[64];
    private readonly byte[] _buffer = new byte[64];

    /// <summary>The loop kind.</summary>
    [Params("epoll", "proactor")]
    public string Loop { get; set; } = "epoll";

    [GlobalSetup]
    public void Setup()
    {
        _loop = Loop == "proactor" ? new ProactorEventLoop() : new SelectorEventLoop("epoll");
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(1);
        _listener.Blocking = false;
        _client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false, NoDelay = true };
        _server = _loop.RunUntilComplete(async () =>
        {
            var accepting = _loop.SockAcceptAsync(_listener);
            await _loop.SockConnectAsync(_client, _listener.LocalEndPoint!);
            return await accepting;
        });
        _server.NoDelay = true;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _client.Dispose();
        _server.Dispose();
        _listener.Dispose();
        _loop.Close();
    }

    /// <summary>The loop-task forms: SockSendAllAsync + SockRecvAsync each way.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = RoundTrips)]
    public int LoopTaskForms() => _loop.RunUntilComplete(async () =>
    {
        int total = 0;
        for (int i = 0; i < RoundTrips; i++)
        {
            await _loop.SockSendAllAsync(_client, _request);
            int n = await _loop.SockRecvAsync(_server, _buffer);
            await _loop.SockSendAllAsync(_server, _buffer.AsMemory(0, n));
            total += await _loop.SockRecvAsync(_client, _buffer);
        }

        return total;
    });

    /// <summary>The ValueTask forms: SockSendAllValueAsync + SockRecvValueAsync each way.</summary>
    [Benchmark(OperationsPerInvoke = RoundTrips)]
    public int ValueTaskForms() => _loop.RunUntilComplete(async () =>
    {
        int total = 0;
        for (int i = 0; i < RoundTrips; i++)
        {
            await _loop.SockSendAllValueAsync(_client, _request);
            int n = await _loop.SockRecvValueAsync(_server, _buffer);
            await _loop.SockSendAllValueAsync(_server, _buffer.AsMemory(0, n));
            total += await _loop.SockRecvValueAsync(_client, _buffer);
        }

        return total;
    });
}
