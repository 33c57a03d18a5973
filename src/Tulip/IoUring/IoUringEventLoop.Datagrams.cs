using System.Net;
using System.Net.Sockets;

namespace Tulip;

// The io_uring loop's datagram endpoints: completion transports (RECVMSG/SENDMSG on the ring) where the
// stream transports are, the selector loop's readiness ones otherwise.
public sealed partial class IoUringEventLoop
{
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
