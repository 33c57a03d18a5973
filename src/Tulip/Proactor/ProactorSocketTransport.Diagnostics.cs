using System.Globalization;

namespace Tulip;

internal sealed partial class ProactorSocketTransport
{
    /// <summary>
    /// One line of everything that decides whether this transport reads or writes next: the read side's
    /// pause, its receive (outstanding, held, how much of it went), the write side's send in flight and
    /// backlog, the flow control's pause and the lifecycle state. For a hang guard to say where a
    /// connection stopped; loop thread.
    /// </summary>
    internal string DescribeState() => string.Create(CultureInfo.InvariantCulture,
        $"{_life.StateName} started={_life.IsStarted} lost={_life.IsConnectionLost} | read: paused={_readingPaused} " +
        $"recvPending={_recv.Pending} held={_recvHeld} heldOffset={_heldOffset} lastRecv={_recv.SocketError}/{_recv.BytesTransferred} " +
        $"deliverScheduled={_deliverScheduled} | write: sendPending={_send.Pending} inFlight={_sendEnd - _sendStart} " +
        $"backlog={_bufEnd - _bufStart} protocolPaused={_flow.IsPaused} limits={_flow.Limits} eof={_eof}/{_eofSent} " +
        $"| socketClosed={_socketClosed} undelivered={UndeliveredBytes}");
}
