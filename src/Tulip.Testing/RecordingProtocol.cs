using System;
using System.Collections.Generic;
using System.Text;
using Tulip.Testing.Internal;

namespace Tulip.Testing;

/// <summary>
/// A stream protocol that records every call it gets, to assert on the call order and on what
/// arrived: the other end of a <see cref="ConnectedPair"/>, or a stand-in peer for the protocol
/// under test. Derive from it to add behaviour (call the base members to keep the record).
/// </summary>
public class RecordingProtocol : IProtocol
{
    private readonly ByteQueue _received = new();
    private readonly List<string> _events = new();
    private readonly List<byte[]> _chunks = new();

    /// <summary>The transport given to <see cref="ConnectionMade"/>, or null before.</summary>
    public ITransport? Transport { get; private set; }

    /// <summary>The calls in order: "made", "data", "eof", "lost", "pause", "resume".</summary>
    public IReadOnlyList<string> Events => _events;

    /// <summary>Every chunk <see cref="DataReceived"/> got, in order, as delivered.</summary>
    public IReadOnlyList<byte[]> Chunks => _chunks;

    /// <summary>All bytes received, concatenated (until <see cref="TakeReceived"/>).</summary>
    public byte[] Received => _received.Span.ToArray();

    /// <summary><see cref="Received"/> decoded as UTF-8.</summary>
    public string ReceivedText => Encoding.UTF8.GetString(_received.Span);

    /// <summary>True once <see cref="EofReceived"/> was called.</summary>
    public bool GotEof { get; private set; }

    /// <summary>True once <see cref="ConnectionLost"/> was called.</summary>
    public bool IsConnectionLost { get; private set; }

    /// <summary>The exception <see cref="ConnectionLost"/> got (null for a clean close).</summary>
    public Exception? LostException { get; private set; }

    /// <summary>True while writing is paused by the transport.</summary>
    public bool IsWritingPaused { get; private set; }

    /// <summary>What <see cref="EofReceived"/> returns: false (the default) closes the transport, true keeps the write side open.</summary>
    public bool KeepOpenOnEof { get; set; }

    /// <summary>Returns all bytes received since the last call, and forgets them.</summary>
    public byte[] TakeReceived() => _received.Take(int.MaxValue);

    /// <summary>Returns all bytes received since the last call as UTF-8 text, and forgets them.</summary>
    public string TakeReceivedText() => Encoding.UTF8.GetString(TakeReceived());

    /// <inheritdoc/>
    public virtual void ConnectionMade(IBaseTransport transport)
    {
        Transport = transport as ITransport;
        _events.Add("made");
    }

    /// <inheritdoc/>
    public virtual void DataReceived(ReadOnlySpan<byte> data)
    {
        _events.Add("data");
        _chunks.Add(data.ToArray());
        _received.Append(data);
    }

    /// <inheritdoc/>
    public virtual bool EofReceived()
    {
        _events.Add("eof");
        GotEof = true;
        return KeepOpenOnEof;
    }

    /// <inheritdoc/>
    public virtual void ConnectionLost(Exception? exception)
    {
        _events.Add("lost");
        IsConnectionLost = true;
        LostException = exception;
    }

    /// <inheritdoc/>
    public virtual void PauseWriting()
    {
        _events.Add("pause");
        IsWritingPaused = true;
    }

    /// <inheritdoc/>
    public virtual void ResumeWriting()
    {
        _events.Add("resume");
        IsWritingPaused = false;
    }
}
