using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Tulip;
using Tulip.Testing;
using Tulip.Tests.Selectors;

namespace Tulip.Tests.Transports;

/// <summary>
/// The third-party transport seam (seed 002): the per-loop registry, the capabilities each loop
/// offers, and the completion path delivering .NET I/O completions on the loop thread.
/// </summary>
public sealed class TransportSeamTests
{
    private interface IFeature
    {
        string Name { get; }
    }

    private sealed class Impl(string name) : IFeature
    {
        public string Name => name;
    }

    [Fact]
    public void Registry_RegisterTryGetUnregister()
    {
        using var loop = new TestEventLoop();
        Assert.False(loop.Transports.TryGet<IFeature>(out _));
        loop.Transports.Register<IFeature>(new Impl("a"));
        Assert.True(loop.Transports.TryGet<IFeature>(out var found));
        Assert.Equal("a", found.Name);
        loop.Transports.Register<IFeature>(new Impl("b"));
        Assert.True(loop.Transports.TryGet<IFeature>(out found));
        Assert.Equal("b", found.Name);
        Assert.True(loop.Transports.Unregister<IFeature>());
        Assert.False(loop.Transports.Unregister<IFeature>());
        Assert.Throws<ArgumentNullException>(() => loop.Transports.Register<IFeature>(null!));
    }

    [Fact]
    public void Registry_RegistrationsArePerLoop()
    {
        using var a = new TestEventLoop();
        using var b = new TestEventLoop();
        a.Transports.Register<IFeature>(new Impl("a"));
        Assert.False(b.Transports.TryGet<IFeature>(out _));
    }

    [Theory]
    [MemberData(nameof(LoopKinds.ReadinessNames), MemberType = typeof(LoopKinds))]
    public void Registry_Resolve_RegisteredWins_ElseFallbackChosenOnceAndKept(string readinessKind)
    {
        using var loop = new TestEventLoop();
        int calls = 0;
        Func<IEventLoop, IFeature?> fallback = l =>
        {
            calls++;
            return l switch
            {
                IReadinessEventLoop => new Impl("readiness"),
                ICompletionEventLoop => new Impl("completion"),
                _ => null,
            };
        };
        Assert.Equal("completion", loop.Transports.Resolve(fallback)!.Name); // the virtual-clock loop has no fd readiness
        Assert.Equal("completion", loop.Transports.Resolve(fallback)!.Name);
        Assert.Equal(1, calls);

        using var readiness = LoopKinds.Named(readinessKind).Create();
        Assert.Equal("readiness", readiness.Transports.Resolve(fallback)!.Name);
        readiness.Transports.Register<IFeature>(new Impl("third party"));
        Assert.Equal("third party", readiness.Transports.Resolve(fallback)!.Name);
    }

    [Fact]
    public void Registry_Require_WithNothingSuitable_SaysWhatToDo()
    {
        using var loop = new TestEventLoop();
        Assert.Null(loop.Transports.Resolve<IFeature>(_ => null));
        var ex = Assert.Throws<NotSupportedException>(() => loop.Transports.Require<IFeature>(_ => null));
        Assert.Contains(typeof(IFeature).FullName!, ex.Message);
        Assert.Contains("Transports.Register", ex.Message);
    }

    /// <summary>Each kind is a readiness loop exactly when <see cref="LoopKind.Readiness"/> says so (the suites that need readiness are chosen by it).</summary>
    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void Capabilities_ReadinessAsDeclared_EveryBaseLoopIsCompletion(string kind)
    {
        var loopKind = LoopKinds.Named(kind);
        using var loop = loopKind.Create();
        using var test = new TestEventLoop();
        Assert.Equal(loopKind.Readiness, loop is IReadinessEventLoop);
        Assert.IsAssignableFrom<ICompletionEventLoop>(loop);
        Assert.False(test is IReadinessEventLoop);
        Assert.IsAssignableFrom<ICompletionEventLoop>(test);
    }

