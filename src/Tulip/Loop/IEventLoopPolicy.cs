using System;
using System.Threading;

namespace Tulip;

/// <summary>
/// Decides which loop is "the" loop of a context: the PEP's event loop policy. The default
/// policy keeps one loop per thread.
/// </summary>
public interface IEventLoopPolicy
{
    /// <summary>The current thread's loop.</summary>
    /// <exception cref="InvalidOperationException">The thread has none.</exception>
    IEventLoop GetEventLoop();

    /// <summary>Sets (or with null, clears) the current thread's loop.</summary>
    void SetEventLoop(IEventLoop? loop);

    /// <summary>Creates a new loop (it is not made current).</summary>
    IEventLoop NewEventLoop();
}

/// <summary>
/// The default policy: one loop per thread, set with <see cref="SetEventLoop"/>; new loops come from
/// the loop factory given to the constructor, or else from the kind the environment variable
/// <c>TULIP_LOOP</c> names (see <see cref="EventLoopKinds"/>): epoll, poll, io_uring or proactor, the best available when unset.
/// </summary>
// CA1001: the policy lives as long as the process (it is held by a static); nothing to dispose.
#pragma warning disable CA1001
public class DefaultEventLoopPolicy : IEventLoopPolicy
{
    private readonly ThreadLocal<IEventLoop?> _loops = new();
    private readonly Func<IEventLoop>? _loopFactory;

    /// <summary>A policy whose new loops are of the kind <c>TULIP_LOOP</c> names, read at each <see cref="NewEventLoop"/>.</summary>
    public DefaultEventLoopPolicy() : this(null)
    {
    }

    /// <summary>A policy whose new loops come from <paramref name="loopFactory"/> (asyncio's <c>_loop_factory</c>).</summary>
    /// <param name="loopFactory">Makes each new loop; null uses the kind <c>TULIP_LOOP</c> names (<see cref="EventLoopKinds.FromEnvironment"/>).</param>
    public DefaultEventLoopPolicy(Func<IEventLoop>? loopFactory) => _loopFactory = loopFactory;

    /// <inheritdoc/>
    public virtual IEventLoop GetEventLoop() =>
        _loops.Value ?? throw new InvalidOperationException(
            $"There is no current event loop in thread '{Thread.CurrentThread.Name ?? Environment.CurrentManagedThreadId.ToString(System.Globalization.CultureInfo.InvariantCulture)}'. " +
            "Use EventLoop.Run(MainAsync), or create one with EventLoop.NewEventLoop() and make it current with EventLoop.SetEventLoop(loop).");

    /// <inheritdoc/>
    public virtual void SetEventLoop(IEventLoop? loop) => _loops.Value = loop;

    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException">No factory was given and <c>TULIP_LOOP</c> names no known loop kind, or the factory returned null.</exception>
    public virtual IEventLoop NewEventLoop() =>
        (_loopFactory ?? EventLoopKinds.FromEnvironment())()
        ?? throw new InvalidOperationException("The policy's loop factory returned null; it must return a new event loop.");
}
#pragma warning restore CA1001
