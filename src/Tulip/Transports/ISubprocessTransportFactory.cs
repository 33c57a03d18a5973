using System;
using System.Collections.Generic;
using System.Threading;

namespace Tulip;

/// <summary>
/// The subprocess feature of <see cref="TransportRegistry"/>: what <see cref="IEventLoop.SubprocessExecAsync{TProtocol}"/>
/// and <see cref="IEventLoop.SubprocessShellAsync{TProtocol}"/> call (asyncio's <c>_make_subprocess_transport</c>).
/// Every <see cref="IReadinessEventLoop"/> on Linux gets the library's implementation unless another is registered:
/// the child started with posix_spawn, watched through a pidfd the loop polls like any fd, its pipes made with the
/// loop's own <c>ConnectReadPipeAsync</c>/<c>ConnectWritePipeAsync</c>. A loop of another kind (a proactor) registers
/// its own with <c>loop.Transports.Register&lt;ISubprocessTransportFactory&gt;(...)</c>.
/// </summary>
/// <remarks>
/// The loop has checked the arguments and options that do not depend on the implementation (see the loop method's
/// exceptions) before calling; a shell command arrives as <c>/bin/sh</c> with <c>-c</c> and the command.
/// An implementation follows the loop method's contract: the protocol's calls in <see cref="ISubprocessProtocol"/>'s
/// order, a start failure leaving no fd, pipe or child behind, a cancelled call killing and reaping the child.
/// </remarks>
public interface ISubprocessTransportFactory
{
    /// <summary>Starts the child and joins it to a new protocol; see <see cref="IEventLoop.SubprocessExecAsync{TProtocol}"/>.</summary>
    /// <param name="loop">The loop the transport runs on (the one whose registry holds this factory).</param>
    /// <param name="protocolFactory">Makes the protocol.</param>
    /// <param name="program">The program: argv[0], and the file run unless <see cref="SubprocessOptions.Executable"/> is given.</param>
    /// <param name="arguments">argv[1..].</param>
    /// <param name="options">The options, checked.</param>
    /// <param name="cancellationToken">Cancels the start (the child is then killed and reaped).</param>
    LoopTask<(ISubprocessTransport Transport, TProtocol Protocol)> SpawnAsync<TProtocol>(IEventLoop loop, Func<TProtocol> protocolFactory,
        string program, IReadOnlyList<string> arguments, SubprocessOptions options, CancellationToken cancellationToken)
        where TProtocol : ISubprocessProtocol;
}
