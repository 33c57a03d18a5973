using Tulip;

namespace Tulip.Tests.Transports;

internal static partial class TestUtil
{
    /// <summary>
    /// Starts a task that disposes <paramref name="disposable"/> and awaits it, and returns it once the
    /// dispose has started waiting: for the tests of a close-and-wait DisposeAsync that something holds up.
    /// </summary>
    public static async LoopTask<LoopTask> StartDisposing(BaseEventLoop loop, IAsyncDisposable disposable)
    {
        var waiting = loop.CreateFuture<VoidResult>();
        async LoopTask Disposer()
        {
            var disposing = disposable.DisposeAsync();
            waiting.SetResult(default);
            await disposing;
        }

        var disposer = loop.CreateTask(Disposer);
        await waiting;
        return disposer;
    }
}
