using System;

namespace Tulip;

/// <summary>
/// What every protocol has: the PEP's <c>BaseProtocol</c>. The loop calls these on the loop
/// thread, never concurrently.
/// </summary>
/// <remarks>
/// Call order: <see cref="ConnectionMade"/> once, then the kind-specific calls, then
/// <see cref="ConnectionLost"/> once. <see cref="PauseWriting"/> and <see cref="ResumeWriting"/>
/// alternate, starting with pause, anywhere in between.
/// </remarks>
public interface IBaseProtocol
{
    /// <summary>The transport is ready: keep it, to write and to close.</summary>
    void ConnectionMade(IBaseTransport transport);

    /// <summary>
    /// The connection is gone: closed by either side, aborted, or broken.
    /// <paramref name="exception"/> is null for a normal close (EOF, <c>Close()</c>), otherwise what broke it.
    /// </summary>
    void ConnectionLost(Exception? exception);

    /// <summary>The transport's write buffer went over its high-water mark: stop writing until <see cref="ResumeWriting"/>.</summary>
    void PauseWriting();

    /// <summary>The transport's write buffer drained to its low-water mark: writing may go on.</summary>
    void ResumeWriting();
}

/// <summary>
/// A protocol for a byte stream (TCP, UNIX sockets, pipes, TLS): the PEP's <c>Protocol</c>.
/// </summary>
/// <remarks>
/// Call order: <c>ConnectionMade → DataReceived* → EofReceived? → ConnectionLost</c>.
/// Called on the loop thread only. Data is delivered as it arrives, in chunks of any size:
/// a message may be split across calls or several may come in one.
/// </remarks>
public interface IProtocol : IBaseProtocol
{
    /// <summary>
    /// Bytes arrived. The span is only valid during the call: copy what must be kept.
    /// </summary>
    void DataReceived(ReadOnlySpan<byte> data);

    /// <summary>
    /// The peer closed its write side (it will send no more). Return true to keep the write side
    /// open (half-close); false, and the transport closes itself.
    /// </summary>
    bool EofReceived();
}

/// <summary>
/// A stream protocol that supplies the memory the transport reads into, so data lands in the
/// protocol's own buffer without a copy: asyncio's <c>BufferedProtocol</c>.
/// </summary>
/// <remarks>
/// Call order: <c>ConnectionMade → (GetBuffer → BufferUpdated)* → EofReceived? → ConnectionLost</c>.
/// </remarks>
public interface IBufferedProtocol : IBaseProtocol
{
    /// <summary>
    /// Returns the memory the next read fills. <paramref name="sizeHint"/> is a suggestion
    /// (-1 if the transport has none); the memory must not be empty.
    /// </summary>
    Memory<byte> GetBuffer(int sizeHint);

    /// <summary><paramref name="bytesWritten"/> bytes were written at the start of the last buffer.</summary>
    void BufferUpdated(int bytesWritten);

    /// <summary>As <see cref="IProtocol.EofReceived"/>: return true to keep the write side open.</summary>
    bool EofReceived();
}

/// <summary>
/// A stream protocol with no-op defaults, to override what is needed.
/// </summary>
public abstract class Protocol : IProtocol
{
    /// <inheritdoc/>
    public virtual void ConnectionMade(IBaseTransport transport)
    {
    }

    /// <inheritdoc/>
    public virtual void DataReceived(ReadOnlySpan<byte> data)
    {
    }

    /// <inheritdoc/>
    public virtual bool EofReceived() => false;

    /// <inheritdoc/>
    public virtual void ConnectionLost(Exception? exception)
    {
    }

    /// <inheritdoc/>
    public virtual void PauseWriting()
    {
    }

    /// <inheritdoc/>
    public virtual void ResumeWriting()
    {
    }
}
