using System.Threading.Tasks;

namespace Tulip;

// The TLS transport's close-and-wait DisposeAsync: the close is TLS's own (close_notify sent, the
// peer's awaited up to the shutdown timeout, then the transport beneath closed), and the dispose
// completes once the transport beneath is gone and the application's ConnectionLost has run.
public sealed partial class SslProtocol
{
    // Loop thread. Null until a dispose waits; completed and cleared by ConnectionLost.
    private Future<VoidResult>? _disposeWaiter;
    private bool _beneathLost;

    /// <summary>The application transport's DisposeAsync: <see cref="AppClose"/>, then the end of the connection.</summary>
    internal ValueTask AppCloseAndWaitAsync()
    {
        var loop = EndOfTransportWait.CheckLoop(_loop, _appTransport);
        AppClose();
        if (_beneathLost || (_transport is null && _state == State.Unstarted))
        {
            return default;
        }

        return EndOfTransportWait.Wait(loop, ref _disposeWaiter);
    }

    /// <summary>Called last in <see cref="ConnectionLost"/>: the connection is over.</summary>
    private void EndDisposeWait()
    {
        _beneathLost = true;
        EndOfTransportWait.End(ref _disposeWaiter);
    }
}
