// Outside namespace Tulip on purpose, as a user's code is (see tests/Tulip.TestProgram/Namespaces.cs):
// with the SDK's implicit usings and `using Tulip.Queues;` at the top, Tulip's one-parameter
// PriorityQueue<T> and the SDK's PriorityQueue<TElement, TPriority> are both named unqualified here.
// Generic arity is part of a type's name, so they do not collide (CS0104 would fail the build).
// Queue<T> does collide with System.Collections.Generic.Queue<T>: a file that imports Tulip.Queues
// and the SDK's collections qualifies one of them or aliases it, as ARCHITECTURE "Namespaces" says.
using Tulip.Queues;

namespace QueueNamespaceProof;

public class QueueNamespaceTests
{
    [Fact]
    public void TulipsPriorityQueueAndTheSdksAreNamedSideBySide()
    {
        PriorityQueue<string, int> sdk = new();
        sdk.Enqueue("b", 2);
        sdk.Enqueue("a", 1);
        PriorityQueue<int> tulip = new();
        tulip.PutNowait(2);
        tulip.PutNowait(1);
        Assert.Equal("a", sdk.Dequeue());
        Assert.Equal(1, tulip.GetNowait());
        Assert.IsAssignableFrom<Tulip.Queues.Queue<int>>(tulip);
    }
}
