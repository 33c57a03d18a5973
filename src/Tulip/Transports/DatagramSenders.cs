using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Sockets;

namespace Tulip;

/// <summary>
/// The senders of one datagram endpoint's receives, each made into an <see cref="EndPoint"/> once and
/// cached, so a steady peer costs no allocation per datagram. A receive (recvfrom, or a ring recvmsg)
/// writes the raw address into <see cref="Scratch"/>; <see cref="SenderOf"/> maps the bytes it wrote.
/// Used by the readiness and the io_uring datagram transports; the proactor gets the runtime's
/// <see cref="EndPoint"/>s and keeps a cache of its own.
/// </summary>
internal sealed class DatagramSenders
{
    private readonly AddressFamily _family;
    private readonly EndPoint _template;
    private readonly SocketAddress _scratch;
    private readonly Dictionary<SocketAddress, EndPoint> _known = new(RawAddressComparer.Instance);
    private EndPoint? _unnamed;

    /// <param name="family">The socket's family: the size of its raw addresses.</param>
    /// <param name="template">An endpoint of the family, whose <see cref="EndPoint.Create"/> makes the others.</param>
    public DatagramSenders(AddressFamily family, EndPoint template)
    {
        _family = family;
        _template = template;
        _scratch = new SocketAddress(family, family switch
        {
            AddressFamily.Unix => 110,           // sizeof(struct sockaddr_un)
            AddressFamily.InterNetworkV6 => 28,  // sizeof(struct sockaddr_in6)
            _ => 16,                             // sizeof(struct sockaddr_in)
        });
    }

    /// <summary>Where a receive writes the sender's raw address (its whole length is the room offered).</summary>
    public Memory<byte> Scratch => _scratch.Buffer;

    /// <summary>The <see cref="EndPoint"/> for the <paramref name="length"/> bytes of address the receive wrote into <see cref="Scratch"/>.</summary>
    public EndPoint SenderOf(int length)
    {
        if (_family == AddressFamily.Unix && length <= 2)
        {
            // An unbound UNIX sender has no name (asyncio's None): Linux gives the family alone, gVisor nothing.
            return _unnamed ??= _template.Create(new SocketAddress(AddressFamily.Unix, 2)); // .NET cannot construct an empty path, only parse one
        }

        _scratch.Size = Math.Min(length, _scratch.Buffer.Length);
        if (_known.TryGetValue(_scratch, out var known))
        {
            return known;
        }

        var key = new SocketAddress(_family, _scratch.Size);
        _scratch.Buffer.Span[.._scratch.Size].CopyTo(key.Buffer.Span);
        var endPoint = _template.Create(key);
        if (_known.Count >= DatagramAddressing.AddressCacheLimit)
        {
            _known.Clear();
        }

        _known[key] = endPoint;
        return endPoint;
    }

    /// <summary>
    /// Compares raw addresses by their first <see cref="SocketAddress.Size"/> bytes only. With
    /// SocketAddress's own equality the reused 110-byte receive buffer of a UNIX socket never matched
    /// a cached path held in a buffer of its own size (the UNIX contract test saw a new EndPoint per datagram).
    /// </summary>
    private sealed class RawAddressComparer : IEqualityComparer<SocketAddress>
    {
        public static readonly RawAddressComparer Instance = new();

        public bool Equals(SocketAddress? x, SocketAddress? y) =>
            x is not null && y is not null && x.Size == y.Size && x.Buffer.Span[..x.Size].SequenceEqual(y.Buffer.Span[..y.Size]);

        public int GetHashCode(SocketAddress address)
        {
            var hash = default(HashCode);
            hash.AddBytes(address.Buffer.Span[..address.Size]);
            return hash.ToHashCode();
        }
    }
}
