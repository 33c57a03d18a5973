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

/// <summary>
/// A transport with bytes gathered for the ring to send at the end of this loop iteration (the
/// io_uring loop's ring writes, <see cref="IoUringEventLoop.RingWrites"/>): the selector calls
/// <see cref="Flush"/> once, just before the iteration's <c>io_uring_enter</c>, so every write the
/// iteration made to one connection leaves in one send.
/// </summary>
[SupportedOSPlatform("linux")]
internal interface IIoUringFlush
{
    /// <summary>Queues the send of what was gathered (a submission entry, submitted by the caller).</summary>
    void Flush();
}

/// <summary>A receiver whose ring receive ended with ENOBUFS, waiting for a buffer of its group to come back.</summary>
internal interface IIoUringBufferWaiter
{
    /// <summary>A buffer came back: re-arm the receive.</summary>
    void BuffersAvailable();
}
