using System;
using System.Net.Sockets;

namespace Tulip.Testing;

/// <summary>One end of a <see cref="ConnectedPair"/>.</summary>
public enum PairSide
{
    /// <summary>The end that connected.</summary>
    Client,

    /// <summary>The end that accepted.</summary>
    Server,
}

/// <summary>
/// Two protocols, a client and a server, joined by an in-memory pipe: each gets a
/// <see cref="MemoryTransport"/>, and a pump carries what one writes to the other, in chunks cut by
/// <see cref="Chunking"/>, through the loop. Faults can be injected: a reset after N bytes, a
/// half-close, delivery delayed on the virtual clock.
/// </summary>
/// <remarks>
/// <para>
/// With <see cref="AutoPump"/> (the default) the pump runs by itself on the next iteration after
/// anything is written, so <see cref="TestEventLoop.RunUntilIdle"/> plays a whole conversation.
/// Turn it off to move the bytes yourself with <see cref="Pump"/> or <see cref="PumpStep"/>, and
/// look at the state in between.
/// </para>
/// <para>
/// What crosses: bytes; a FIN once a side called <c>WriteEof</c> or <c>Close</c> and its buffer
/// is flushed (the peer's <c>EofReceived</c>); a reset when a side calls <c>Abort</c> (the peer
/// loses the connection with a <see cref="SocketException"/> of <see cref="SocketError.ConnectionReset"/>).
/// A slow peer is simulated with <see cref="MemoryTransport.PeerAcceptsWrites"/> on the sender's transport.
/// All members are for the loop thread.
/// </para>
/// </remarks>
public sealed class ConnectedPair
{
    private readonly IEventLoop _loop;
    private readonly Direction _toServer;
    private readonly Direction _toClient;
    private bool _pumpScheduled;
    private bool _autoPump = true;
    private bool _nextStepToServer = true;

    /// <summary>
    /// Joins <paramref name="client"/> and <paramref name="server"/>: both get their transport and,
    /// on the next iteration, <c>ConnectionMade</c> (the server first, as an accepted connection is
    /// made before the connecting side learns of it).
    /// </summary>
    /// <param name="loop">The loop that runs both protocols; usually a <see cref="TestEventLoop"/>.</param>
    /// <param name="client">The client protocol.</param>
    /// <param name="server">The server protocol.</param>
    /// <param name="clientAddress">What the server's transport reports as "peername" and the client's as "sockname".</param>
    /// <param name="serverAddress">What the client's transport reports as "peername" and the server's as "sockname".</param>
    public ConnectedPair(IEventLoop loop, IBaseProtocol client, IBaseProtocol server,
        object? clientAddress = null, object? serverAddress = null)
    {
        ArgumentNullException.ThrowIfNull(loop);
        _loop = loop;
        clientAddress ??= "client";
        serverAddress ??= "server";
        ServerTransport = new MemoryTransport(loop, server, new System.Collections.Generic.Dictionary<string, object?>
        {
            ["peername"] = clientAddress,
            ["sockname"] = serverAddress,
        });
        ClientTransport = new MemoryTransport(loop, client, new System.Collections.Generic.Dictionary<string, object?>
        {
            ["peername"] = serverAddress,
            ["sockname"] = clientAddress,
        });
        _toServer = new Direction(ClientTransport, ServerTransport);
        _toClient = new Direction(ServerTransport, ClientTransport);
        ClientTransport.WireChanged = SchedulePump;
        ServerTransport.WireChanged = SchedulePump;
    }

    /// <summary>The client protocol's transport.</summary>
    public MemoryTransport ClientTransport { get; }

    /// <summary>The server protocol's transport.</summary>
    public MemoryTransport ServerTransport { get; }

    /// <summary>How the stream is cut into deliveries. Defaults to <see cref="Chunking.Whole"/>.</summary>
    public Chunking Chunking { get; set; } = Chunking.Whole;

    /// <summary>
    /// True (the default) to pump on the next iteration whenever something is written; false to
    /// pump only when <see cref="Pump"/> or <see cref="PumpStep"/> is called. Turning it on pumps
    /// what is in flight.
    /// </summary>
    public bool AutoPump
    {
        get => _autoPump;
        set
        {
            _autoPump = value;
            if (value)
            {
                SchedulePump();
            }
        }
    }

    /// <summary>
    /// Seconds of loop time each delivery takes to arrive (0, the default: the next iteration).
    /// Deliveries keep their order. On a <see cref="TestEventLoop"/> they arrive when the test
    /// advances the clock.
    /// </summary>
    public double DeliveryDelay { get; set; }

