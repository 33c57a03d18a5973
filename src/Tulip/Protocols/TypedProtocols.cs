using System;

namespace Tulip;

/// <summary>
/// A stream protocol told its transport as the type it works with, without a cast:
/// <see cref="ConnectionMade(TTransport)"/> receives a <typeparamref name="TTransport"/> (usually
/// <see cref="ITransport"/>), kept in <see cref="Transport"/>. Otherwise <see cref="Protocol"/>, no-op defaults included.
/// </summary>
/// <remarks>
/// A transport that is not a <typeparamref name="TTransport"/> is refused with an
/// <see cref="ArgumentException"/> naming both types, from the untyped
/// <see cref="IBaseProtocol.ConnectionMade(IBaseTransport)"/>; the loop then treats it as any
/// failing <c>ConnectionMade</c> (the connection is closed and the creating call throws it).
/// </remarks>
/// <typeparam name="TTransport">The transport type the protocol expects.</typeparam>
public abstract class Protocol<TTransport> : Protocol
    where TTransport : class, IBaseTransport
{
    private TTransport? _transport;

    /// <summary>The transport given to <see cref="ConnectionMade(TTransport)"/>.</summary>
    /// <exception cref="InvalidOperationException">The connection is not made yet.</exception>
    protected TTransport Transport => _transport ?? throw TypedProtocol.NoTransportYet(GetType());

    /// <summary>Checks the transport's type, keeps it in <see cref="Transport"/> and calls <see cref="ConnectionMade(TTransport)"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="transport"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="transport"/> is not a <typeparamref name="TTransport"/>.</exception>
    public sealed override void ConnectionMade(IBaseTransport transport)
    {
        _transport = TypedProtocol.Check<TTransport>(transport, GetType());
        ConnectionMade(_transport);
    }

    /// <summary>The transport is ready (see <see cref="IBaseProtocol.ConnectionMade(IBaseTransport)"/>), typed.</summary>
    /// <param name="transport">The transport; also in <see cref="Transport"/>.</param>
    public virtual void ConnectionMade(TTransport transport)
    {
    }
}

/// <summary>
/// A datagram protocol told its transport as the type it works with (usually
/// <see cref="IDatagramTransport"/>), without a cast; see <see cref="Protocol{TTransport}"/>.
/// </summary>
/// <typeparam name="TTransport">The transport type the protocol expects.</typeparam>
public abstract class DatagramProtocol<TTransport> : DatagramProtocol
    where TTransport : class, IBaseTransport
{
    private TTransport? _transport;

    /// <summary>The transport given to <see cref="ConnectionMade(TTransport)"/>.</summary>
    /// <exception cref="InvalidOperationException">The endpoint is not made yet.</exception>
    protected TTransport Transport => _transport ?? throw TypedProtocol.NoTransportYet(GetType());

    /// <summary>Checks the transport's type, keeps it in <see cref="Transport"/> and calls <see cref="ConnectionMade(TTransport)"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="transport"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="transport"/> is not a <typeparamref name="TTransport"/>.</exception>
    public sealed override void ConnectionMade(IBaseTransport transport)
    {
        _transport = TypedProtocol.Check<TTransport>(transport, GetType());
        ConnectionMade(_transport);
    }

    /// <summary>The endpoint is ready, typed.</summary>
    /// <param name="transport">The transport; also in <see cref="Transport"/>.</param>
    public virtual void ConnectionMade(TTransport transport)
    {
    }
}

/// <summary>
/// A subprocess protocol told its transport as the type it works with (usually
/// <see cref="ISubprocessTransport"/>), without a cast; see <see cref="Protocol{TTransport}"/>.
/// </summary>
/// <typeparam name="TTransport">The transport type the protocol expects.</typeparam>
public abstract class SubprocessProtocol<TTransport> : SubprocessProtocol
    where TTransport : class, IBaseTransport
{
    private TTransport? _transport;

    /// <summary>The transport given to <see cref="ConnectionMade(TTransport)"/>.</summary>
    /// <exception cref="InvalidOperationException">The child is not started yet.</exception>
    protected TTransport Transport => _transport ?? throw TypedProtocol.NoTransportYet(GetType());

    /// <summary>Checks the transport's type, keeps it in <see cref="Transport"/> and calls <see cref="ConnectionMade(TTransport)"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="transport"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="transport"/> is not a <typeparamref name="TTransport"/>.</exception>
    public sealed override void ConnectionMade(IBaseTransport transport)
    {
        _transport = TypedProtocol.Check<TTransport>(transport, GetType());
        ConnectionMade(_transport);
    }

    /// <summary>The child's transport is ready, typed.</summary>
    /// <param name="transport">The transport; also in <see cref="Transport"/>.</param>
    public virtual void ConnectionMade(TTransport transport)
    {
    }
}

/// <summary>The check and the errors the typed protocol bases share.</summary>
internal static class TypedProtocol
{
    public static TTransport Check<TTransport>(IBaseTransport transport, Type protocol)
        where TTransport : class, IBaseTransport
    {
        ArgumentNullException.ThrowIfNull(transport);
        return transport as TTransport ?? throw WrongTransport(typeof(TTransport), transport, protocol);
    }

    public static InvalidOperationException NoTransportYet(Type protocol) =>
        new($"{protocol.Name} has no transport yet: Transport is set when ConnectionMade runs.");

    private static ArgumentException WrongTransport(Type expected, IBaseTransport transport, Type protocol) =>
        new($"{protocol.Name} expects a transport of type {expected.Name}, but was given a {transport.GetType().Name}, which is not one. " +
            $"Make it with a call whose transport is a {expected.Name} (for example CreateConnectionAsync for ITransport, " +
            "CreateDatagramEndpointAsync for IDatagramTransport), or widen the protocol's type parameter.", nameof(transport));
}
