using System;
using System.Runtime.InteropServices;
using System.Threading;

namespace Tulip;

/// <summary>
/// The pipe-transport feature of <see cref="TransportRegistry"/>: what
/// <see cref="IEventLoop.ConnectReadPipeAsync{TProtocol}(Func{TProtocol}, SafeHandle, CancellationToken)"/>
/// and <see cref="IEventLoop.ConnectWritePipeAsync{TProtocol}(Func{TProtocol}, SafeHandle, CancellationToken)"/>
/// call. Every <see cref="IReadinessEventLoop"/> gets the library's fd-readiness implementation
/// unless another is registered; a loop of another kind (a proactor) registers its own with
/// <c>loop.Transports.Register&lt;IPipeTransportFactory&gt;(...)</c>.
/// </summary>
/// <remarks>
/// The loop has checked the arguments that do not depend on the implementation (null factory, a
/// closed or invalid handle, a negative fd) before calling. The <c>owner</c> parameter of each method is
/// what the transport disposes at the end instead of the handle (the <see cref="System.IO.Stream"/> the
/// caller gave), or null. Ownership: an implementation that throws before making the transport
/// leaves the pipe as it was (open, blocking mode restored); once the transport is made, it owns
/// the pipe and a failure closes it before the call returns.
/// </remarks>
public interface IPipeTransportFactory
{
    /// <summary>Makes a read-pipe transport on <paramref name="loop"/> over <paramref name="pipe"/>; see the loop method.</summary>
    /// <param name="loop">The loop the transport runs on (the one whose registry holds this factory).</param>
    /// <param name="protocolFactory">Makes the protocol.</param>
    /// <param name="pipe">The pipe's fd.</param>
    /// <param name="owner">What to dispose instead of <paramref name="pipe"/> when the transport closes, or null.</param>
    /// <param name="cancellationToken">Cancels the wait for <see cref="IBaseProtocol.ConnectionMade"/>.</param>
    LoopTask<(IReadTransport Transport, TProtocol Protocol)> ConnectReadPipeAsync<TProtocol>(IEventLoop loop, Func<TProtocol> protocolFactory,
        SafeHandle pipe, IDisposable? owner, CancellationToken cancellationToken)
        where TProtocol : IBaseProtocol;

    /// <summary>Makes a write-pipe transport on <paramref name="loop"/> over <paramref name="pipe"/>; see the loop method.</summary>
    /// <param name="loop">The loop the transport runs on (the one whose registry holds this factory).</param>
    /// <param name="protocolFactory">Makes the protocol.</param>
    /// <param name="pipe">The pipe's fd.</param>
    /// <param name="owner">What to dispose instead of <paramref name="pipe"/> when the transport closes, or null.</param>
    /// <param name="cancellationToken">Cancels the wait for <see cref="IBaseProtocol.ConnectionMade"/>.</param>
    LoopTask<(IWriteTransport Transport, TProtocol Protocol)> ConnectWritePipeAsync<TProtocol>(IEventLoop loop, Func<TProtocol> protocolFactory,
        SafeHandle pipe, IDisposable? owner, CancellationToken cancellationToken)
        where TProtocol : IBaseProtocol;
}
