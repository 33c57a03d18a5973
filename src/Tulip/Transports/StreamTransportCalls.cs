using System;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Tulip;

/// <summary>
/// What the socket stream transports of every loop (selector, io_uring, proactor) check and call the
/// same way around their own I/O: the usage errors and the closing drop before a write, and the
/// protocol's answer to the peer's EOF.
/// </summary>
internal static class StreamTransportCalls
{
    /// <summary>
    /// The checks <c>Write</c> and <c>WriteLines</c> make first: a write after <c>WriteEof</c> or during
    /// <c>SendFileAsync</c> is a usage error; an empty one does nothing; on a closing transport it is
    /// dropped with asyncio's warning. True when the bytes are to go out.
    /// </summary>
    /// <exception cref="InvalidOperationException">After <c>WriteEof</c>, or while <c>SendFileAsync</c> sends.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // every Write's first lines
    public static bool BeginWrite(TransportLifecycle life, bool eof, bool sendingFile, bool empty)
    {
        if (eof || sendingFile)
        {
            ThrowWriteRefused(eof);
        }

        if (empty)
        {
            return false;
        }

        if (life.IsClosing)
        {
            life.DropWrite();
            return false;
        }

        return true;
    }

    [DoesNotReturn]
    private static void ThrowWriteRefused(bool eof) => throw new InvalidOperationException(eof
        ? "Cannot call Write() after WriteEof(): the write side is shut down."
        : "Cannot call Write() while SendFileAsync is sending on this transport: await it first.");

    /// <summary>
    /// The peer sent EOF: the protocol's <c>EofReceived</c>. True to keep the transport open for
    /// writing (half-closed); false to close it, also when the protocol threw (the transport has then
    /// ended with a fatal error, and the caller's close does nothing more).
    /// </summary>
    public static bool EofReceived(TransportLifecycle life, IBufferedProtocol? buffered, IProtocol? stream)
    {
        try
        {
            return buffered is not null ? buffered.EofReceived() : stream!.EofReceived();
        }
        catch (Exception ex)
        {
            life.FatalError(ex, "Fatal error: protocol.EofReceived() call failed.");
            return false;
        }
    }
}
