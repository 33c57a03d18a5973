using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Tulip;

/// <summary>
/// A callback scheduled on an event loop by <see cref="IEventLoop.CallSoon(Action)"/> and its
/// relatives: the PEP's <c>Handle</c>. Its only operation is <see cref="Cancel"/>: a cancelled
/// handle's callback is never run.
/// </summary>
/// <remarks>Handles belong to the loop thread: call <see cref="Cancel"/> there, or schedule the
/// cancel with <see cref="IEventLoop.CallSoonThreadSafe(Action)"/>.</remarks>
public abstract class Handle
{
    // Debug mode's creation tracebacks, kept beside the handles rather than in a field of each:
    // CallSoon allocates a handle per call, and the field cost 8 bytes of every one
    // (docs/PERFORMANCE.md). Weak keys: a traceback lives as long as its handle.
    private static readonly ConditionalWeakTable<Handle, StackTrace> s_tracebacks = new();

    private bool _cancelled;
    private bool _hasTraceback;

    private protected Handle(BaseEventLoop loop)
    {
        if (loop.Debug)
        {
            s_tracebacks.AddOrUpdate(this, new StackTrace(2, fNeedFileInfo: true));
            _hasTraceback = true;
        }
    }

    /// <summary>True once <see cref="Cancel"/> has been called.</summary>
    public bool Cancelled => _cancelled;

    /// <summary>In debug mode, where the handle was created; otherwise null.</summary>
    public StackTrace? SourceTraceback => _hasTraceback && s_tracebacks.TryGetValue(this, out var tb) ? tb : null;

    /// <summary>Cancels the callback: if it has not run yet, it never will. Idempotent.</summary>
    public virtual void Cancel()
    {
        if (_cancelled)
        {
            return;
        }

        _cancelled = true;
        ReleaseCallback();
    }

    /// <summary>Describes the callback, for logs and the exception handler.</summary>
    public override string ToString()
    {
        string state = _cancelled ? " cancelled" : string.Empty;
        return $"<{GetType().Name.Split('`')[0]}{state} {CallbackName}>";
    }

    /// <summary>The callback's method name, for diagnostics.</summary>
    internal abstract string CallbackName { get; }

    /// <summary>Runs the callback. The loop skips cancelled handles before calling this.</summary>
    internal abstract void Run();

    /// <summary>
    /// The transport this handle serves, when its state is one (a transport's reusable I/O handle,
    /// made with <see cref="IReadinessEventLoop.CreateIoHandle{TState}"/> and the transport as state).
    /// The selector loop records it as the owner of the fd, and refuses AddReader/AddWriter on that fd
    /// while the transport is open (asyncio's <c>_ensure_fd_no_transport</c>). Read only when a
    /// registration changes, never per event.
    /// </summary>
    internal virtual IBaseTransport? OwningTransport => null;

    /// <summary>Drops the references to the callback and its state so a cancelled handle holds nothing alive.</summary>
    private protected abstract void ReleaseCallback();

    internal static string Describe(Delegate? d) =>
        d is null ? "(released)" : $"{d.Method.DeclaringType?.Name}.{d.Method.Name}";
}

/// <summary>A handle for an <see cref="Action"/> callback.</summary>
internal sealed class ActionHandle : Handle
{
    private Action? _callback;

    internal ActionHandle(BaseEventLoop loop, Action callback) : base(loop) => _callback = callback;

    internal override string CallbackName => Describe(_callback);

    internal override void Run() => _callback?.Invoke();

    private protected override void ReleaseCallback() => _callback = null;
}

/// <summary>A handle for a callback with explicit state, so hot paths need no closure.</summary>
internal sealed class StateHandle<TState> : Handle
{
    /// <summary>
    /// The ready-queue callback for this handle type: checks the flag and invokes the callback
    /// directly, one indirect call fewer than the loop's generic "run a handle" (virtual
    /// <see cref="Run"/>). Arg1 is the handle.
    /// </summary>
    internal static readonly Action<object?, object?> RunItem = static (handle, _) =>
    {
        var h = Unsafe.As<StateHandle<TState>>(handle!);
        if (!h.Cancelled)
        {
            h._callback!(h._state);
        }
    };

    private Action<TState>? _callback;
    private TState _state;

    internal StateHandle(BaseEventLoop loop, Action<TState> callback, TState state) : base(loop)
    {
        _callback = callback;
        _state = state;
    }

    internal override string CallbackName => Describe(_callback);

    internal override void Run() => _callback?.Invoke(_state);

    internal override IBaseTransport? OwningTransport => _state as IBaseTransport;

    private protected override void ReleaseCallback()
    {
        _callback = null;
        _state = default!;
    }
}
