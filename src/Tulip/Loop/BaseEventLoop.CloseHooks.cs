using System;
using System.Collections.Generic;

namespace Tulip;

// What must be told that the loop closes, on every loop kind: a subprocess transport whose child still runs kills it
// and leaves its reaping to a watcher that outlives the loop (issue 13), so a loop closed before its children exited
// leaves neither a running child nor a zombie. Internal: the hooks run in Close, on the thread that closes the loop
// (which is not running then), after the loop turned closed (CallSoonThreadSafe refuses from then on, so no thread
// posts to it any more) and before the multiplexer closes (CloseCore).
public abstract partial class BaseEventLoop
{
    // key -> hook. Guarded by: the loop thread (Add, Remove), and Close, which runs when the loop does not.
    private Dictionary<object, Action>? _closeHooks;

    /// <summary>Runs <paramref name="hook"/> when the loop closes, unless <see cref="RemoveCloseHook"/> removes it first. Loop thread only; replaces a hook of the same key.</summary>
    /// <exception cref="InvalidOperationException">The loop is closed.</exception>
    internal void AddCloseHook(object key, Action hook)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(hook);
        CheckClosed();
        (_closeHooks ??= [])[key] = hook;
    }

    /// <summary>Removes the hook of <paramref name="key"/>; false if there was none (or the loop closed and ran it). Loop thread only.</summary>
    internal bool RemoveCloseHook(object key) => _closeHooks?.Remove(key) == true;

    /// <summary>How many close hooks are set (for tests: a finished transport leaves none).</summary>
    internal int CloseHookCount => _closeHooks?.Count ?? 0;

    /// <summary>Runs every hook once (in no set order); one that throws is reported and the others still run.</summary>
    private void RunCloseHooks()
    {
        if (_closeHooks is not { Count: > 0 } hooks)
        {
            _closeHooks = null;
            return;
        }

        _closeHooks = null;
        foreach (var hook in hooks.Values)
        {
            try
            {
                hook();
            }
            catch (Exception ex)
            {
                CallExceptionHandler(new ExceptionContext("Exception in a close hook of the event loop") { Exception = ex });
            }
        }
    }
}
