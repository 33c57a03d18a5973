using System.Threading.Tasks;

namespace Tulip;

// The subprocess transport's close-and-wait DisposeAsync, as asyncio's close semantics make it: close
// (the pipes closed, a child that still runs killed), then wait until the child is reaped, every
// pipe is closed and the protocol's ConnectionLost has run.
internal abstract partial class SubprocessTransport
{
    // Loop thread. Null until a dispose waits; completed and cleared once ConnectionLost was delivered.
    private Future<VoidResult>? _disposeWaiter;
    private bool _lostDelivered;

    /// <summary>
    /// Closes as <see cref="Close"/> does and completes once the transport has ended: the child reaped
    /// (<see cref="ReturnCode"/> set), its pipes closed, ConnectionLost run. Cancelling the waiting
    /// task ends only the wait.
    /// </summary>
    /// <exception cref="System.InvalidOperationException">Not on the loop thread, or the loop is not a <see cref="BaseEventLoop"/>.</exception>
    public ValueTask DisposeAsync()
    {
        var loop = EndOfTransportWait.CheckLoop(_loop, this);
        Close();
        if (_lostDelivered || _abandoned)
        {
            return default;
        }

        return EndOfTransportWait.Wait(loop, ref _disposeWaiter);
    }

    private void EndDisposeWait()
    {
        _lostDelivered = true;
        EndOfTransportWait.End(ref _disposeWaiter);
    }
}
