namespace Tulip;

/// <summary>
/// The cancellation bookkeeping of a task whose result type is not known: what timeout scopes and
/// task groups need of the task they run in. <see cref="LoopTask{T}"/> implements it with its
/// public methods.
/// </summary>
internal partial interface ILoopTask
{
    /// <summary>See <see cref="LoopTask{T}.Cancelling"/>.</summary>
    int Cancelling();

    /// <summary>See <see cref="LoopTask{T}.Uncancel"/>.</summary>
    int Uncancel();

    /// <summary>See <see cref="LoopTask{T}.TakePendingCancellation"/>.</summary>
    bool TakePendingCancellation();
}
