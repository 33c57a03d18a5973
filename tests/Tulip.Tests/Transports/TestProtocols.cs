using System.Net;
using System.Net.Sockets;
using Tulip;

namespace Tulip.Tests.Transports;

/// <summary>
/// A stream protocol that records what the transport does to it, with futures to await each
/// milestone, and checks the PEP's call order as it goes.
/// </summary>
internal class RecordingProtocol : IProtocol
{
    private readonly WritePauses _pauses;
    private readonly ReceivedBytes _received = new();

    public RecordingProtocol(IEventLoop loop)
    {
        _pauses = new WritePauses(Errors);
        Made = loop.CreateFuture<ITransport>();
        Eof = loop.CreateFuture<bool>();
        Lost = loop.CreateFuture<Exception?>();
        Paused = loop.CreateFuture<bool>();
        Resumed = loop.CreateFuture<bool>();
    }

    public Future<ITransport> Made { get; }

    public Future<bool> Eof { get; }

    /// <summary>Completes with ConnectionLost's exception (null for a clean close).</summary>
    public Future<Exception?> Lost { get; }

    public Future<bool> Paused { get; }

    public Future<bool> Resumed { get; }

    public ITransport Transport => Made.Result();

    public bool KeepOpenOnEof { get; set; }

    public int PauseCount => _pauses.Pauses;

    public int ResumeCount => _pauses.Resumes;

    public List<string> Errors { get; } = new();

    public long ReceivedCount => _received.Count;

    public byte[] Received => _received.ToArray();

    /// <summary>Called when at least <see cref="WaitBytes"/> bytes have arrived.</summary>
    public Future<bool> WaitBytes(IEventLoop loop, long count) => _received.WaitFor(loop, count);

    public virtual void ConnectionMade(IBaseTransport transport)
    {
        if (Made.Done) Errors.Add("ConnectionMade twice");
        Made.SetResult((ITransport)transport);
    }

    public virtual void DataReceived(ReadOnlySpan<byte> data)
    {
        if (!Made.Done) Errors.Add("DataReceived before ConnectionMade");
        if (Eof.Done) Errors.Add("DataReceived after EofReceived");
        if (Lost.Done) Errors.Add("DataReceived after ConnectionLost");
        _received.Add(data);
    }

    public virtual bool EofReceived()
    {
        if (Eof.Done) Errors.Add("EofReceived twice");
        Eof.TrySetResult(true);
        return KeepOpenOnEof;
    }

    public virtual void ConnectionLost(Exception? exception)
    {
        if (Lost.Done) Errors.Add("ConnectionLost twice");
        Lost.TrySetResult(exception);
        _received.End();
    }

    public virtual void PauseWriting()
    {
        _pauses.Pause();
        Paused.TrySetResult(true);
    }

    public virtual void ResumeWriting()
    {
        _pauses.Resume();
        Resumed.TrySetResult(true);
    }
}

/// <summary>A recording peer that can start with reading paused (a peer that does not read until told).</summary>
internal sealed class PeerProtocol(IEventLoop loop, bool pauseReading) : RecordingProtocol(loop)
{
    public override void ConnectionMade(IBaseTransport transport)
    {
        base.ConnectionMade(transport);
        if (pauseReading)
        {
            ((ITransport)transport).PauseReading();
        }
    }
}

/// <summary>The echo server of the benchmark contract: echoes, and stops reading while its peer is not keeping up.</summary>
internal sealed class EchoProtocol : Protocol
{
    private ITransport _transport = null!;

    public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;

    public override void DataReceived(ReadOnlySpan<byte> data) => _transport.Write(data);

    public override bool EofReceived() => false;

    public override void PauseWriting() => _transport.PauseReading();

    public override void ResumeWriting() => _transport.ResumeReading();
}

/// <summary>
/// What a recording stream protocol received, with one waiter for "at least n bytes": shared by
/// <see cref="RecordingProtocol"/> and <see cref="PipeRecorder"/>.
/// </summary>
internal sealed class ReceivedBytes
{
    private readonly MemoryStream _data = new();
    private (long Count, Future<bool> Future)? _waiter;

    public long Count => _data.Length;

    public byte[] ToArray() => _data.ToArray();

    /// <summary>A future that completes with true once <paramref name="count"/> bytes have arrived, or false if the connection is lost first.</summary>
    public Future<bool> WaitFor(IEventLoop loop, long count)
    {
        var f = loop.CreateFuture<bool>();
        if (_data.Length >= count)
        {
            f.SetResult(true);
        }
        else
        {
            _waiter = (count, f);
        }

        return f;
    }

    public void Add(ReadOnlySpan<byte> data)
    {
        _data.Write(data);
        if (_waiter is { } w && _data.Length >= w.Count)
        {
            _waiter = null;
            w.Future.TrySetResult(true);
        }
    }

    /// <summary>The connection is lost: a pending waiter completes with false.</summary>
    public void End() => _waiter?.Future.TrySetResult(false);
}

/// <summary>
/// PauseWriting/ResumeWriting counts of a recording protocol, checking that they alternate, pause
/// first, as the PEP promises; a violation goes to the protocol's error list.
/// </summary>
internal sealed class WritePauses(List<string> errors)
{
    public int Pauses { get; private set; }

