// The stream suites bound to the io_uring loop with ring writes on (LoopKinds.IoUringRingWrites,
// TULIP_URING_WRITES=ring): every stream write leaves by a ring send at the end of the loop iteration.
// The same loop in every other respect, so only the suites that write to stream connections are bound.
// These bindings alone: dotnet test --filter "FullyQualifiedName~RingWrites".

namespace Tulip.Tests.Streams
{
    public sealed class RingWritesDuplexPipeSocketTests() : DuplexPipeSocketTests(LoopKinds.IoUringRingWrites);

    public sealed class RingWritesFromAsyncioTests() : FromAsyncioTests(LoopKinds.IoUringRingWrites);

    public sealed class RingWritesFromKestrelTests() : FromKestrelTests(LoopKinds.IoUringRingWrites);

    public sealed class RingWritesStreamConnectionTests() : StreamConnectionTests(LoopKinds.IoUringRingWrites);

    public sealed class RingWritesStreamProtocolTests() : StreamProtocolTests(LoopKinds.IoUringRingWrites);

    public sealed class RingWritesStreamReaderWriterStreamTests() : StreamReaderWriterStreamTests(LoopKinds.IoUringRingWrites);

    public sealed class RingWritesStreamSocketTests() : StreamSocketTests(LoopKinds.IoUringRingWrites);

    public sealed class RingWritesTcpProxyTests() : TcpProxyTests(LoopKinds.IoUringRingWrites);
}

namespace Tulip.Tests.Tls
{
    public sealed class RingWritesTlsContractTests() : TlsContractTests(LoopKinds.IoUringRingWrites);

    public sealed class RingWritesTlsStreamsTests() : TlsStreamsContractTests(LoopKinds.IoUringRingWrites);

    [Collection(NativeFdCollection.Name)]
    public sealed class RingWritesTlsPeerInteropTests() : TlsPeerInteropTests(LoopKinds.IoUringRingWrites);
}

namespace Tulip.Tests.Transports
{
    [Collection(NativeFdCollection.Name)]
    public sealed class RingWritesAcceptedConnectionTests() : AcceptedConnectionTests(LoopKinds.IoUringRingWrites);

    [Collection(NativeFdCollection.Name)]
    public sealed class RingWritesConnectionChurnTests() : ConnectionChurnTests(LoopKinds.IoUringRingWrites);

    [Collection(NativeFdCollection.Name)]
    public sealed class RingWritesInteropTests() : InteropTests(LoopKinds.IoUringRingWrites);

    public sealed class RingWritesSendErrnoTests() : SendErrnoTests(LoopKinds.IoUringRingWrites);

    public sealed class RingWritesSendFileContractTests() : SendFileContractTests(LoopKinds.IoUringRingWrites);

    public sealed class RingWritesServerShutdownTests() : ServerShutdownTests(LoopKinds.IoUringRingWrites);

    [Collection(NativeFdCollection.Name)]
    public sealed class RingWritesStreamResourceTests() : StreamResourceTests(LoopKinds.IoUringRingWrites);

    public sealed class RingWritesStreamTransportTests() : SocketStreamTransportContractTests(LoopKinds.IoUringRingWrites);

    public sealed class RingWritesTransportDisposeAsyncTests() : TransportDisposeAsyncTests(LoopKinds.IoUringRingWrites);

    public sealed class RingWritesWriteBacklogReleaseTests() : WriteBacklogReleaseTests(LoopKinds.IoUringRingWrites);
}
