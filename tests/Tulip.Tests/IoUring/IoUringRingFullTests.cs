using System.Diagnostics;
using System.Net;
using Tulip.IoUring;
using Tulip.Selectors;
using Tulip.Tests.Transports;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.IoUring;

/// <summary>
/// Issue 14's "ring full handled by queueing, not by failure": when the submission ring is full and the
/// kernel takes nothing from it (EAGAIN: out of memory for requests, or EBUSY), <see cref="IoUringRing.GetSqe"/>
/// queues the entry outside the ring instead of throwing, and the next submissions hand every queued
/// entry over, in the order asked. The kernel's refusal is simulated (<see cref="IoUringRing.RefuseSubmissionsForTest"/>):
/// this kernel refuses only when it runs out of memory.
/// </summary>
public sealed class IoUringRingFullTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public void A_full_ring_the_kernel_takes_nothing_from_queues_outside_it_and_everything_completes_in_order()
    {
        const int Count = 50;
        using var ring = new IoUringRing(4);
        ring.RefuseSubmissionsForTest = int.MaxValue;
        for (int i = 0; i < Count; i++)
        {
            ref IoUringSqe sqe = ref ring.GetSqe();
            sqe.Opcode = Interop.IoUring.OP_NOP;
            sqe.UserData = (ulong)i;
        }

        Assert.Equal((uint)Count, ring.Queued);
        Assert.Equal(Count - 4, ring.Overflowed);
        Assert.Equal(0, ring.Submit()); // still refused: nothing lost, nothing reordered
        Assert.Equal((uint)Count, ring.Queued);
        Assert.False(ring.TryGetCompletion(out _));

        ring.RefuseSubmissionsForTest = 0;
        Assert.Equal(Count, ring.Submit());
        Assert.Equal(0u, ring.Queued);
        Assert.Equal(0, ring.Overflowed);
        Assert.Equal(Enumerable.Range(0, Count).Select(i => (ulong)i), AllCompletions(ring, Count).Select(c => c.UserData));
    }

    [Fact]
    public void Entries_queued_outside_the_ring_go_before_later_ones_once_the_kernel_takes_again()
    {
        using var ring = new IoUringRing(4);
        ring.RefuseSubmissionsForTest = 1; // the GetSqe that finds the ring full is refused once
        for (int i = 0; i < 6; i++)
        {
            ref IoUringSqe sqe = ref ring.GetSqe();
            sqe.Opcode = Interop.IoUring.OP_NOP;
            sqe.UserData = (ulong)i;
        }

        Assert.Equal(2, ring.Overflowed);
        // The ring has room again only after a submission; until then new entries queue behind the others.
        for (int i = 6; i < 40; i++)
        {
            ref IoUringSqe sqe = ref ring.GetSqe();
            sqe.Opcode = Interop.IoUring.OP_NOP;
            sqe.UserData = (ulong)i;
        }

        Assert.Equal(40u, ring.Queued);
        // One wait: everything goes in before it waits, and every completion comes back in order.
        ring.SubmitAndWait(0);
        Assert.Equal(0u, ring.Queued);
        Assert.Equal(Enumerable.Range(0, 40).Select(i => (ulong)i), AllCompletions(ring, 40).Select(c => c.UserData));
    }

    [Fact]
    public void SubmitAll_hands_over_what_waits_outside_the_ring()
    {
        using var selector = new IoUringSelector(entries: 4);
        var ring = selector.Ring;
        ring.RefuseSubmissionsForTest = 1;
        for (int i = 0; i < 20; i++)
        {
            ref IoUringSqe sqe = ref selector.GetSqe();
            sqe.Opcode = Interop.IoUring.OP_NOP;
            sqe.UserData = IoUringSelector.CancelTag; // ignored by the selector, as a cancel's own completion
        }

        Assert.True(ring.Overflowed > 0);
        selector.SubmitAll();
        Assert.Equal(0u, ring.Queued);
        Assert.False(selector.HasWork && ring.Queued != 0);
    }

    /// <summary>
    /// The loop on a ring of 4 entries, whose kernel refuses a submission each round: 64 connections echo at
    /// once (each iteration queues far more receives, sends and accepts than the ring holds) and each gets its
    /// bytes back.
    /// </summary>
    [Fact]
    public void A_loop_whose_ring_is_full_and_refused_goes_on_and_every_connection_echoes()
    {
        const int Connections = 64;
        using var loop = new IoUringEventLoop(new IoUringSelector(entries: 4));
        var errors = new List<ExceptionContext>();
        loop.SetExceptionHandler((_, ctx) => errors.Add(ctx));
        var ring = loop.Uring.Ring;
        loop.RunUntilComplete(async () =>
        {
            await using var server = await loop.CreateServerAsync(() => new EchoProtocol(), ["127.0.0.1"], 0);
            int port = ((IPEndPoint)server.Sockets[0].LocalEndPoint!).Port;
            var clients = new List<(ITransport Transport, RecordingProtocol Protocol)>();
            for (int i = 0; i < Connections; i++)
            {
                clients.Add(await loop.CreateConnectionAsync(() => new RecordingProtocol(loop), "127.0.0.1", port));
            }

            // Each round the kernel refuses the first submission: what the ring cannot take waits outside it.
            for (int round = 0; round < 3; round++)
            {
                ring.RefuseSubmissionsForTest = 1;
                foreach (var (transport, _) in clients)
                {
                    transport.Write(Pattern(1000));
                }

                foreach (var (_, protocol) in clients)
                {
                    Assert.True(await protocol.WaitBytes(loop, 1000 * (round + 1)), $"round {round}: an echo never came back");
                }
            }

            foreach (var (transport, protocol) in clients)
            {
                transport.Close();
                await protocol.Lost;
            }
        });

        Assert.Empty(errors);
        Assert.Equal(0u, ring.Queued);
        Assert.Equal(0, loop.OperationsInKernel);
    }

    private sealed class EchoProtocol : Protocol
    {
        private ITransport _transport = null!;

        public override void ConnectionMade(IBaseTransport transport) => _transport = (ITransport)transport;

        public override void DataReceived(ReadOnlySpan<byte> data) => _transport.Write(data);
    }

    private static IoUringCqe NextCompletion(IoUringRing ring)
    {
        var watch = Stopwatch.StartNew();
        IoUringCqe cqe;
        while (!ring.TryGetCompletion(out cqe))
        {
            Assert.True(watch.Elapsed < Patience, "no completion came");
            ring.SubmitAndWait(100_000_000); // 100 ms, then look again: a hang guard, not a timing
        }

        return cqe;
    }

    private static List<IoUringCqe> AllCompletions(IoUringRing ring, int count)
    {
        var all = new List<IoUringCqe>(count);
        while (all.Count < count)
        {
            all.Add(NextCompletion(ring));
        }

        Assert.False(ring.TryGetCompletion(out _), "more completions than submissions");
        return all;
    }
}
