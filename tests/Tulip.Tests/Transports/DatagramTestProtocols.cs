using System.Net;
using System.Net.Sockets;
using Tulip;

namespace Tulip.Tests.Transports;

/// <summary>
/// A datagram protocol that records every datagram (a copy, with its sender) and every error, with
/// futures for each milestone, and checks the PEP's call order as it goes.
/// </summary>
internal sealed class RecordingDatagramProtocol : IDatagramProtocol
{
    private readonly WritePauses _pauses;
    private readonly IEventLoop _loop;
    private (int Count, Future<bool> Future)? _datagramWaiter;
    private Future<Exception>? _errorWaiter;

    public RecordingDatagramProtocol(IEventLoop loop)
    {
        _pauses = new WritePauses(Errors);
        _loop = loop;
        Made = loop.CreateFuture<IDatagramTransport>();
        Lost = loop.CreateFuture<Exception?>();
        Paused = loop.CreateFuture<bool>();
        Resumed = loop.CreateFuture<bool>();
    }

    public Future<IDatagramTransport> Made { get; }

    /// <summary>Completes with ConnectionLost's exception (null for a clean close).</summary>
    public Future<Exception?> Lost { get; }

    public Future<bool> Paused { get; }

    public Future<bool> Resumed { get; }

    public IDatagramTransport Transport => Made.Result();

    public List<(byte[] Data, EndPoint From)> Datagrams { get; } = new();

    public List<Exception> ErrorsReceived { get; } = new();

    /// <summary>Call-order violations seen.</summary>
    public List<string> Errors { get; } = new();

    public int PauseCount => _pauses.Pauses;

    public int ResumeCount => _pauses.Resumes;

    /// <summary>When set, DatagramReceived throws this for the next datagram.</summary>
    public Exception? ThrowOnce { get; set; }

    /// <summary>Called for each datagram after it is recorded (an echo, for instance).</summary>
    public Action<RecordingDatagramProtocol, byte[], EndPoint>? OnDatagram { get; set; }

    public Future<bool> WaitDatagrams(int count)
    {
        var f = _loop.CreateFuture<bool>();
        if (Datagrams.Count >= count)
        {
            f.SetResult(true);
        }
        else
        {
            _datagramWaiter = (count, f);
        }

        return f;
    }

    public Future<Exception> NextError()
    {
        _errorWaiter = _loop.CreateFuture<Exception>();
        return _errorWaiter;
    }

    public void ConnectionMade(IBaseTransport transport)
    {
        if (Made.Done) Errors.Add("ConnectionMade twice");
        Made.SetResult((IDatagramTransport)transport);
    }

    public void DatagramReceived(ReadOnlySpan<byte> data, EndPoint address)
    {
        if (!Made.Done) Errors.Add("DatagramReceived before ConnectionMade");
        if (Lost.Done) Errors.Add("DatagramReceived after ConnectionLost");
        if (ThrowOnce is { } ex)
        {
            ThrowOnce = null;
            throw ex;
        }

        var copy = data.ToArray();
        Datagrams.Add((copy, address));
        OnDatagram?.Invoke(this, copy, address);
        if (_datagramWaiter is { } w && Datagrams.Count >= w.Count)
        {
            _datagramWaiter = null;
            w.Future.TrySetResult(true);
        }
    }

    public void ErrorReceived(Exception exception)
    {
        if (!Made.Done) Errors.Add("ErrorReceived before ConnectionMade");
        if (Lost.Done) Errors.Add("ErrorReceived after ConnectionLost");
        ErrorsReceived.Add(exception);
        _errorWaiter?.TrySetResult(exception);
    }

    public void ConnectionLost(Exception? exception)
    {
        if (Lost.Done) Errors.Add("ConnectionLost twice");
        Lost.TrySetResult(exception);
        _datagramWaiter?.Future.TrySetResult(false);
    }

    public void PauseWriting()
    {
        _pauses.Pause();
        Paused.TrySetResult(true);
    }

    public void ResumeWriting()
    {
        _pauses.Resume();
        Resumed.TrySetResult(true);
    }
}

internal static class DatagramTestUtil
{
    public static readonly IPEndPoint AnyLoopback = new(IPAddress.Loopback, 0);

    public static IPEndPoint SockName(IDatagramTransport transport) => Assert.IsType<IPEndPoint>(transport.GetExtraInfo("sockname"));

    /// <summary>A UDP port nothing listens on: bound, then closed.</summary>
    public static int FreeUdpPort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    /// <summary>A fresh directory for UNIX socket files, removed by <see cref="IDisposable.Dispose"/>.</summary>
    public sealed class TempDir : IDisposable
    {
        public TempDir() => Path = Directory.CreateTempSubdirectory("tulip-dgram-").FullName;

        public string Path { get; }

        public string File(string name) => System.IO.Path.Combine(Path, name);

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
