using System;
using System.Net;
using System.Net.Sockets;

namespace Tulip;

// The transport seams (asyncio's _make_socket_transport, _make_datagram_transport, _start_serving):
// what the platform-neutral connection code of BaseEventLoop.Streams.cs and .Datagrams.cs asks of
// the multiplexer below it. A new loop implements these three hooks, its transports, and the Sock*
// primitives the connection code awaits (SockConnectAsync; SockAcceptAsync and the rest for the
// PEP's socket methods); name resolution, happy eyeballs, binding, listening, address pairing,
// protocol creation, cancellation and the server's bookkeeping are written once, here.
//
// MakeSslTransport (asyncio's _make_ssl_transport) joins this set beside MakeSocketTransport: as in
// asyncio it puts the TLS protocol (sslproto) between the transport MakeSocketTransport returns and
// the user's protocol, so its default serves every multiplexer. asyncio's _make_subprocess_transport
// is not a hook here but a registry feature, ISubprocessTransportFactory (BaseEventLoop.Subprocesses.cs),
// as the pipes are: each kind of loop registers the implementation that watches a child its way.
//
// The hooks are protected and take only public types, so a loop outside this assembly derives from
// BaseEventLoop and fills them as SelectorEventLoop does. Each default throws NotSupportedException
// (see Unsupported), as the Sock* defaults do: a loop without sockets, such as Tulip.Testing's
// TestEventLoop, refuses connections instead of half-making them.
public abstract partial class BaseEventLoop
{
    /// <summary>
    /// Makes the stream transport of a connected socket and joins it to <paramref name="protocol"/>
    /// (asyncio's <c>_make_socket_transport</c>). Used by <see cref="CreateConnectionAsync"/>,
    /// <see cref="CreateUnixConnectionAsync"/> and <c>ConnectAcceptedSocketAsync</c>; a server's
    /// accepted connections get theirs from <see cref="StartAccepting"/>, which may make them its own way.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Called on the loop thread. The transport must not call the protocol from inside this method:
    /// it schedules <see cref="IBaseProtocol.ConnectionMade"/> for a later callback (as asyncio's
    /// transports do with <c>call_soon</c>), then completes <paramref name="waiter"/>. From then on
    /// it follows the PEP's order (ConnectionMade, DataReceived*, EofReceived?, ConnectionLost), and
    /// closes the socket after ConnectionLost.
    /// </para>
    /// <para>
    /// The caller closes the transport (<see cref="IBaseTransport.Close"/>) if the call that wanted
    /// it fails or is cancelled after this method returned; a transport closed before ConnectionMade
    /// ran still calls ConnectionMade, then ConnectionLost, so the protocol sees a whole lifetime.
    /// The default throws <see cref="NotSupportedException"/>.
    /// </para>
    /// </remarks>
    /// <param name="socket">A connected, non-blocking stream socket (TCP or UNIX). The transport owns
    /// it once this method returns; if this method throws, the caller closes it.</param>
    /// <param name="protocol">The protocol the transport calls.</param>
    /// <param name="waiter">Null, or a future to complete once ConnectionMade has returned (with
    /// <see cref="Future{T}.TrySetResult"/>: the caller may have cancelled it), or to fail with the
    /// exception that kept the transport from starting.</param>
    /// <param name="connectionLost">Null, or a callback to call once, on the loop thread, with the
    /// transport after the protocol's ConnectionLost has returned: the server that accepted the
    /// connection counts its clients by it (asyncio's <c>Server._detach</c>).</param>
    /// <returns>The transport, never null.</returns>
    /// <exception cref="NotSupportedException">The loop has no socket transports.</exception>
    protected virtual ITransport MakeSocketTransport(Socket socket, IBaseProtocol protocol, Future<VoidResult>? waiter,
        Action<ITransport>? connectionLost) => throw Unsupported();

