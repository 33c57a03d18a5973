using System;
using System.Net;

namespace Tulip;

/// <summary>
/// A protocol for datagrams (UDP, UNIX datagram sockets): the PEP's <c>DatagramProtocol</c>.
/// </summary>
/// <remarks>
/// Call order: <c>ConnectionMade → (DatagramReceived | ErrorReceived)* → ConnectionLost</c>.
/// One call per datagram: never merged, never split.
/// </remarks>
public interface IDatagramProtocol : IBaseProtocol
{
    /// <summary>A datagram arrived from <paramref name="address"/>. The span is valid only during the call.</summary>
    void DatagramReceived(ReadOnlySpan<byte> data, EndPoint address);

    /// <summary>
    /// A send or receive failed (for instance an ICMP port-unreachable). The endpoint stays usable.
    /// </summary>
    void ErrorReceived(Exception exception);
}

/// <summary>
/// A protocol for a child process: the PEP's <c>SubprocessProtocol</c>.
/// </summary>
/// <remarks>
/// Call order: <c>ConnectionMade → (PipeDataReceived | PipeConnectionLost)* → ProcessExited → ConnectionLost</c>
/// (ConnectionLost once the process has exited and every pipe is closed).
/// </remarks>
public interface ISubprocessProtocol : IBaseProtocol
{
    /// <summary>The child wrote to its stdout (fd 1) or stderr (fd 2).</summary>
    void PipeDataReceived(int fd, ReadOnlySpan<byte> data);

    /// <summary>One of the child's pipes closed.</summary>
    void PipeConnectionLost(int fd, Exception? exception);

    /// <summary>The child exited.</summary>
    void ProcessExited();
}