    [Fact]
    public void PipeMethods_UseTheRegisteredFactory_EvenOnALoopWithoutReadiness()
    {
        using var loop = new TestEventLoop();
        var factory = new RefusingPipeFactory();
        loop.Transports.Register<IPipeTransportFactory>(factory);
        using var pipe = new NativePipe(Interop.O_CLOEXEC);
        loop.RunUntilComplete(async () =>
        {
            var ex = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
                await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), pipe.ReadFd));
            Assert.Equal("refused by the registered factory", ex.Message);
        });
        Assert.Same(loop, factory.Loop);
        Assert.True(PipeTestNative.IsOpen(pipe.ReadFd)); // a raw fd refused by the factory is given back, not closed
    }

    [Theory]
    [MemberData(nameof(LoopKinds.ReadinessNames), MemberType = typeof(LoopKinds))]
    public void ReadinessLoop_SetReaderWithReusableHandle_RearmsAndRejectsCancelledHandles(string readinessKind)
    {
        var kind = LoopKinds.Named(readinessKind);
        using var loop = kind.Create();
        using var pipe = new NativePipe();
        var readiness = Assert.IsAssignableFrom<IReadinessEventLoop>(loop);
        int runs = 0;
        var handle = readiness.CreateIoHandle(static box => box.Value++, new StrongBox<int>());
        loop.RunUntilComplete(async () =>
        {
            var counter = new StrongBox<int>();
            var h = readiness.CreateIoHandle(static c => c.Value++, counter);
            pipe.WriteByte();
            readiness.SetReader(pipe.ReadFd, h);
            await TestUtil.Eventually(() => counter.Value > 0);
            readiness.SetReader(pipe.ReadFd, null); // not cancelled: can be set again
            Assert.False(h.Cancelled);
            await Tasks.Sleep(0); // a run queued before the reader was cleared may still happen once
            int seen = counter.Value;
            await Tasks.Sleep(0.01);
            Assert.Equal(seen, counter.Value);
            readiness.SetReader(pipe.ReadFd, h);
            await TestUtil.Eventually(() => counter.Value > seen);
            readiness.SetReader(pipe.ReadFd, null);
            h.Cancel();
            Assert.Throws<ArgumentException>(() => readiness.SetReader(pipe.ReadFd, h));
            Assert.Throws<ArgumentOutOfRangeException>(() => readiness.SetWriter(-1, null));
            runs = counter.Value;
        });
        Assert.True(runs >= 2);
        Assert.Equal(0, kind.Registrations(loop));
        handle.Cancel();
    }

    [Fact]
    public void WhenCompleted_SynchronousResult_IsDeliveredOnALaterIteration()
    {
        using var loop = new TestEventLoop();
        var log = new List<string>();
        loop.RunUntilComplete(async () =>
        {
            loop.WhenCompleted(new ValueTask<int>(7), static (l, n, e) => l.Add($"int {n} {e is null}"), log);
            loop.WhenCompleted(ValueTask.CompletedTask, static (l, e) => l.Add($"void {e is null}"), log);
            log.Add("after the calls");
            await Tasks.Sleep(0);
        });
        Assert.Equal(["after the calls", "int 7 True", "void True"], log);
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void WhenCompleted_AsynchronousCompletion_RunsOnTheLoopThread_WithItsErrorOrResult(string kind)
    {
        using var loop = LoopKinds.Named(kind).Create();
        loop.RunUntilComplete(async () =>
        {
            int loopThread = Environment.CurrentManagedThreadId;
            var ok = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            var fail = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var gotOk = loop.CreateFuture<(int, int)>();
            var gotFail = loop.CreateFuture<Exception?>();
            loop.WhenCompleted(new ValueTask<int>(ok.Task), static (f, n, e) => f.SetResult((n, Environment.CurrentManagedThreadId)), gotOk);
            loop.WhenCompleted(new ValueTask(fail.Task), static (f, e) => f.SetResult(e), gotFail);
            _ = Task.Run(() =>
            {
                ok.SetResult(99);
                fail.SetException(new FormatException("from another thread"));
            });
            var (n, thread) = await gotOk;
            Assert.Equal(99, n);
            Assert.Equal(loopThread, thread);
            Assert.IsType<FormatException>(await gotFail);
        });
    }

    [Theory]
    [MemberData(nameof(LoopKinds.Names), MemberType = typeof(LoopKinds))]
    public void WhenCompleted_AfterTheLoopClosed_IsDropped(string kind)
    {
        var loop = LoopKinds.Named(kind).Create();
        var pending = new TaskCompletionSource<int>();
        int called = 0;
        loop.RunUntilComplete(async () =>
        {
            loop.WhenCompleted(new ValueTask<int>(pending.Task), (_, _, _) => called++, 0);
            await Tasks.Sleep(0);
        });
        loop.Close();
        pending.SetResult(1); // runs the continuation here: it must not throw
        Assert.Equal(0, called);
    }

    private sealed class RefusingPipeFactory : IPipeTransportFactory
    {
        public IEventLoop? Loop { get; private set; }

        public LoopTask<(IReadTransport Transport, TProtocol Protocol)> ConnectReadPipeAsync<TProtocol>(IEventLoop loop, Func<TProtocol> protocolFactory,
            SafeHandle pipe, IDisposable? owner, CancellationToken cancellationToken) where TProtocol : IBaseProtocol
        {
            Loop = loop;
            throw new InvalidOperationException("refused by the registered factory");
        }

        public LoopTask<(IWriteTransport Transport, TProtocol Protocol)> ConnectWritePipeAsync<TProtocol>(IEventLoop loop, Func<TProtocol> protocolFactory,
            SafeHandle pipe, IDisposable? owner, CancellationToken cancellationToken) where TProtocol : IBaseProtocol
        {
            Loop = loop;
            throw new InvalidOperationException("refused by the registered factory");
        }
    }
}
