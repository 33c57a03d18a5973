using System.Runtime.Versioning;

namespace Tulip.IoUring;

/// <summary>
/// A completion operation of the io_uring loop: what a transport's receive or send is to the selector.
/// Its completions are handed over by <see cref="Selectors.IoUringSelector.Select"/> on the loop thread,
/// inside the wait: the operation records the result and queues its transport's handler on the loop's
/// ready queue; it never calls a protocol from here.
/// </summary>
[SupportedOSPlatform("linux")]
internal interface IIoUringOperation
{
    /// <summary>One completion: the kernel's result (bytes, or -errno) and the CQE's flags.</summary>
    void OnCompletion(int result, uint flags);
}

/// <summary>A receiver whose ring receive ended with ENOBUFS, waiting for a buffer of its group to come back.</summary>
internal interface IIoUringBufferWaiter
{
    /// <summary>A buffer came back: re-arm the receive.</summary>
    void BuffersAvailable();
}
