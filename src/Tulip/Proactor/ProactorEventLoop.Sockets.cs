using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;

namespace Tulip;

// The PEP's wrapped socket methods for streams, the completion way: each hands the runtime one
// asynchronous operation (Socket's ValueTask API, which tries the call at once and completes
// synchronously when it can) and awaits its completion. The awaiting task's CancellationToken is
// given to the operation, so a cancelled call really stops it (the runtime takes it off the socket
// before the await throws CancelledError) and nothing of it is left to race the caller's next call.
// While an operation is in flight it counts in OutstandingOperations.
public sealed partial class ProactorEventLoop
{
    /// <inheritdoc/>
    public override async LoopTask<int> SockRecvAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckSockCall(socket);
        if (buffer.IsEmpty)
        {
            // asyncio's sock_recv(sock, 0) and the selector loops' recv(2) of 0 bytes: 0 at once. The
            // runtime's zero-byte receive is another thing, a wait for data to arrive.
            return 0;
        }

        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var token = CurrentTask?.CancellationToken ?? default;
        var operation = socket.ReceiveAsync(buffer, SocketFlags.None, token);
        bool counted = BeginCounted(operation.IsCompleted);
        try
        {
            return await operation;
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            throw new CancelledError();
        }
        finally
        {
            EndCounted(counted);
        }
    }

    /// <inheritdoc/>
    public override LoopTask<int> SockRecvIntoAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        SockRecvAsync(socket, buffer, cancellationToken);

    /// <inheritdoc/>
    public override async LoopTask SockSendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        CheckSockCall(socket);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var token = CurrentTask?.CancellationToken ?? default;
        while (!data.IsEmpty)
        {
            // A stream send completes once all of it is queued in the kernel; the loop covers a
            // runtime that reports less.
            var operation = socket.SendAsync(data, SocketFlags.None, token);
            bool counted = BeginCounted(operation.IsCompleted);
            try
            {
                data = data.Slice(await operation);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                throw new CancelledError();
            }
            finally
            {
                EndCounted(counted);
            }
        }
    }

    /// <inheritdoc/>
    public override async LoopTask<Socket> SockAcceptAsync(Socket socket, CancellationToken cancellationToken = default)
    {
        CheckSockCall(socket, SockCall.Accept);
        using var link = TaskCancellation.LinkToCurrentTask(cancellationToken);
        var token = CurrentTask?.CancellationToken ?? default;
        var operation = socket.AcceptAsync(token);
        bool counted = BeginCounted(operation.IsCompleted);
        Socket connection;
        try
        {
            connection = await operation;
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            throw new CancelledError();
        }
        finally
        {
            EndCounted(counted);
        }

        if (CancelPending)
        {
            // Accepted as the caller cancelled: the connection would be dropped with the result.
            connection.Dispose();
            throw new CancelledError();
        }

        connection.Blocking = false;
        return connection;
    }

    /// <summary>Counts an operation in flight as outstanding, unless the runtime completed it at once; pair with <see cref="EndCounted"/>.</summary>
    private bool BeginCounted(bool completed)
    {
        if (!completed)
        {
            CountOperation(started: true);
        }

        return !completed;
    }

    private void EndCounted(bool counted)
    {
        if (counted)
        {
            CountOperation(started: false);
        }
    }

    /// <summary>Awaits a runtime operation on the loop thread, counted in <see cref="OutstandingOperations"/> while in flight.</summary>
    private async LoopTask CountedAsync(ValueTask operation)
    {
        bool counted = BeginCounted(operation.IsCompleted);
        try
        {
            await operation;
        }
        finally
        {
            EndCounted(counted);
        }
    }

    // A non-blocking AF_UNIX connect never goes on in the background: it completes at once, fails, or
    // fails with EAGAIN because the listener's backlog is full, and then nothing is in progress (the
    // runtime's ConnectAsync reports that EAGAIN as a failure). Nothing signals room in another
    // process's backlog, so try again, backing off from 1 ms to 50 ms, until it connects, fails
    // otherwise, or the caller cancels: the selector loop's way, with the same calls.
    private static async LoopTask UnixConnectAsync(Socket socket, EndPoint address)
    {
        double delay = 0.001;
        while (true)
        {
            try
            {
                socket.Connect(address);
                return;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress or SocketError.TryAgain or SocketError.Interrupted)
            {
            }

            await Tasks.Sleep(delay);
            delay = Math.Min(delay * 2, 0.05);
        }
    }
}
