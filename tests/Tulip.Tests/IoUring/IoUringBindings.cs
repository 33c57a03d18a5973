// The contract suites bound to the io_uring loop kind (LoopKinds.IoUring: the selector loop over
// io_uring poll requests, issue 14's first step), in one file, so the kind joined without touching
// each suite's file. Each binding is the poll binding of the same suite with the kind swapped (same
// attributes, same overrides), grouped by the namespace and file of the suite; each binding lives in
// its suite's namespace, so a filter such as FullyQualifiedName~Tulip.Tests.Streams still finds it.
// A suite added later is named by LoopKindsTests.EverySuiteIsBoundToEveryLoopKind until its line is
// added here. The io_uring bindings alone: dotnet test --filter "FullyQualifiedName~.IoUring".

namespace Tulip.Tests.Diagnostics
{
    // Diagnostics/MetricsTests.cs
    public sealed class IoUringMetricsTests() : MetricsTests(LoopKinds.IoUring);
}

namespace Tulip.Tests.Extras
{
    using Tulip.Extras;

    // Extras/SeqPacketContractTests.cs
    public sealed class IoUringReadinessSeqPacketTests() : SeqPacketContractTests(LoopKinds.IoUring)
    {
        protected override ISeqPacketTransportFactory Expected => SeqPacket.Readiness;
    }

    public sealed class IoUringCompletionSeqPacketTests() : SeqPacketContractTests(LoopKinds.IoUring)
    {
        protected override ISeqPacketTransportFactory Expected => SeqPacket.Completion;

        protected override void Run(Func<IEventLoop, LoopTask> body) => base.Run(loop =>
        {
            loop.Transports.Register(SeqPacket.Completion);
            return body(loop);
        });
    }

    // Extras/SeqPacketHandleOwnershipTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringReadinessSeqPacketHandleTests() : SeqPacketHandleOwnershipTests(LoopKinds.IoUring);

    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringCompletionSeqPacketHandleTests() : SeqPacketHandleOwnershipTests(LoopKinds.IoUring)
    {
        protected override void Run(Func<IEventLoop, LoopTask> body) => base.Run(loop =>
        {
            loop.Transports.Register(SeqPacket.Completion);
            return body(loop);
        });
    }

    // Extras/SeqPacketResourceTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringCompletionSeqPacketResourceTests() : SeqPacketResourceTests(LoopKinds.IoUring, completion: true);

    // The readiness implementation too, the default on a readiness loop (poll has only the completion one).
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringReadinessSeqPacketResourceTests() : SeqPacketResourceTests(LoopKinds.IoUring, completion: false);
}

namespace Tulip.Tests.Loop
{
    // Loop/EventLoopGroupTests.cs
    public sealed class IoUringEventLoopGroupTests() : EventLoopGroupTests(LoopKinds.IoUring);

    // Loop/EventLoopGroupRoundRobinTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringEventLoopGroupRoundRobinTests() : EventLoopGroupRoundRobinTests(LoopKinds.IoUring);

    // Loop/CloseReportsTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringCloseReportsTests() : CloseReportsTests(LoopKinds.IoUring);

    // Loop/EventLoopContractTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringEventLoopTests() : EventLoopContractTests(LoopKinds.IoUring);

    // Loop/InterruptTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringInterruptTests() : InterruptTests(LoopKinds.IoUring);

    // Loop/LoopFactoryTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringLoopFactoryTests() : LoopFactoryTests(LoopKinds.IoUring);

    // Loop/RefusalMessageTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringRefusalMessageTests() : RefusalMessageContractTests(LoopKinds.IoUring);

    // Loop/RunForeverRaceTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringRunForeverRaceTests() : RunForeverRaceTests(LoopKinds.IoUring);

    // Loop/SignalTests.cs
    [Collection("Signals")]
    public sealed class IoUringSignalTests() : SignalTests(LoopKinds.IoUring);

    // Loop/StopFromAnotherThreadTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringStopFromAnotherThreadTests() : StopFromAnotherThreadTests(LoopKinds.IoUring);

    // Loop/TransportFdOwnershipTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringTransportFdOwnershipTests() : TransportFdOwnershipTests(LoopKinds.IoUring);
}

namespace Tulip.Tests.Queues
{

    // Queues/QueueLoopContractTests.cs
    public sealed class IoUringQueueLoopTests() : QueueLoopContractTests(LoopKinds.IoUring);
}

namespace Tulip.Tests.Samples
{
    // Samples/MetricsSampleTests.cs
    public sealed class IoUringMetricsSampleTests() : MetricsSampleTests(LoopKinds.IoUring);
}

