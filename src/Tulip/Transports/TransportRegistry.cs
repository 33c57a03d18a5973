using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;

namespace Tulip;

/// <summary>
/// A loop's registry of transport implementations (seed 002): a transport is offered as a
/// <em>feature</em>, a type its author defines (usually an interface with the calls that make the
/// transport), and each loop holds the implementation of each feature that suits its multiplexer.
/// Third parties add transports this way without adding methods to the loop, and may plug an
/// implementation into a loop the feature's author never knew.
/// </summary>
/// <remarks>
/// <para>
/// Keys are types, so two parties' features never collide (the type's assembly and namespace are
/// its name). Lookup order: an implementation registered on this loop with <see cref="Register{TFeature}"/>
/// wins; otherwise <see cref="Resolve{TFeature}"/> asks the feature's fallback, which picks by
/// capability (<see cref="IReadinessEventLoop"/>, <see cref="ICompletionEventLoop"/>), and keeps its
/// choice for the loop's lifetime.
/// </para>
/// <para>
/// The library uses it itself: <see cref="IEventLoop.ConnectReadPipeAsync{TProtocol}(Func{TProtocol}, System.Runtime.InteropServices.SafeHandle, System.Threading.CancellationToken)"/>
/// and its write twin resolve <see cref="IPipeTransportFactory"/> here, falling back to the
/// readiness implementation on readiness loops. Not thread-safe: use it from the loop thread, or
/// before the loop runs.
/// </para>
/// </remarks>
public sealed class TransportRegistry
{
    private readonly IEventLoop _loop;
    // Feature type -> implementation (registered, or chosen by a fallback). Owned by the loop thread.
    private readonly Dictionary<Type, object> _implementations = new();

    internal TransportRegistry(IEventLoop loop) => _loop = loop;

    /// <summary>
    /// Makes <paramref name="implementation"/> this loop's implementation of <typeparamref name="TFeature"/>,
    /// replacing any registered or chosen before.
    /// </summary>
    public void Register<TFeature>(TFeature implementation) where TFeature : class
    {
        ArgumentNullException.ThrowIfNull(implementation);
        _implementations[typeof(TFeature)] = implementation;
    }

    /// <summary>Forgets this loop's implementation of <typeparamref name="TFeature"/>; returns whether there was one.</summary>
    public bool Unregister<TFeature>() where TFeature : class => _implementations.Remove(typeof(TFeature));

    /// <summary>The implementation of <typeparamref name="TFeature"/> registered on (or chosen for) this loop, if any.</summary>
    public bool TryGet<TFeature>([NotNullWhen(true)] out TFeature? implementation) where TFeature : class
    {
        if (_implementations.TryGetValue(typeof(TFeature), out var value))
        {
            implementation = (TFeature)value;
            return true;
        }

        implementation = null;
        return false;
    }

    /// <summary>
    /// The implementation of <typeparamref name="TFeature"/> for this loop: the registered one, or
    /// else what <paramref name="fallback"/> picks for the loop (kept for next time), or null when
    /// the fallback has nothing for a loop of this kind.
    /// </summary>
    /// <param name="fallback">Picks an implementation by the loop's capabilities, e.g.
    /// <c>loop => loop switch { IReadinessEventLoop r => new FdImpl(r), ICompletionEventLoop c => new AsyncImpl(c), _ => null }</c>.</param>
    public TFeature? Resolve<TFeature>(Func<IEventLoop, TFeature?> fallback) where TFeature : class
    {
        ArgumentNullException.ThrowIfNull(fallback);
        if (TryGet<TFeature>(out var found))
        {
            return found;
        }

        var chosen = fallback(_loop);
        if (chosen is not null)
        {
            _implementations[typeof(TFeature)] = chosen;
        }

        return chosen;
    }

    /// <summary>
    /// As <see cref="Resolve{TFeature}"/>, but throws when there is no implementation for this loop.
    /// </summary>
    /// <exception cref="NotSupportedException">Neither a registered implementation nor the fallback suits this loop; the message names both.</exception>
    public TFeature Require<TFeature>(Func<IEventLoop, TFeature?> fallback) where TFeature : class =>
        Resolve(fallback) ?? throw new NotSupportedException(
            $"{_loop.GetType().Name} has no implementation of {typeof(TFeature).FullName}: none is registered on this loop, and the feature's " +
            $"fallback has none for this kind of loop (it picks by {nameof(IReadinessEventLoop)}, {nameof(ICompletionEventLoop)}...). " +
            $"Register one with loop.Transports.Register<{typeof(TFeature).Name}>(...).");
}
