using System;
using System.IO;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading;
using Tulip.Extras.Internal;

namespace Tulip.Extras;

/// <summary>
/// Message transports over AF_UNIX SOCK_SEQPACKET sockets (reliable, ordered, connection-based, and
/// message-preserving): a transport the loop does not offer, added without a new loop method
/// (seed 002). The entry points take the loop as an argument and find the implementation for it in
/// <c>loop.Transports</c>: the one registered there, else <see cref="Readiness"/> on a loop that
/// watches fds, else <see cref="Completion"/> on a loop that runs .NET I/O completions.
/// </summary>
/// <example>
/// <code>
/// var (a, b) = SeqPacket.CreatePair();
/// var (transport, protocol) = await SeqPacket.WrapAsync(loop, () => new MyProtocol(), a);
/// transport.Send("hello"u8);                       // one message, one MessageReceived at b's end
/// </code>
/// </example>
public static class SeqPacket
{
    /// <summary>The implementation on fd readiness (<see cref="IReadinessEventLoop"/>): non-blocking sends and receives when the fd is ready.</summary>
    public static ISeqPacketTransportFactory Readiness { get; } = new ReadinessSeqPacketFactory();

    /// <summary>
    /// The implementation on completions (<see cref="ICompletionEventLoop"/>): <c>Socket.ReceiveAsync</c>
    /// and <c>SendAsync</c>, completed on the loop thread. For a proactor loop, and any loop without fd readiness.
    /// </summary>
    public static ISeqPacketTransportFactory Completion { get; } = new CompletionSeqPacketFactory();

    /// <summary>The implementation <paramref name="loop"/> uses: registered, or picked by its capabilities.</summary>
    /// <exception cref="NotSupportedException">The loop has neither capability and nothing is registered.</exception>
    public static ISeqPacketTransportFactory ImplementationFor(IEventLoop loop)
    {
        ArgumentNullException.ThrowIfNull(loop);
        return loop.Transports.Require<ISeqPacketTransportFactory>(static l => l switch
        {
            IReadinessEventLoop => Readiness,
            ICompletionEventLoop => Completion,
            _ => null,
        });
    }

    /// <summary>Connects to the SOCK_SEQPACKET listener at <paramref name="path"/> and joins the connection to a new protocol.</summary>
    /// <exception cref="SocketException">Nothing listens there, or the listener is of another socket type.</exception>
    public static async LoopTask<(IMessageTransport Transport, TProtocol Protocol)> ConnectAsync<TProtocol>(IEventLoop loop,
        Func<TProtocol> protocolFactory, string path, CancellationToken cancellationToken = default)
        where TProtocol : IMessageProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var implementation = ImplementationFor(loop);
        var socket = await implementation.ConnectAsync(loop, new UnixDomainSocketEndPoint(path), cancellationToken);
        return await WrapAsync(loop, protocolFactory, socket, cancellationToken);
    }

    /// <summary>
    /// Joins a connected SOCK_SEQPACKET socket (accepted, or from <see cref="CreatePair"/>) to a new
    /// protocol. The transport owns the socket from then on; if this throws, the socket is closed.
    /// </summary>
    /// <exception cref="ArgumentException">The socket is not a connected SOCK_SEQPACKET socket.</exception>
    public static async LoopTask<(IMessageTransport Transport, TProtocol Protocol)> WrapAsync<TProtocol>(IEventLoop loop,
        Func<TProtocol> protocolFactory, Socket socket, CancellationToken cancellationToken = default)
        where TProtocol : IMessageProtocol
    {
        ArgumentNullException.ThrowIfNull(protocolFactory);
        ArgumentNullException.ThrowIfNull(socket);
        IMessageTransport transport;
        TProtocol protocol;
        var connected = loop.CreateFuture<bool>();
        try
        {
            if (socket.SocketType != SocketType.Seqpacket || !socket.Connected)
            {
                throw new ArgumentException(
                    $"A message transport needs a connected SOCK_SEQPACKET socket; got a {socket.SocketType} socket{(socket.Connected ? "" : " that is not connected")}.",
                    nameof(socket));
            }

            var implementation = ImplementationFor(loop);
            protocol = protocolFactory() ?? throw new InvalidOperationException("The protocol factory returned null.");
            transport = implementation.Attach(loop, socket, protocol, connected);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        using (cancellationToken.Register(static f => ((Future<bool>)f!).Cancel(), connected, useSynchronizationContext: true))
        {
            try
            {
                await connected;
            }
            catch
            {
                transport.Abort();
                throw;
            }
        }

        return (transport, protocol);
    }

    /// <summary>Two connected SOCK_SEQPACKET sockets (socketpair(2)), close-on-exec: a message channel within the process or to a child.</summary>
    /// <exception cref="IOException">socketpair failed (EMFILE: out of fds).</exception>
    public static unsafe (Socket A, Socket B) CreatePair()
    {
        int* fds = stackalloc int[2];
        if (Interop.SocketPair(Interop.AF_UNIX, Interop.SOCK_SEQPACKET | Interop.SOCK_CLOEXEC, 0, fds) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"socketpair(AF_UNIX, SOCK_SEQPACKET) failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
        }

        return (new Socket(new SafeSocketHandle(fds[0], ownsHandle: true)), new Socket(new SafeSocketHandle(fds[1], ownsHandle: true)));
    }
}