namespace Tulip.Tests.Streams
{

    // Streams/DuplexPipeSocketTests.cs
    public sealed class IoUringDuplexPipeSocketTests() : DuplexPipeSocketTests(LoopKinds.IoUring);

    // Streams/DuplexPipeTests.cs
    public sealed class IoUringDuplexPipeTests() : DuplexPipeTests(LoopKinds.IoUring);

    // Streams/FromAsyncioTests.cs
    public sealed class IoUringFromAsyncioTests() : FromAsyncioTests(LoopKinds.IoUring);

    // Streams/FromKestrelTests.cs
    public sealed class IoUringFromKestrelTests() : FromKestrelTests(LoopKinds.IoUring);

    // Streams/StreamConnectionTests.cs
    public sealed class IoUringStreamConnectionTests() : StreamConnectionTests(LoopKinds.IoUring);

    // Streams/StreamProtocolTests.cs
    public sealed class IoUringStreamProtocolTests() : StreamProtocolTests(LoopKinds.IoUring);

    // Streams/StreamReaderProtocolTests.cs
    public sealed class IoUringStreamReaderProtocolTests() : StreamReaderProtocolTests(LoopKinds.IoUring);

    // Streams/StreamReaderTests.cs
    public sealed class IoUringStreamReaderTests() : StreamReaderTests(LoopKinds.IoUring);

    // Streams/StreamReaderWriterStreamTests.cs
    public sealed class IoUringStreamReaderWriterStreamTests() : StreamReaderWriterStreamTests(LoopKinds.IoUring);

    // Streams/StreamSocketTests.cs
    public sealed class IoUringStreamSocketTests() : StreamSocketTests(LoopKinds.IoUring);

    // Streams/TcpProxyTests.cs
    public sealed class IoUringTcpProxyTests() : TcpProxyTests(LoopKinds.IoUring);
}

namespace Tulip.Tests.Subprocess
{
    // Subprocess/SubprocessLoopCloseTests.cs
    public sealed class IoUringSubprocessLoopCloseTests() : SubprocessLoopCloseTests(LoopKinds.IoUring);

    public sealed class IoUringProcessSubprocessLoopCloseTests() : ProcessSubprocessLoopCloseTests(LoopKinds.IoUring);

    public sealed class IoUringSigChldSubprocessLoopCloseTests() : SigChldSubprocessLoopCloseTests(LoopKinds.IoUring);

    // The SIGCHLD watch (no pidfd) bindings of the contract, LoopProcess and resource suites.
    public sealed class IoUringSigChldLoopProcessTests() : SigChldLoopProcessContractTests(LoopKinds.IoUring);

    public sealed class IoUringSigChldSubprocessResourceTests() : SigChldSubprocessResourceTests(LoopKinds.IoUring);

    public sealed class IoUringSigChldSubprocessTransportTests() : SigChldSubprocessTransportContractTests(LoopKinds.IoUring);

    // Subprocess/LoopProcessContractTests.cs
    public sealed class IoUringLoopProcessTests() : LoopProcessContractTests(LoopKinds.IoUring);

    public sealed class IoUringProcessLoopProcessTests() : ProcessLoopProcessContractTests(LoopKinds.IoUring);

    // Subprocess/SubprocessCoexistenceTests.cs
    public sealed class IoUringSubprocessCoexistenceTests() : SubprocessCoexistenceTests(LoopKinds.IoUring);

    // Subprocess/SubprocessResourceTests.cs
    public sealed class IoUringSubprocessResourceTests() : SubprocessResourceTests(LoopKinds.IoUring);

    public sealed class IoUringProcessSubprocessResourceTests() : ProcessSubprocessResourceTests(LoopKinds.IoUring);

    // Subprocess/SubprocessTransportContractTests.cs
    public sealed class IoUringSubprocessTransportTests() : SubprocessTransportContractTests(LoopKinds.IoUring);

    public sealed class IoUringProcessSubprocessTransportTests() : ProcessSubprocessTransportContractTests(LoopKinds.IoUring);
}

namespace Tulip.Tests.Synchronization
{

    // Synchronization/LockLoopContractTests.cs
    public sealed class IoUringLockLoopContractTests() : LockLoopContractTests(LoopKinds.IoUring);
}

namespace Tulip.Tests.Tls
{

    // Tls/StartTlsContractTests.cs
    public sealed class IoUringStartTlsTests() : StartTlsContractTests(LoopKinds.IoUring);

    // Tls/StartTlsResourceTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringStartTlsResourceTests() : StartTlsResourceTests(LoopKinds.IoUring);

