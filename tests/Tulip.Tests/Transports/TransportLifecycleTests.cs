using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Tulip;
using Tulip.Testing;
using Tulip.Tests.Loop;

namespace Tulip.Tests.Transports;

/// <summary>
/// TransportLifecycle on its own, with a fake owner that records each hook (the transports' suites
/// check it in place): the start, the three ways to end, ConnectionLost scheduled once and the fd
/// closed after it, holds, the dropped-write warning and which errors are OS errors.
/// </summary>
public class TransportLifecycleTests
{
    /// <summary>A transport reduced to its lifecycle: each hook adds its name to <see cref="Events"/>.</summary>
    private sealed class FakeTransport : ITransportLifecycleOwner
    {
        private IBaseProtocol _protocol;

        public FakeTransport(IEventLoop loop, IBaseProtocol protocol)
        {
            _protocol = protocol;
            Life = new TransportLifecycle(loop, this, "write dropped: closed");
        }

        public TransportLifecycle Life { get; }

        public List<string> Events { get; } = new();

        public List<(object? State, Exception? Error, bool Started)> Starts { get; } = new();

        public bool IsClosing => Life.IsClosing;

        public object? GetExtraInfo(string name, object? defaultValue = null) => defaultValue;

        public void Close() => Life.Close(hasPendingWrites: false);

        public void SetProtocol(IBaseProtocol protocol) => _protocol = protocol;

        public IBaseProtocol GetProtocol() => _protocol;

        public void OnStarted(object? state, Exception? error)
        {
            Starts.Add((state, error, Life.IsStarted));
            Events.Add("started");
        }

        public void OnClosing() => Events.Add("closing");

        public void OnForceClose(Exception? error) => Events.Add("force");

        public void OnConnectionLost()
        {
            Assert.True(Life.IsClosed, "the fd is closed after ConnectionLost, with IsClosed already true");
            Events.Add("fd-closed");
        }
    }

    private sealed class ThrowingProtocol(bool inMade, bool inLost) : Tulip.Testing.RecordingProtocol
    {
        public override void ConnectionMade(IBaseTransport transport)
        {
            base.ConnectionMade(transport);
            if (inMade)
            {
                throw new InvalidOperationException("made failed");
            }
        }

        public override void ConnectionLost(Exception? exception)
        {
            base.ConnectionLost(exception);
            if (inLost)
            {
                throw new InvalidOperationException("lost failed");
            }
        }
    }

    private static (TestEventLoop Loop, Tulip.Testing.RecordingProtocol Protocol, FakeTransport Transport) Started(Tulip.Testing.RecordingProtocol? protocol = null)
    {
        var loop = new TestEventLoop { FailOnUnhandledErrors = false };
        protocol ??= new Tulip.Testing.RecordingProtocol();
        var transport = new FakeTransport(loop, protocol);
        transport.Life.ScheduleStart("waiter");
        loop.RunUntilIdle();
        transport.Events.Clear();
        return (loop, protocol, transport);
    }

    [Fact]
    public void StartIsScheduledThenConnectionMadeThenOnStartedWithTheState()
    {
        using var loop = new TestEventLoop();
        var protocol = new Tulip.Testing.RecordingProtocol();
        var transport = new FakeTransport(loop, protocol);
        transport.Life.ScheduleStart("waiter");
        Assert.Empty(protocol.Events); // never inline
        loop.RunUntilIdle();
        Assert.Equal(["made"], protocol.Events);
        Assert.Equal([("waiter", (Exception?)null, true)], transport.Starts);
        Assert.True(transport.Life.IsStarted);
        Assert.False(transport.Life.IsClosing);
        Assert.Equal("open", transport.Life.StateName);
    }

    [Fact]
    public void ConnectionMadeThatThrowsIsReportedAndEndsWithoutConnectionLost()
    {
        using var loop = new TestEventLoop { FailOnUnhandledErrors = false };
        var protocol = new ThrowingProtocol(inMade: true, inLost: false);
        var transport = new FakeTransport(loop, protocol);
        transport.Life.ScheduleStart(null);
        loop.RunUntilIdle();

        var start = Assert.Single(transport.Starts);
        Assert.Equal("made failed", start.Error!.Message);
        Assert.False(start.Started);
        var context = Assert.Single(loop.UnhandledErrors);
        Assert.Equal("Fatal error: protocol.ConnectionMade() call failed.", context.Message);
        Assert.Same(transport, context.Transport);
        Assert.Same(protocol, context.Protocol);
        Assert.Equal(["made"], protocol.Events); // not started, so no ConnectionLost (asyncio)
        Assert.Equal(["started", "force", "force", "fd-closed"], transport.Events);
        Assert.True(transport.Life.IsClosed);
    }