    public int Resumes { get; private set; }

    public void Pause()
    {
        Pauses++;
        if (Pauses != Resumes + 1) errors.Add("PauseWriting twice without ResumeWriting");
    }

    public void Resume()
    {
        Resumes++;
        if (Pauses != Resumes) errors.Add("ResumeWriting without PauseWriting");
    }
}

internal static partial class TestUtil
{
    /// <summary>
    /// Runs <paramref name="body"/> on a new loop of <paramref name="kind"/>; cancels it after
    /// <paramref name="timeoutSeconds"/> so no test hangs. Calls to the exception handler fail the
    /// test, unless <paramref name="errors"/> is given to collect them.
    /// </summary>
    /// <remarks>
    /// On a virtual-clock loop (<see cref="Tulip.Testing.TestEventLoop"/>) no timeout timer is armed:
    /// that clock jumps to the next timer whenever nothing is ready, even while a .NET I/O completion
    /// is on its way, so the timer would fire at once; the loop's own <c>IdleTimeout</c> ends a run
    /// that would hang.
    /// </remarks>
    public static void Run(LoopKind kind, Func<BaseEventLoop, LoopTask> body, double timeoutSeconds = 60, List<ExceptionContext>? errors = null)
    {
        using var loop = kind.Create();
        var unexpected = errors ?? new List<ExceptionContext>();
        loop.SetExceptionHandler((_, ctx) => unexpected.Add(ctx));
        if (loop is Tulip.Testing.TestEventLoop)
        {
            loop.RunUntilComplete(() => body(loop));
        }
        else
        {
            RunWithTimeout(loop, body, timeoutSeconds);
        }

        if (errors is null)
        {
            Assert.True(unexpected.Count == 0, "exception handler called: " + string.Join("\n", unexpected));
        }
    }

    private static void RunWithTimeout(BaseEventLoop loop, Func<BaseEventLoop, LoopTask> body, double timeoutSeconds) =>
        loop.RunUntilComplete(async () =>
        {
            var task = body(loop);
            var timer = loop.CallLater(timeoutSeconds, () => task.Cancel($"test timed out after {timeoutSeconds} s"));
            // A task stuck awaiting a .NET Task cannot be cancelled: stop the loop instead, which fails the test.
            var stopper = loop.CallLater(timeoutSeconds + 5, loop.Stop);
            try
            {
                await task;
            }
            finally
            {
                timer.Cancel();
                stopper.Cancel();
            }
        });

    /// <summary>A port nothing listens on: bound, then closed.</summary>
    public static int FreePort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    /// <summary>The port <paramref name="server"/> listens on: its first socket's, or the in-memory server's.</summary>
    public static int PortOf(Server server) =>
        server is Tulip.Testing.MemoryServer memory ? memory.Port : ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;

    public static byte[] Pattern(int length)
    {
        var data = new byte[length];
        var rng = new Random(length);
        rng.NextBytes(data);
        return data;
    }

    public static int OpenFdCount() => Directory.GetFiles("/proc/self/fd").Length;

    /// <summary>Takes the process's open fds (number and target), to check later that none was added.</summary>
    public static FdSnapshot TakeFds() => new(ReadFds());

    internal static Dictionary<int, string> ReadFds()
    {
        var fds = new Dictionary<int, string>();
        foreach (var path in Directory.GetFiles("/proc/self/fd"))
        {
            string? target;
            try
            {
                target = new FileInfo(path).LinkTarget;
            }
            catch (IOException)
            {
                continue; // closed while we looked (the enumeration's own fd, or another thread's)
            }

            if (target is not null && int.TryParse(Path.GetFileName(path), out int fd))
            {
                fds[fd] = target;
            }
        }

        return fds;
    }

    /// <summary>Yields to the loop until <paramref name="condition"/> holds, at most <paramref name="iterations"/> times (a bounded wait).</summary>
    public static async LoopTask<bool> Eventually(Func<bool> condition, int iterations = 2000)
    {
        for (int i = 0; i < iterations; i++)
        {
            if (condition())
            {
                return true;
            }

            await Tasks.Sleep(0.001);
        }

        return condition();
    }
}

/// <summary>
/// The fds open at one moment. <see cref="NoneAdded"/> holds when every fd open now was open then with
/// the same target: a leak (a new number, or an old number reused for another file) fails it, while an
/// fd that something else closed meanwhile (a finalizer, a late close elsewhere in the process) does
/// not, which a bare count would mistake for a change.
/// </summary>
public sealed class FdSnapshot(Dictionary<int, string> fds)
{
    public int Count => fds.Count;

    public bool NoneAdded() => Added().Count == 0;

    public List<string> Added()
    {
        var added = new List<string>();
        foreach (var (fd, target) in TestUtil.ReadFds())
        {
            // An assembly the runtime loaded for the first time meanwhile (a code path the test took
            // first, such as an exception's) stays mapped for the process's life: not a leak.
            if ((!fds.TryGetValue(fd, out var was) || was != target) && !target.EndsWith(".dll", StringComparison.Ordinal))
            {
                added.Add($"{fd} -> {target}");
            }
        }

        return added;
    }

    public string Describe() => $"fds opened and not closed: {string.Join(", ", Added())} (before {Count}, now {TestUtil.OpenFdCount()})";
}
