// The second half of the namespace proof (docs/ARCHITECTURE.md, "Namespaces" and "Locks"): a default
// project (ImplicitUsings: System.Threading among them) that imports Tulip.Synchronization. The names
// only Tulip has are written unqualified; the three System.Threading also has (Lock, Semaphore,
// Barrier) are aliased, the one choice the namespace decision asks of a program importing both, and
// the SDK's own types stay reachable under their names. If a new Tulip.Synchronization type took
// another implicit-using name, or the aliases stopped being enough, this file would stop compiling.
using Tulip;
using Tulip.Synchronization;
using AsyncBarrier = Tulip.Synchronization.Barrier;
using AsyncLock = Tulip.Synchronization.Lock;
using AsyncSemaphore = Tulip.Synchronization.Semaphore;

namespace NamespaceProof;

internal static class SynchronizationNames
{
    /// <summary>Uses Tulip's primitives beside System.Threading's; returns a line saying so.</summary>
    public static string Use()
    {
        System.Threading.Lock sdkLock = new();
        using System.Threading.SemaphoreSlim sdkSemaphore = new(1);
        using var loop = new Tulip.Testing.TestEventLoop();
        return loop.RunUntilComplete(async () =>
        {
            var gate = new AsyncLock();
            var condition = new Condition(gate);
            var ready = new Event();
            var permits = new AsyncSemaphore(2);
            var bounded = new BoundedSemaphore();
            var barrier = new AsyncBarrier(1);
            using (await condition.AcquireAsync())
            {
                ready.Set();
                condition.NotifyAll();
            }

            await ready.WaitAsync();
            using (await permits.AcquireAsync())
            using (await bounded.AcquireAsync())
            {
                int index = await barrier.WaitAsync();
                lock (sdkLock)
                {
                    return $"synchronization: {index} {gate.Locked} {sdkSemaphore.CurrentCount} {nameof(BrokenBarrierError)}";
                }
            }
        });
    }
}