    /// <summary>The transport of <paramref name="side"/>.</summary>
    public MemoryTransport TransportOf(PairSide side) => side == PairSide.Client ? ClientTransport : ServerTransport;

    /// <summary>Bytes the pump has taken from <paramref name="from"/> and sent to the other side so far.</summary>
    public long BytesSent(PairSide from) => DirectionFrom(from).Sent;

    /// <summary>
    /// Injects a connection reset: once <paramref name="byteCount"/> bytes from <paramref name="from"/>
    /// have crossed (counting those already sent), nothing more does, and both protocols lose the
    /// connection with a <see cref="SocketException"/> of <see cref="SocketError.ConnectionReset"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="byteCount"/> is negative.</exception>
    public void ResetAt(PairSide from, long byteCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(byteCount);
        DirectionFrom(from).ResetAt = byteCount;
        SchedulePump();
    }

    /// <summary>
    /// Injects a half-close in the network: after what is already in flight, the side opposite
    /// <paramref name="from"/> gets EOF, and what <paramref name="from"/> writes later is lost.
    /// The other direction carries on.
    /// </summary>
    public void HalfClose(PairSide from)
    {
        DirectionFrom(from).HalfClosed = true;
        SchedulePump();
    }

    /// <summary>
    /// Carries everything in flight, both ways, until nothing is left: the deliveries are scheduled
    /// on the loop (run it to let the protocols see them). Returns the bytes moved.
    /// </summary>
    public long Pump()
    {
        long before = _toServer.Sent + _toClient.Sent;
        while (Step(_toServer) | Step(_toClient))
        {
        }

        return _toServer.Sent + _toClient.Sent - before;
    }

    /// <summary>
    /// Carries one delivery (one chunk, a FIN or a reset), alternating directions starting with
    /// client to server. Returns false when nothing is in flight.
    /// </summary>
    public bool PumpStep()
    {
        var first = _nextStepToServer ? _toServer : _toClient;
        var second = _nextStepToServer ? _toClient : _toServer;
        _nextStepToServer = !_nextStepToServer;
        return Step(first) || Step(second);
    }

    private Direction DirectionFrom(PairSide side) => side == PairSide.Client ? _toServer : _toClient;

    private void SchedulePump()
    {
        if (!_autoPump || _pumpScheduled)
        {
            return;
        }

        _pumpScheduled = true;
        _loop.CallSoon(static p =>
        {
            p._pumpScheduled = false;
            if (p._autoPump)
            {
                p.Pump();
            }
        }, this);
    }

    private bool Step(Direction d)
    {
        if (d.Done)
        {
            return false;
        }

        int available = d.From.WireCount;
        if (d.ResetAt is long limit && d.Sent >= limit)
        {
            Reset(d);
            return true;
        }

        if (available > 0)
        {
            int size = Math.Max(1, Chunking.NextSize(available));
            if (d.ResetAt is long r)
            {
                size = (int)Math.Min(size, r - d.Sent);
            }

            byte[] chunk = d.From.TakeWritten(size);
            if (d.HalfClosed && d.FinDelivered)
            {
                return true; // written after the injected half-close: lost
            }

            d.Sent += chunk.Length;
            Deliver(() => d.To.DeliverData(chunk));
            return true;
        }

        if (d.FinDelivered)
        {
            return false;
        }

        if (d.From.WasAborted)
        {
            Reset(d);
            return true;
        }

        if (d.From.FinSent || d.HalfClosed)
        {
            d.FinDelivered = true;
            Deliver(d.To.DeliverEof);
            return true;
        }

        return false;
    }

    private void Reset(Direction d)
    {
        _toServer.Done = true;
        _toClient.Done = true;
        var error = new SocketException((int)SocketError.ConnectionReset);
        var from = d.From;
        var to = d.To;
        // A callback of its own, so data scheduled for delivery before the reset reaches the protocol first.
        Deliver(() => _loop.CallSoon(() =>
        {
            to.DeliverConnectionLost(error);
            from.DeliverConnectionLost(error);
        }));
    }

    private void Deliver(Action delivery)
    {
        if (DeliveryDelay > 0)
        {
            _loop.CallLater(DeliveryDelay, delivery);
        }
        else
        {
            delivery();
        }
    }

    private sealed class Direction
    {
        public Direction(MemoryTransport from, MemoryTransport to)
        {
            From = from;
            To = to;
        }

        public MemoryTransport From { get; }

        public MemoryTransport To { get; }

        public long Sent { get; set; }

        public long? ResetAt { get; set; }

        public bool HalfClosed { get; set; }

        public bool FinDelivered { get; set; }

        public bool Done { get; set; }
    }
}