    /// <summary>
    /// Makes the datagram transport of a socket and joins it to <paramref name="protocol"/>
    /// (asyncio's <c>_make_datagram_transport</c>), for <see cref="CreateDatagramEndpointAsync"/>.
    /// </summary>
    /// <remarks>As <see cref="MakeSocketTransport"/>: called on the loop thread, ConnectionMade
    /// scheduled and then <paramref name="waiter"/> completed, the socket closed after
    /// ConnectionLost, the transport closed by the caller if the call fails or is cancelled later.
    /// The default throws <see cref="NotSupportedException"/>.</remarks>
    /// <param name="socket">A non-blocking datagram socket (UDP or UNIX), bound and connected as the caller asked.
    /// The transport owns it once this method returns; if this method throws, the caller closes it.</param>
    /// <param name="protocol">The protocol the transport calls.</param>
    /// <param name="remote">The default destination of <see cref="IDatagramTransport.SendTo"/>, resolved;
    /// null when none was given. The socket is connected to it unless broadcasting was asked for.</param>
    /// <param name="remoteAsGiven">The same address as the caller gave it (a <see cref="DnsEndPoint"/>, say):
    /// <c>SendTo</c> to it counts as a send to <paramref name="remote"/>. Null when none was given.</param>
    /// <param name="waiter">As for <see cref="MakeSocketTransport"/>.</param>
    /// <returns>The transport, never null.</returns>
    /// <exception cref="NotSupportedException">The loop has no datagram transports.</exception>
    protected virtual IDatagramTransport MakeDatagramTransport(Socket socket, IDatagramProtocol protocol, EndPoint? remote, EndPoint? remoteAsGiven,
        Future<VoidResult>? waiter) => throw Unsupported();

    /// <summary>
    /// Starts accepting connections on <paramref name="listener"/>, makes each one's stream transport
    /// joined to a protocol from <paramref name="protocolFactory"/>, and hands the transport to
    /// <paramref name="accepted"/>, until the returned object is disposed (asyncio's
    /// <c>_start_serving</c>, <c>_accept_connection</c> and <c>_stop_serving</c>): the server loop of a
    /// multiplexer, a readiness watch on a selector loop, a chain of accept operations on a completion loop.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Called on the loop thread when a server starts serving; the server disposes the returned
    /// object (on the loop thread) before it closes <paramref name="listener"/>, and after that no
    /// more connections may be accepted. The multiplexer makes the accepted connection itself, as
    /// asyncio's selector loop does in <c>_accept_connection</c>: it may keep it as a bare descriptor
    /// with no <see cref="Socket"/> (the selector loop does, which saves about 400 B per connection;
    /// <c>GetExtraInfo("socket")</c> then makes one on request). For each connection, on the loop
    /// thread, it makes the connection non-blocking, sets TCP_NODELAY when
    /// <see cref="ServerOptions.NoDelay"/> asks for it on a TCP connection, calls
    /// <paramref name="protocolFactory"/>, makes the transport as <see cref="MakeSocketTransport"/>
    /// would (ConnectionMade scheduled, never called from inside this work) with
    /// <paramref name="connectionLost"/> as its lost callback, and calls <paramref name="accepted"/>
    /// with it. If the factory or the transport fails, it closes the connection and reports the
    /// failure to <see cref="CallExceptionHandler"/> ("Error on transport creation for incoming
    /// connection", with the protocol when there is one); the server goes on. The callbacks may close
    /// the server.
    /// </para>
    /// <para>
    /// Accept errors are the multiplexer's to handle, as asyncio's: a connection reset or aborted
    /// before it was accepted is skipped; running out of descriptors or memory (EMFILE, ENFILE,
    /// ENOBUFS, ENOMEM) is reported once to <see cref="CallExceptionHandler"/> and the listener
    /// rests a while before accepting again, so a full fd table never turns into a busy loop.
    /// The default throws <see cref="NotSupportedException"/>.
    /// </para>
    /// </remarks>
    /// <param name="listener">A bound, listening, non-blocking stream socket.</param>
    /// <param name="options">The server's options: <see cref="ServerOptions.Backlog"/> (a readiness
    /// loop accepts up to this many per wake-up) and <see cref="ServerOptions.NoDelay"/>.</param>
    /// <param name="protocolFactory">Makes each connection's protocol; it throws rather than return null.</param>
    /// <param name="accepted">Takes each transport made, once it is made: the server counts its clients by it
    /// (asyncio's <c>Server._attach</c>).</param>
    /// <param name="connectionLost">The transport's lost callback, as for <see cref="MakeSocketTransport"/>:
    /// called once, on the loop thread, after the protocol's ConnectionLost has returned (asyncio's
    /// <c>Server._detach</c>).</param>
    /// <returns>What stops the accepting when disposed.</returns>
    /// <exception cref="NotSupportedException">The loop cannot serve.</exception>
    protected virtual IDisposable StartAccepting(Socket listener, ServerOptions options, Func<IBaseProtocol> protocolFactory,
        Action<ITransport> accepted, Action<ITransport> connectionLost) => throw Unsupported();
}
