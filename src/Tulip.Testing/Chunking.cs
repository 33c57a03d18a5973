using System;

namespace Tulip.Testing;

/// <summary>
/// How a <see cref="ConnectedPair"/> cuts the byte stream into deliveries: whole (what is in flight
/// arrives in one call, as a fast local socket tends to), fixed sizes (one byte at a time is the
/// harshest), or random sizes from a seed (reproducible). A parser that assumes a message arrives
/// in one <c>DataReceived</c> passes with <see cref="Whole"/> and fails with the others.
/// </summary>
public abstract class Chunking
{
    /// <summary>Everything in flight arrives in one call (writes in the same iteration coalesce, as on TCP).</summary>
    public static Chunking Whole { get; } = new FixedChunking(int.MaxValue);

    /// <summary>One byte per call.</summary>
    public static Chunking OneByte { get; } = new FixedChunking(1);

    /// <summary>Calls of <paramref name="size"/> bytes (the last may be shorter).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is not positive.</exception>
    public static Chunking Fixed(int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        return new FixedChunking(size);
    }

    /// <summary>
    /// Calls of random sizes between <paramref name="minSize"/> and <paramref name="maxSize"/>,
    /// drawn from <paramref name="seed"/>: the same seed cuts the same stream the same way, so a
    /// failure found with one seed is reproduced with it.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The sizes are not 1 &lt;= min &lt;= max.</exception>
    public static Chunking Random(int seed, int minSize = 1, int maxSize = 64)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(minSize);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSize, minSize);
        return new RandomChunking(seed, minSize, maxSize);
    }

    /// <summary>The size of the next delivery when <paramref name="available"/> (at least 1) bytes are in flight: between 1 and <paramref name="available"/>.</summary>
    public abstract int NextSize(int available);

    private sealed class FixedChunking : Chunking
    {
        private readonly int _size;

        public FixedChunking(int size) => _size = size;

        public override int NextSize(int available) => Math.Min(_size, available);

        public override string ToString() => _size == int.MaxValue ? "Whole" : $"Fixed({_size})";
    }

    private sealed class RandomChunking : Chunking
    {
        private readonly Random _random;
        private readonly int _min;
        private readonly int _max;
        private readonly int _seed;

        public RandomChunking(int seed, int min, int max)
        {
            // A seeded System.Random gives the same sequence on every run and runtime: reproducible test data, not security.
#pragma warning disable CA5394
            _random = new Random(seed);
#pragma warning restore CA5394
            _seed = seed;
            _min = min;
            _max = max;
        }

#pragma warning disable CA5394
        public override int NextSize(int available) => Math.Min(available, _random.Next(_min, _max + 1));
#pragma warning restore CA5394

        public override string ToString() => $"Random(seed: {_seed}, {_min}..{_max})";
    }
}
