using System;
using System.Net;
using System.Net.Sockets;
using Tulip.IoUring;

namespace Tulip;

// The io_uring loop's datagram endpoints: completion transports (RECVMSG/SENDMSG on the ring) where the
// stream transports are, the selector loop's readiness ones otherwise.
public sealed partial class IoUringEventLoop
{
    /// <summary>Buffers in the UNIX datagram group (<see cref="UnixDatagramBuffers"/>).</summary>
    internal const int UnixDatagramBufferCount = 16;

    /// <summary>The UNIX datagram group's id (the stream and IP group is 0).</summary>
    private const ushort UnixDatagramGroupId = 1;

    private IoUringBufferRing? _unixDatagramBuffers;
    private int _unixDatagramBufferCount = UnixDatagramBufferCount;

    /// <summary>
    /// The provided buffers IP datagram endpoints receive into: the stream group itself. Its 64 KiB
    /// buffers hold any UDP datagram (65,507 bytes over IPv4, 65,527 over IPv6), so the loop's UDP
    /// endpoints and connections share one pool, and an idle endpoint holds none of it.
    /// </summary>
    internal IoUringBufferRing IpDatagramBuffers => ReceiveBuffers;

    /// <summary>
    /// The provided buffers UNIX datagram endpoints receive into: a second group of
    /// <see cref="DatagramAddressing.MaxUnixDatagramSize"/>-byte buffers (asyncio's <c>max_size</c>; a
    /// UNIX datagram may be larger than the stream group's 64 KiB), registered the first time the loop
    /// opens a UNIX datagram endpoint. One group for all of the loop's UNIX endpoints, not a buffer per
    /// endpoint: an endpoint holds a buffer only from its datagram's arrival until the protocol has had
    /// it, so a few buffers serve any number of endpoints, idle ones hold none, and only the pages a
    /// datagram wrote are ever resident (the ring hands out the buffers given back last).
    /// </summary>
    internal IoUringBufferRing UnixDatagramBuffers =>
        _unixDatagramBuffers ??= new IoUringBufferRing(Uring.Ring, UnixDatagramGroupId, _unixDatagramBufferCount, DatagramAddressing.MaxUnixDatagramSize);

    /// <summary>UNIX datagram receive buffers held by transports (delivered to no protocol yet): for tests.</summary>
    internal int UnixDatagramBuffersHeld => _unixDatagramBuffers?.Outstanding ?? 0;

    /// <summary>RECVMSG and SENDMSG operations the datagram transports submitted: for tests, proof the completion path is the one used.</summary>
    internal long DatagramOperationsSubmitted { get; set; }

    /// <summary>Datagrams read with a non-blocking recvfrom after a receive completion said the socket held more: for tests.</summary>
    internal long DatagramsReadOn { get; set; }

    /// <inheritdoc/>
    /// <remarks>An <see cref="IoUringDatagramTransport"/> (completions), or where the kernel lacks provided-buffer rings the selector loop's readiness transport.</remarks>
    protected override IDatagramTransport MakeDatagramTransport(Socket socket, IDatagramProtocol protocol, EndPoint? remote, EndPoint? remoteAsGiven,
        Future<VoidResult>? waiter) =>
        CompletionTransports
            ? new IoUringDatagramTransport(this, socket, protocol, remote, remoteAsGiven, waiter)
            : base.MakeDatagramTransport(socket, protocol, remote, remoteAsGiven, waiter);
}
