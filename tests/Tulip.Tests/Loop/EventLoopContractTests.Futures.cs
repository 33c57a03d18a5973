namespace Tulip.Tests.Loop;

public abstract partial class EventLoopContractTests
{
    [Fact]
    public void A_pending_future_has_no_result_nor_exception()
    {
        using var h = NewLoop();
        var f = h.Loop.CreateFuture<int>();
        Assert.False(f.Done);
        Assert.False(f.Cancelled);
        Assert.Throws<InvalidStateError>(() => f.Result());
        Assert.Throws<InvalidStateError>(() => f.Exception());
        f.Cancel();
    }

    [Fact]
    public void A_future_with_a_result_gives_it_and_refuses_a_second_outcome()
    {
        using var h = NewLoop();
        var f = h.Loop.CreateFuture<int>();
        f.SetResult(3);
        Assert.True(f.Done);
        Assert.Equal(3, f.Result());
        Assert.Null(f.Exception());
        Assert.Throws<InvalidStateError>(() => f.SetResult(4));
        Assert.Throws<InvalidStateError>(() => f.SetException(new FormatException()));
        Assert.False(f.TrySetResult(5));
        Assert.False(f.Cancel());
        Assert.Equal(3, f.Result());
    }

    [Fact]
    public void A_future_with_an_exception_throws_it_from_Result()
    {
        using var h = NewLoop();
        var f = h.Loop.CreateFuture<int>();
        var boom = new FormatException("boom");
        f.SetException(boom);
        Assert.Same(boom, f.Exception());
        Assert.Same(boom, Assert.Throws<FormatException>(() => f.Result()));
        Assert.False(f.TrySetException(new FormatException()));
    }

    [Fact]
    public void A_cancelled_future_throws_CancelledError_with_the_message()
    {
        using var h = NewLoop();
        var f = h.Loop.CreateFuture<int>();
        Assert.True(f.Cancel("why"));
        Assert.True(f.Done);
        Assert.True(f.Cancelled);
        Assert.False(f.Cancel());
        Assert.Equal("why", Assert.Throws<CancelledError>(() => f.Result()).Message);
        Assert.Throws<CancelledError>(() => f.Exception());
        Assert.Throws<InvalidStateError>(() => f.SetResult(1));
    }

    [Fact]
    public void SetException_refuses_a_cancellation_exception()
    {
        using var h = NewLoop();
        var f = h.Loop.CreateFuture<int>();
        Assert.Throws<ArgumentException>(() => f.SetException(new OperationCanceledException()));
        Assert.Throws<ArgumentException>(() => f.SetException(new CancelledError()));
        Assert.Throws<ArgumentException>(() => f.SetException(new TaskCanceledException()));
        Assert.False(f.Done);
        f.Cancel();
    }

    [Fact]
    public void Done_callbacks_are_scheduled_not_run_inline_and_run_in_order()
    {
        using var h = NewLoop();
        var f = h.Loop.CreateFuture<int>();
        var order = new List<string>();
        f.AddDoneCallback(_ => order.Add("1"));
        f.AddDoneCallback(_ => order.Add("2"));
        f.AddDoneCallback(x => order.Add("3:" + ((Future<int>)x).Result()));
        f.SetResult(9);
        Assert.Empty(order);

        f.AddDoneCallback(_ => order.Add("late"));
        Assert.Empty(order);

        h.RunOnce();
        Assert.Equal(["1", "2", "3:9", "late"], order);
    }

    [Fact]
    public void RemoveDoneCallback_removes_every_registration_and_counts_them()
    {
        using var h = NewLoop();
        var f = h.Loop.CreateFuture<int>();
        var order = new List<string>();
        Action<Future> twice = _ => order.Add("twice");
        Action<Future> kept = _ => order.Add("kept");
        f.AddDoneCallback(twice);
        f.AddDoneCallback(kept);
        f.AddDoneCallback(twice);
        Assert.Equal(2, f.RemoveDoneCallback(twice));
        Assert.Equal(0, f.RemoveDoneCallback(twice));
        f.SetResult(1);
        h.RunOnce();
        Assert.Equal(["kept"], order);
    }

    [Fact]
    public void AsTask_completes_from_the_loop()
    {
        using var h = NewLoop();
        var f = h.Loop.CreateFuture<int>();
        var t = f.AsTask();
        h.Loop.CallSoon(() => f.SetResult(11));
        h.RunOnce();
        h.RunOnce();
        Assert.True(t.Wait(LoopHarness.Patience));
        Assert.Equal(11, t.Result);
    }
}
