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
/// The default policy: one loop per thread, set with <see cref="SetEventLoop"/>; new loops are
/// <see cref="SelectorEventLoop"/>s with the platform's best selector. The environment variable
/// TULIP_SELECTOR (epoll or poll) overrides the selector.
/// </summary>
// CA1001: the policy lives as long as the process (it is held by a static); nothing to dispose.
#pragma warning disable CA1001
public class DefaultEventLoopPolicy : IEventLoopPolicy
{
    private readonly ThreadLocal<IEventLoop?> _loops = new();

    /// <inheritdoc/>
    public virtual IEventLoop GetEventLoop() =>
        _loops.Value ?? throw new InvalidOperationException(
            $"There is no current event loop in thread '{Thread.CurrentThread.Name ?? Environment.CurrentManagedThreadId.ToString(System.Globalization.CultureInfo.InvariantCulture)}'. " +
            "Use EventLoop.Run(MainAsync), or create one with EventLoop.NewEventLoop() and make it current with EventLoop.SetEventLoop(loop).");

    /// <inheritdoc/>
    public virtual void SetEventLoop(IEventLoop? loop) => _loops.Value = loop;

    /// <inheritdoc/>
    public virtual IEventLoop NewEventLoop() => new SelectorEventLoop(Environment.GetEnvironmentVariable("TULIP_SELECTOR"));
}
#pragma warning restore CA1001
