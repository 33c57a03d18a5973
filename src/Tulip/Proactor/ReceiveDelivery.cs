using System;

namespace Tulip;

/// <summary>What a proactor transport that reads (a socket's, a pipe's) tells <see cref="ReceiveDelivery"/>. Loop thread.</summary>
internal interface IReceiveOwner
{
    /// <summary>The protocol paused reading (a buffered protocol then gets no more of the chunk until it resumes).</summary>
    bool ReadingPaused { get; }

    /// <summary>The transport is closing: nothing more is delivered.</summary>
    bool DeliveryStopped { get; }

    /// <summary>The protocol's call failed: the transport ends with <paramref name="error"/>.</summary>
    void DeliveryFailed(Exception error, string message);
}

/// <summary>
/// Hands a completed read, held in the transport's own buffer, to the protocol: the one rule of every
/// proactor read transport. An <see cref="IProtocol"/> gets it in one <c>DataReceived</c>; an
/// <see cref="IBufferedProtocol"/> is filled through <c>GetBuffer</c>/<c>BufferUpdated</c> as many times as
/// it takes, and stops, the rest held, when the protocol pauses reading (as on the selector loop, which
/// reads once per GetBuffer) or the transport closes. The transport starts no other read while a chunk is
/// held, so the buffer is never written under the protocol, also when it pauses and resumes inside its call.
/// </summary>
internal static class ReceiveDelivery
{
    /// <summary>Delivers bytes [<paramref name="offset"/>, <paramref name="count"/>) of <paramref name="buffer"/>; true when all went.</summary>
    public static bool Deliver(IReceiveOwner owner, IBufferedProtocol? buffered, IProtocol? stream, byte[] buffer, ref int offset, int count) =>
        Deliver(owner, buffered, stream, new ReadOnlySpan<byte>(buffer, 0, count), ref offset);

    /// <summary>Delivers <paramref name="data"/> from <paramref name="offset"/> on (a receive held elsewhere: the io_uring loop's ring buffers); true when all went.</summary>
    public static bool Deliver(IReceiveOwner owner, IBufferedProtocol? buffered, IProtocol? stream, ReadOnlySpan<byte> data, ref int offset)
    {
        int count = data.Length;
        if (buffered is null)
        {
            offset = count;
            try
            {
                stream!.DataReceived(data);
            }
            catch (Exception ex)
            {
                owner.DeliveryFailed(ex, "Fatal error: protocol.DataReceived() call failed.");
                return false;
            }

            return !owner.DeliveryStopped;
        }

        while (offset < count)
        {
            Memory<byte> memory;
            try
            {
                memory = buffered.GetBuffer(count - offset);
                if (memory.IsEmpty)
                {
                    throw new InvalidOperationException("IBufferedProtocol.GetBuffer() returned an empty buffer.");
                }
            }
            catch (Exception ex)
            {
                owner.DeliveryFailed(ex, "Fatal error: protocol.GetBuffer() call failed.");
                return false;
            }

            int n = Math.Min(memory.Length, count - offset);
            data.Slice(offset, n).CopyTo(memory.Span);
            offset += n;
            try
            {
                buffered.BufferUpdated(n);
            }
            catch (Exception ex)
            {
                owner.DeliveryFailed(ex, "Fatal error: protocol.BufferUpdated() call failed.");
                return false;
            }

            if (owner.DeliveryStopped || (owner.ReadingPaused && offset < count))
            {
                return false;
            }
        }

        return true;
    }
}
