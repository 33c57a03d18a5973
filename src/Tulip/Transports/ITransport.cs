using System;
using System.Collections.Generic;
using System.Threading.Tasks;

namespace Tulip;

/// <summary>
/// What every transport has: the PEP's <c>BaseTransport</c>. Transports are made by the loop
/// (<c>CreateConnectionAsync</c>, <c>CreateServerAsync</c>, ...): applications never construct them.
/// All members are for the loop thread.
/// </summary>
/// <remarks>
/// <c>await using</c> a transport closes it and waits for the end of the connection: the library's
/// socket, datagram and pipe transports (and any transport that composes <see cref="TransportLifecycle"/>
/// and returns <see cref="TransportLifecycle.CloseAndWaitAsync"/>) complete their
/// <see cref="IAsyncDisposable.DisposeAsync"/> once <see cref="IBaseProtocol.ConnectionLost"/> has run and
/// the fd is closed; the TLS transports once the transport beneath is gone and ConnectionLost has run;
/// the subprocess transports once the child (killed if it still ran, as <see cref="IBaseTransport.Close"/>
/// does) is reaped and ConnectionLost has run. A transport that does not implement it gets the default,
/// which only closes.
/// </remarks>
public interface IBaseTransport : IAsyncDisposable
{
    /// <summary>
    /// Optional information: "peername", "sockname", "socket", "sslcontext", "peercert", "pipe",
    /// "subprocess"... Returns <paramref name="defaultValue"/> for names the transport does not know.
    /// </summary>
    object? GetExtraInfo(string name, object? defaultValue = null);

    /// <summary>True once the transport is closing or closed.</summary>
    bool IsClosing { get; }

    /// <summary>
    /// Closes the transport: buffered data is still sent, then the connection closes and the
    /// protocol's <see cref="IBaseProtocol.ConnectionLost"/> is called with null. Idempotent.
    /// </summary>
    void Close();

    /// <summary>Replaces the protocol that receives the transport's calls.</summary>
    void SetProtocol(IBaseProtocol protocol);

    /// <summary>The protocol that receives the transport's calls.</summary>
    IBaseProtocol GetProtocol();

    /// <summary>
    /// Closes the transport (<see cref="Close"/>) and, where the transport can tell, waits until the
    /// connection is over (see the interface remarks); this default only closes.
    /// </summary>
    // CA1816: a transport holds no finalizable state of the interface's; SuppressFinalize is the implementer's business.
#pragma warning disable CA1816
    ValueTask IAsyncDisposable.DisposeAsync()
#pragma warning restore CA1816
    {
        Close();
        return default;
    }
}

/// <summary>The read side of a stream transport: the PEP's <c>ReadTransport</c>.</summary>
public interface IReadTransport : IBaseTransport
{
    /// <summary>True unless reading is paused.</summary>
    bool IsReading { get; }

    /// <summary>Stops delivering data to the protocol until <see cref="ResumeReading"/>. Idempotent.</summary>
    void PauseReading();

    /// <summary>Delivers data again after <see cref="PauseReading"/>. Idempotent.</summary>
    void ResumeReading();
}

/// <summary>The write side of a stream transport: the PEP's <c>WriteTransport</c>.</summary>
public interface IWriteTransport : IBaseTransport
{
    /// <summary>
    /// Sends bytes. Never blocks: what the kernel does not take at once is buffered and sent when
    /// it can be. The bytes are copied if they must be buffered, so the caller may reuse its memory.
    /// </summary>
    /// <remarks>The library's transports buffer at most <see cref="Array.MaxLength"/> bytes (about 2 GiB):
    /// a writer that honours <see cref="IBaseProtocol.PauseWriting"/> never comes near it.</remarks>
    /// <exception cref="InvalidOperationException">Called after <see cref="WriteEof"/>; or the write buffer would
    /// grow past its limit (the peer is not reading), in which case nothing of this write is buffered.</exception>
    void Write(ReadOnlySpan<byte> data);

    /// <summary>Sends several buffers in order, as one vectored write where possible.</summary>
    /// <exception cref="InvalidOperationException">As for <see cref="Write"/>; the buffers before the one that
    /// would pass the limit stay buffered.</exception>
    void WriteLines(IEnumerable<ReadOnlyMemory<byte>> data);

    /// <summary>Closes the write side after buffered data is sent (a TCP FIN); reading goes on.</summary>
    /// <exception cref="NotSupportedException">The transport cannot half-close (see <see cref="CanWriteEof"/>).</exception>
    void WriteEof();

    /// <summary>True if <see cref="WriteEof"/> is supported (TCP: yes; TLS: no).</summary>
    bool CanWriteEof { get; }

    /// <summary>
    /// Closes at once: buffered data is dropped (TCP sends RST) and the protocol's
    /// <see cref="IBaseProtocol.ConnectionLost"/> is called with null soon after.
    /// </summary>
    void Abort();

    /// <summary>Bytes buffered and not yet sent.</summary>
    int GetWriteBufferSize();

    /// <summary>The current low- and high-water marks of the write buffer.</summary>
    (int Low, int High) GetWriteBufferLimits();

