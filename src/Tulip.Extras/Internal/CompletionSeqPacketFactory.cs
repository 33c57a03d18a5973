using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Tulip.Extras.Internal;

/// <summary>SOCK_SEQPACKET on completions: for any <see cref="ICompletionEventLoop"/>, a proactor above all.</summary>
internal sealed class CompletionSeqPacketFactory : ISeqPacketTransportFactory
{
    /// <inheritdoc/>
    public async LoopTask<Socket> ConnectAsync(IEventLoop loop, EndPoint endPoint, CancellationToken cancellationToken)
    {
        var completions = CompletionsOf(loop);
        return await ConnectBackoff.ConnectAsync((loop, completions, endPoint, cancellationToken), static (socket, s) => TryConnectAsync(socket, s),
            cancellationToken);
    }

    /// <summary>One connect: true once connected, false when the listener's backlog is full (EAGAIN: see <see cref="ConnectBackoff"/>).</summary>
    private static async LoopTask<bool> TryConnectAsync(Socket socket,
        (IEventLoop Loop, ICompletionEventLoop Completions, EndPoint EndPoint, CancellationToken Token) s)
    {
        var done = s.Loop.CreateFuture<Exception?>();
        s.Completions.WhenCompleted(socket.ConnectAsync(s.EndPoint, s.Token), static (f, e) => f.SetResult(e), done);
        var error = await done;
        return error switch
        {
            null => true,
            SocketException { SocketErrorCode: SocketError.WouldBlock } => false,
            OperationCanceledException => throw new CancelledError("The connect was cancelled."),
            _ => throw error,
        };
    }

    /// <inheritdoc/>
    public IMessageTransport Attach(IEventLoop loop, Socket socket, IMessageProtocol protocol, Future<bool> connected) =>
        new CompletionMessageTransport(CompletionsOf(loop), socket, protocol, connected);

    private static ICompletionEventLoop CompletionsOf(IEventLoop loop) =>
        loop as ICompletionEventLoop ?? throw new NotSupportedException(
            $"SeqPacket.Completion needs an {nameof(ICompletionEventLoop)}; {loop.GetType().Name} is not one.");
}

/// <summary>
/// A message transport driven by completions: one <c>ReceiveAsync</c> outstanding while reading,
/// one <c>SendAsync</c> in flight while the queue is not empty, each completed on the loop thread
/// through <see cref="ICompletionEventLoop.WhenCompleted{TState}(System.Threading.Tasks.ValueTask{int}, Action{TState, int, Exception}, TState)"/>.
/// A receive cannot be taken back once started: a message that completes while reading is paused
/// is held and delivered on resume. Disposing the socket at the end aborts what is outstanding;
/// those completions find the transport lost and are ignored.
/// </summary>
internal sealed class CompletionMessageTransport : MessageTransport
{
    private readonly ICompletionEventLoop _completions;
    private readonly byte[] _receiveBuffer = new byte[IMessageTransport.MaxMessageSize];
    private bool _receiving;
    private bool _sending;
    private int _held = -1;   // length of a message received while paused, or -1

    internal CompletionMessageTransport(ICompletionEventLoop loop, Socket socket, IMessageProtocol protocol, Future<bool> connected)
        : base(loop, socket, protocol, connected)
    {
        _completions = loop;
    }

    protected override bool TrySendNow(ReadOnlySpan<byte> message) => false; // always through the queue: the send is asynchronous

    protected override void OnQueued() => SendNext();

    protected override void StartReading()
    {
        if (_held >= 0)
        {
            int length = _held;
            _held = -1;
            Deliver(_receiveBuffer.AsSpan(0, length));
            if (Closing || Paused || Lost)
            {
                return;
            }
        }

        if (_receiving)
        {
            return;
        }

        _receiving = true;
        _completions.WhenCompleted(Socket.ReceiveAsync(_receiveBuffer.AsMemory(), SocketFlags.None), static (t, n, e) => t.OnReceived(n, e), this);
    }

    protected override void StopReading()
    {
        // Nothing to undo: an outstanding receive completes into the held slot.
    }

    protected override void StopAll()
    {
        // The socket's disposal (after ConnectionLost) aborts outstanding operations.
    }

    private void OnReceived(int n, Exception? error)
    {
        _receiving = false;
        if (Lost)
        {
            return;
        }

        if (error is not null)
        {
            FatalError(error, "Fatal receive error on SOCK_SEQPACKET transport");
            return;
        }

        if (n == 0)
        {
            PeerClosed();
            return;
        }

        if (Paused || Closing)
        {
            _held = n;
            return;
        }

        Deliver(_receiveBuffer.AsSpan(0, n));
        if (!Paused && !Closing && !Lost)
        {
            StartReading();
        }
    }

    private void SendNext()
    {
        if (_sending || Lost || !Queue.TryPeek(out var message))
        {
            return;
        }

        _sending = true;
        _completions.WhenCompleted(Socket.SendAsync(message.AsMemory(), SocketFlags.None), static (t, n, e) => t.OnSent(n, e), this);
    }

    private void OnSent(int n, Exception? error)
    {
        _sending = false;
        if (Lost)
        {
            return;
        }

        if (error is not null)
        {
            FatalError(error, "Fatal send error on SOCK_SEQPACKET transport");
            return;
        }

        var message = Queue.Dequeue();
        Sent(message.Length);
        SendNext();
    }
}