    [Fact]
    public void AbortBeforeTheStartSkipsBothProtocolCallsAndClosesTheFd()
    {
        using var loop = new TestEventLoop();
        var protocol = new Tulip.Testing.RecordingProtocol();
        var transport = new FakeTransport(loop, protocol);
        transport.Life.ScheduleStart("w");
        transport.Life.Abort();
        loop.RunUntilIdle();
        Assert.Empty(protocol.Events);
        Assert.Equal([("w", (Exception?)null, false)], transport.Starts);
        Assert.Equal(["force", "started", "force", "fd-closed"], transport.Events);
    }

    [Fact]
    public void CloseWithNothingPendingStopsReadingThenLosesTheConnectionOnce()
    {
        var (loop, protocol, transport) = Started();
        using (loop)
        {
            Assert.True(transport.Life.Close(hasPendingWrites: false));
            Assert.False(transport.Life.Close(hasPendingWrites: false)); // idempotent
            Assert.True(transport.Life.IsClosing);
            Assert.True(transport.Life.IsConnectionLost);
            Assert.Equal("closing", transport.Life.StateName);
            Assert.Equal(["made"], protocol.Events); // ConnectionLost is scheduled, not called inline
            loop.RunUntilIdle();
            Assert.Equal(["made", "lost"], protocol.Events);
            Assert.Null(protocol.LostException);
            Assert.Equal(["closing", "force", "force", "fd-closed"], transport.Events);
            Assert.Equal("closed", transport.Life.StateName);
            Assert.Empty(loop.UnhandledErrors);
        }
    }