    /// <summary>
    /// Sets the marks: above <paramref name="high"/> the protocol's <see cref="IBaseProtocol.PauseWriting"/>
    /// is called, at or below <paramref name="low"/> its <see cref="IBaseProtocol.ResumeWriting"/>.
    /// </summary>
    /// <param name="high">Defaults to 64 KiB, or four times <paramref name="low"/> if only that is given.</param>
    /// <param name="low">Defaults to a quarter of <paramref name="high"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">The marks are negative or low exceeds high.</exception>
    void SetWriteBufferLimits(int? high = null, int? low = null);
}

/// <summary>
/// A bidirectional stream transport (TCP, UNIX sockets, TLS): the PEP's <c>Transport</c>.
/// </summary>
public interface ITransport : IReadTransport, IWriteTransport
{
}

/// <summary>A datagram transport (UDP, UNIX datagrams): the PEP's <c>DatagramTransport</c>.</summary>
/// <remarks>
/// Each <see cref="SendTo"/> is one datagram, delivered whole or not at all: datagrams are never
/// merged or split, and one that must wait is buffered as it is. Errors of single sends and
/// receives (an ICMP port unreachable, a datagram too large) go to the protocol's
/// <see cref="IDatagramProtocol.ErrorReceived"/> and the endpoint stays usable. All members are for
/// the loop thread.
/// </remarks>
public interface IDatagramTransport : IBaseTransport
{
    /// <summary>
    /// Sends one datagram to <paramref name="address"/>, or to the remote address given at creation
    /// when null. Never blocks: a datagram the kernel does not take at once is copied and buffered,
    /// and sent, in order, when the socket is writable. An empty datagram is sent too.
    /// </summary>
    /// <param name="data">The datagram. Copied if it must be buffered, so the caller may reuse its memory.</param>
    /// <param name="address">
    /// Where to send it: a resolved address of the socket's family (<see cref="System.Net.IPEndPoint"/>,
    /// <see cref="System.Net.Sockets.UnixDomainSocketEndPoint"/>); null for the remote address given at creation.
    /// </param>
    /// <exception cref="ArgumentException">
    /// The endpoint was created with a remote address and another was given; or it has none and none
    /// was given; or the address is of another family than the socket's, or a name to resolve.
    /// </exception>
    /// <exception cref="InvalidOperationException">The transport was closed or aborted.</exception>
    void SendTo(ReadOnlySpan<byte> data, System.Net.EndPoint? address = null);

    /// <summary>
    /// Closes at once: buffered datagrams are dropped and the protocol's
    /// <see cref="IBaseProtocol.ConnectionLost"/> is called with null soon after.
    /// </summary>
    void Abort();

    /// <summary>
    /// Bytes buffered and not yet sent, counting 8 bytes of overhead per datagram (as asyncio does,
    /// so that empty datagrams count too).
    /// </summary>
    int GetWriteBufferSize();

    /// <summary>The current low- and high-water marks of the write buffer.</summary>
    (int Low, int High) GetWriteBufferLimits();

    /// <summary>Sets the write-buffer marks, as for <see cref="IWriteTransport.SetWriteBufferLimits"/>.</summary>
    /// <param name="high">Defaults to 64 KiB, or four times <paramref name="low"/> if only that is given.</param>
    /// <param name="low">Defaults to a quarter of <paramref name="high"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">The marks are negative or low exceeds high.</exception>
    void SetWriteBufferLimits(int? high = null, int? low = null);
}

/// <summary>A child process, with its pipes: the PEP's <c>SubprocessTransport</c>.</summary>
/// <remarks>
/// Made by <see cref="IEventLoop.SubprocessExecAsync{TProtocol}"/> and <see cref="IEventLoop.SubprocessShellAsync{TProtocol}"/>.
/// All members are for the loop thread. The child is watched until it exits and is reaped, so it never stays a zombie;
/// a signal is never sent to a child already reaped, whose pid may belong to another process by then.
/// <see cref="IBaseTransport.Close"/> closes the pipes and kills (SIGKILL) a child that still runs; the protocol's
/// ConnectionLost follows once the child is reaped and every pipe has closed. Close the transport (and let the loop
/// run until ConnectionLost) before closing the loop: a child still running when its loop closes is neither killed nor reaped.
/// </remarks>
public interface ISubprocessTransport : IBaseTransport
{
    /// <summary>The child's process id.</summary>
    int Pid { get; }

    /// <summary>The exit code once the child has exited and been reaped, or null while it runs; negative: the child was
    /// killed by that signal (-9 for SIGKILL), as asyncio reports it.</summary>
    int? ReturnCode { get; }

    /// <summary>The transport of the child's pipe <paramref name="fd"/>: an <see cref="IWriteTransport"/> for 0, an
    /// <see cref="IReadTransport"/> for 1 and 2; null if that fd is not piped.</summary>
    IBaseTransport? GetPipeTransport(int fd);

    /// <summary>Sends <paramref name="signal"/> (a Linux signal number) to the child; nothing once it has been reaped.</summary>
    /// <exception cref="ArgumentException">The signal number is invalid.</exception>
    void SendSignal(int signal);

    /// <summary>Asks the child to stop (SIGTERM); nothing once it has been reaped.</summary>
    void Terminate();

    /// <summary>Stops the child (SIGKILL); nothing once it has been reaped.</summary>
    void Kill();
}