    // Tls/TlsContractTests.cs
    public sealed class IoUringTlsContractTests() : TlsContractTests(LoopKinds.IoUring);

    // Tls/TlsEchoScriptTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringTlsEchoScriptTests() : TlsEchoScriptTests(LoopKinds.IoUring);

    // Tls/TlsLayeringContractTests.cs
    public sealed class IoUringTlsLayeringTests() : TlsLayeringContractTests(LoopKinds.IoUring);

    // Tls/TlsPeerInteropTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringTlsPeerInteropTests() : TlsPeerInteropTests(LoopKinds.IoUring);

    // Tls/TlsResourceTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringTlsResourceTests() : TlsResourceTests(LoopKinds.IoUring);

    // Tls/TlsStreamsContractTests.cs
    public sealed class IoUringTlsStreamsTests() : TlsStreamsContractTests(LoopKinds.IoUring);
}

namespace Tulip.Tests.Transports
{
    using Xunit.Abstractions;

    // Transports/AcceptedConnectionTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringAcceptedConnectionTests() : AcceptedConnectionTests(LoopKinds.IoUring);

    // Transports/ConnectCancellationTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringConnectCancellationTests() : ConnectCancellationTests(LoopKinds.IoUring);

    // Transports/ConnectionChurnTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringConnectionChurnTests() : ConnectionChurnTests(LoopKinds.IoUring);

    // Transports/ConnectionFloodTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringConnectionFloodTests() : ConnectionFloodTests(LoopKinds.IoUring);

    // Transports/DatagramResourceTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringDatagramResourceTests() : DatagramResourceTests(LoopKinds.IoUring);

    // Transports/DatagramSockMethodTests.cs
    public sealed class IoUringDatagramSockMethodTests() : DatagramSockMethodTests(LoopKinds.IoUring);

    // Transports/DatagramTransportContractTests.cs
    public sealed class IoUringDatagramTransportTests(ITestOutputHelper output) : DatagramTransportContractTests(LoopKinds.IoUring, output);

    // Transports/InteropTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringInteropTests() : InteropTests(LoopKinds.IoUring);

    // Transports/PipeResourceTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringPipeResourceTests() : PipeResourceTests(LoopKinds.IoUring);

    // Transports/PipeTransportContractTests.cs
    public sealed class IoUringPipeTransportTests() : PipeTransportContractTests(LoopKinds.IoUring);

    // Transports/SendErrnoTests.cs
    public sealed class IoUringSendErrnoTests() : SendErrnoTests(LoopKinds.IoUring);

    // Transports/SendFileContractTests.cs
    public sealed class IoUringSendFileContractTests() : SendFileContractTests(LoopKinds.IoUring);

    // Transports/ServerShutdownTests.cs
    public sealed class IoUringServerShutdownTests() : ServerShutdownTests(LoopKinds.IoUring);

    // Transports/SockRefusalTests.cs
    public sealed class IoUringSockRefusalTests() : SockRefusalTests(LoopKinds.IoUring);

    // Transports/SockValueDatagramTests.cs
    public sealed class IoUringSockValueDatagramTests(ITestOutputHelper output) : SockValueDatagramTests(LoopKinds.IoUring, output);

    // Transports/SockValueMethodTests.cs
    public sealed class IoUringSockValueMethodTests(ITestOutputHelper output) : SockValueMethodTests(LoopKinds.IoUring, output);

    // Transports/SockValueConnectionTests.cs
    public sealed class IoUringSockValueConnectionTests(ITestOutputHelper output) : SockValueConnectionTests(LoopKinds.IoUring, output);

    // Transports/StreamResourceTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringStreamResourceTests() : StreamResourceTests(LoopKinds.IoUring);

    // Transports/StreamTransportContractTests.cs
    public sealed class IoUringStreamTransportTests() : SocketStreamTransportContractTests(LoopKinds.IoUring);

    // Transports/TransportHandleOwnershipTests.cs
    [Collection(NativeFdCollection.Name)]
    public sealed class IoUringTransportHandleOwnershipTests() : TransportHandleOwnershipTests(LoopKinds.IoUring);

    // Transports/TransportDisposeAsyncTests.cs
    public sealed class IoUringTransportDisposeAsyncTests() : TransportDisposeAsyncTests(LoopKinds.IoUring);

    // Transports/UnixAndSockMethodTests.cs
    public sealed class IoUringUnixAndSockMethodTests() : UnixAndSockMethodTests(LoopKinds.IoUring);

    // Transports/WriteBacklogTests.cs
    public sealed class IoUringWriteBacklogReleaseTests() : WriteBacklogReleaseTests(LoopKinds.IoUring);
}
