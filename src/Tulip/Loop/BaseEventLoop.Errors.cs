using System;
using Microsoft.Extensions.Logging;

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
        Logger.LogError(context.Exception, "{Context}", context.ToString());
    }

    /// <summary>
    /// Reports an error found on any thread (a finalizer, a thread-pool continuation): through the
    /// exception handler on the loop thread while the loop lives, straight to the log once it is closed.
    /// </summary>
    internal void ReportFromAnyThread(ExceptionContext context)
    {
        if (!ScheduleFromAnyThread(static (loop, ctx) => ((BaseEventLoop)loop!).CallExceptionHandler((ExceptionContext)ctx!), this, context))
        {
            DefaultExceptionHandler(context);
        }
    }
}