    [Fact]
    public void CloseWithPendingWritesWaitsForTheDrain()
    {
        var (loop, protocol, transport) = Started();
        using (loop)
        {
            transport.Life.Close(hasPendingWrites: true);
            loop.RunUntilIdle();
            Assert.False(transport.Life.IsConnectionLost);
            Assert.Equal(["made"], protocol.Events);

            transport.Life.ScheduleConnectionLost(null); // the buffer drained
            transport.Life.ScheduleConnectionLost(null);
            transport.Life.FatalError(new SocketException((int)SocketError.ConnectionReset), "late");
            loop.RunUntilIdle();
            Assert.Equal(["made", "lost"], protocol.Events);
            Assert.Null(protocol.LostException);
            Assert.Equal(["closing", "force", "force", "fd-closed"], transport.Events);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void OSErrorsEndTheConnectionQuietly(bool socketError)
    {
        var (loop, protocol, transport) = Started();
        using (loop)
        {
            Exception error = socketError ? new SocketException((int)SocketError.ConnectionReset) : new IOException("EPIPE", 32);
            transport.Life.FatalError(error, "Fatal write error");
            loop.RunUntilIdle();
            Assert.Empty(loop.UnhandledErrors);
            Assert.Same(error, protocol.LostException);
            Assert.Equal(["force", "force", "fd-closed"], transport.Events);
        }
    }

    [Fact]
    public void OtherErrorsAreReportedWithTheTransportAndProtocol()
    {
        var (loop, protocol, transport) = Started();
        using (loop)
        {
            var error = new InvalidOperationException("protocol bug");
            transport.Life.FatalError(error, "Fatal error: protocol.DataReceived() call failed.");
            transport.Life.FatalError(new SocketException((int)SocketError.ConnectionReset), "too late: the first error is the one ConnectionLost gets");
            loop.RunUntilIdle();
            var context = Assert.Single(loop.UnhandledErrors);
            Assert.Equal("Fatal error: protocol.DataReceived() call failed.", context.Message);
            Assert.Same(error, context.Exception);
            Assert.Same(transport, context.Transport);
            Assert.Same(protocol, context.Protocol);
            Assert.Same(error, protocol.LostException);
            Assert.Equal(["made", "lost"], protocol.Events);
        }
    }

    [Fact]
    public void ConnectionLostThatThrowsIsReportedAndTheFdStillCloses()
    {
        var (loop, protocol, transport) = Started(new ThrowingProtocol(inMade: false, inLost: true));
        using (loop)
        {
            transport.Life.Abort();
            loop.RunUntilIdle();
            var context = Assert.Single(loop.UnhandledErrors);
            Assert.Equal("Exception in protocol.ConnectionLost()", context.Message);
            Assert.Equal("lost failed", context.Exception!.Message);
            Assert.Equal(["force", "force", "fd-closed"], transport.Events);
            Assert.True(transport.Life.IsClosed);
        }
    }

    [Fact]
    public void AHoldKeepsConnectionLostBackUntilItsRelease()
    {
        var (loop, protocol, transport) = Started();
        using (loop)
        {
            transport.Life.HoldConnectionLost();
            transport.Life.HoldConnectionLost();
            var error = new SocketException((int)SocketError.ConnectionReset);
            transport.Life.ForceClose(error);
            Assert.True(transport.Life.IsConnectionLost);
            loop.RunUntilIdle();
            Assert.Equal(["made"], protocol.Events);
            transport.Life.ReleaseConnectionLost();
            loop.RunUntilIdle();
            Assert.Equal(["made"], protocol.Events); // one hold is still in place
            transport.Life.ReleaseConnectionLost();
            loop.RunUntilIdle();
            Assert.Equal(["made", "lost"], protocol.Events);
            Assert.Same(error, protocol.LostException);
            Assert.Equal(["force", "force", "force", "fd-closed"], transport.Events);

            var ex = Assert.Throws<InvalidOperationException>(transport.Life.ReleaseConnectionLost);
            Assert.Contains("HoldConnectionLost", ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void AGracefulCloseDuringAHoldDoesNotStopTheIoUntilTheRelease()
    {
        var (loop, protocol, transport) = Started();
        using (loop)
        {
            transport.Life.HoldConnectionLost();
            transport.Life.Close(hasPendingWrites: false);
            Assert.Equal(["closing"], transport.Events); // the held operation keeps its fd watched
            transport.Life.ReleaseConnectionLost();
            loop.RunUntilIdle();
            Assert.Equal(["made", "lost"], protocol.Events);
            Assert.Equal(["closing", "force", "force", "fd-closed"], transport.Events);
        }
    }

    [Fact]
    public void CloseNowClosesTheFdAtOnceAndTheStartFindsItClosed()
    {
        using var loop = new TestEventLoop();
        var protocol = new Tulip.Testing.RecordingProtocol();
        var transport = new FakeTransport(loop, protocol);
        transport.Life.ScheduleStart(null);
        transport.Life.CloseNow();
        transport.Life.CloseNow();
        Assert.Equal(["force", "fd-closed"], transport.Events);
        loop.RunUntilIdle();
        Assert.Empty(protocol.Events);
        Assert.Equal([(null, (Exception?)null, false)], transport.Starts);
    }

    [Fact]
    public void DroppedWritesAreLoggedPastTheThreshold()
    {
        var logs = new CapturingLoggerFactory();
        using var loop = new TestEventLoop(loggerFactory: logs);
        var transport = new FakeTransport(loop, new Tulip.Testing.RecordingProtocol());
        for (int i = 0; i < TransportLifecycle.DroppedWriteLogThreshold; i++)
        {
            transport.Life.DropWrite();
        }

        Assert.DoesNotContain(logs.Entries, e => e.Level == LogLevel.Warning);
        transport.Life.DropWrite();
        transport.Life.DropWrite();
        Assert.Equal(2, logs.Entries.Count(e => e.Level == LogLevel.Warning && e.Message == "write dropped: closed"));
    }

    [Fact]
    public void OSErrorsAreSocketAndIOExceptions()
    {
        Assert.True(TransportLifecycle.IsOSError(new SocketException((int)SocketError.ConnectionReset)));
        Assert.True(TransportLifecycle.IsOSError(new IOException("broken pipe")));
        Assert.True(TransportLifecycle.IsOSError(new FileNotFoundException()));
        Assert.False(TransportLifecycle.IsOSError(new InvalidOperationException()));
        Assert.False(TransportLifecycle.IsOSError(new ObjectDisposedException("socket")));
        Assert.Throws<ArgumentNullException>(() => TransportLifecycle.IsOSError(null!));
    }

    [Fact]
    public void NullArgumentsAreRefused()
    {
        using var loop = new TestEventLoop();
        var transport = new FakeTransport(loop, new Tulip.Testing.RecordingProtocol());
        Assert.Throws<ArgumentNullException>(() => new TransportLifecycle(null!, transport, "w"));
        Assert.Throws<ArgumentNullException>(() => new TransportLifecycle(loop, null!, "w"));
        Assert.Throws<ArgumentNullException>(() => new TransportLifecycle(loop, transport, null!));
        Assert.Throws<ArgumentNullException>(() => transport.Life.FatalError(null!, "m"));
    }
}
