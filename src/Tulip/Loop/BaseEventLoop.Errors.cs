using System;
using System.Collections.Generic;
using Microsoft.Extensions.Logging;
using Tulip.Diagnostics;

namespace Tulip;

public abstract partial class BaseEventLoop
{
    private Action<IEventLoop, ExceptionContext>? _exceptionHandler;

    /// <inheritdoc/>
    public void SetExceptionHandler(Action<IEventLoop, ExceptionContext>? handler) => _exceptionHandler = handler;

    /// <inheritdoc/>
    public Action<IEventLoop, ExceptionContext>? GetExceptionHandler() => _exceptionHandler;

    /// <inheritdoc/>
    public void CallExceptionHandler(ExceptionContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var handler = _exceptionHandler;
        if (handler is null)
        {
            DefaultExceptionHandler(context);
            return;
        }

        try
        {
            handler(this, context);
        }
        catch (Exception ex)
        {
            // The handler itself failed: log both, through the default handler, and go on.
            DefaultExceptionHandler(new ExceptionContext("Unhandled error in the exception handler")
            {
                Exception = ex,
                // The context's text does not include its exception: log that too, or the error the
                // handler was given is lost.
                Extra = new System.Collections.Generic.Dictionary<string, object?>
                {
                    ["context"] = context.ToString(),
                    ["exception"] = context.Exception,
                },
            });
        }
    }

    /// <inheritdoc/>
    public void DefaultExceptionHandler(ExceptionContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Log.UnhandledLoopError(Logger, context.Exception, context.ToString());
    }

    // The ready-queue callback of a report from another thread; Close recognises queued reports by it.
    private static readonly Action<object?, object?> s_report =
        static (loop, context) => ((BaseEventLoop)loop!).CallExceptionHandler((ExceptionContext)context!);

    /// <summary>
    /// Reports an error found on any thread (a finalizer, a thread-pool continuation): through the
    /// exception handler on the loop thread while the loop lives, straight to the log once it is closed.
    /// A report still queued when the loop closes is delivered by <see cref="Close"/>, not dropped.
    /// </summary>
    internal void ReportFromAnyThread(ExceptionContext context)
    {
        if (!ScheduleFromAnyThread(s_report, this, context))
        {
            DefaultExceptionHandler(context);
        }
    }

    /// <summary>
    /// Close's last word on what never ran: reports queued from other threads (or already moved to the
    /// ready queue) go to the exception handler, since they are the only news of an error; the count of
    /// the thread-safe callbacks dropped is logged (a warning in debug mode, a debug entry otherwise).
    /// </summary>
    private void DeliverReportsAtClose(List<ReadyItem> fromOtherThreads)
    {
        int dropped = 0;
        foreach (var item in fromOtherThreads)
        {
            if (ReferenceEquals(item.Callback, s_report))
            {
                CallExceptionHandler((ExceptionContext)item.Arg2!);
            }
            else
            {
                dropped++;
            }
        }

        while (_ready.Count > 0)
        {
            var item = _ready.Dequeue();
            if (ReferenceEquals(item.Callback, s_report))
            {
                CallExceptionHandler((ExceptionContext)item.Arg2!);
            }
        }

        if (dropped > 0)
        {
            var level = _debug ? LogLevel.Warning : LogLevel.Debug;
            if (Logger.IsEnabled(level))
            {
                Log.ThreadSafeCallbacksDroppedAtClose(Logger, level, dropped);
            }
        }
    }
}
