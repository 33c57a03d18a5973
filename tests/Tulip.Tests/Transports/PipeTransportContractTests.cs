using System.IO.Pipes;
using System.Net.Sockets;
using System.Text;
using Tulip;
using Tulip.Tests.Selectors;
using static Tulip.Tests.Transports.TestUtil;

namespace Tulip.Tests.Transports;

/// <summary>
/// The pipe half of PEP 3156 "Pipes and Subprocesses" on every readiness backend, against
/// asyncio 3.13's unix_events behaviour: EOF, pause/resume, flow control to a slow reader, the
/// reader going away (EPIPE, never SIGPIPE), FIFOs, socketpair ends, character devices, and bad input.
/// </summary>
public abstract class PipeTransportContractTests : LoopSuite
{
    protected PipeTransportContractTests(LoopKind kind) : base(kind)
    {
    }

    // ---- Read side -----------------------------------------------------------------------------

    [Fact]
    public void ReadPipe_DeliversData_ThenEofReceived_ThenConnectionLostNull()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var (t, p) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), pipe.TakeRead());
            Assert.True(t.IsReading);
            Assert.False(t.IsClosing);
            PipeTestNative.WriteAll(pipe.WriteFd, "hello pipe"u8);
            Assert.True(await p.WaitBytes(loop, 10));
            pipe.CloseWrite();
            Assert.Null(await p.Lost);
            Assert.Equal("hello pipe", Encoding.ASCII.GetString(p.Received));
            Assert.Equal(["made", "data", "eof", "lost"], p.Calls);
            Assert.Empty(p.Errors);
            Assert.True(t.IsClosing);
            Assert.False(t.IsReading);
        });
    }

    [Fact]
    public void ReadPipe_PauseReading_HoldsDataUntilResumed()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var (t, p) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), pipe.TakeRead());
            t.PauseReading();
            t.PauseReading(); // idempotent
            Assert.False(t.IsReading);
            PipeTestNative.WriteAll(pipe.WriteFd, "abc"u8);
            await Eventually(() => false, 5); // several iterations with data waiting in the pipe
            Assert.Equal(0, p.ReceivedCount);
            t.ResumeReading();
            t.ResumeReading();
            Assert.True(t.IsReading);
            Assert.True(await p.WaitBytes(loop, 3));
            t.Close();
            Assert.Null(await p.Lost);
            Assert.Equal(["made", "data", "lost"], p.Calls);
            Assert.Empty(p.Errors);
        });
    }

    [Fact]
    public void ReadPipe_PauseAndResumeInsideDataReceived_DeliversEveryByteOnceInOrder()
    {
        Run(Kind, async loop =>
        {
            // The protocol pauses and resumes inside DataReceived and only then copies what it was given: a
            // read started by that resume must not land in the buffer the protocol is still reading.
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var protocol = new ResumeInsideProtocol(loop);
            var (t, _) = await loop.ConnectReadPipeAsync(() => protocol, pipe.TakeRead());
            var data = Pattern(1 << 20);
            int writeFd = pipe.WriteFd;
            var writer = new Thread(() => PipeTestNative.WriteAll(writeFd, data)); // blocking: the pipe holds 64 KiB
            writer.Start();
            Assert.True(await Eventually(() => protocol.Received.Length == data.Length, 30_000), $"{protocol.Received.Length} of {data.Length} bytes");
            writer.Join();
            pipe.CloseWrite();
            Assert.Null(await protocol.Lost);
            Assert.Equal(data, protocol.Received.ToArray());
        });
    }

    [Fact]
    public void ReadPipe_BufferedProtocolPausingMidChunk_GetsNoMoreUntilItResumes()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var protocol = new SmallBufferProtocol(loop, 7) { PauseAfterFirstUpdate = true };
            var (t, _) = await loop.ConnectReadPipeAsync(() => protocol, pipe.TakeRead());
            var data = Pattern(1000);
            PipeTestNative.WriteAll(pipe.WriteFd, data);
            Assert.True(await Eventually(() => protocol.Updates > 0), "nothing was delivered");
            await Eventually(() => false, 20); // iterations with the rest of the chunk held
            Assert.Equal(1, protocol.Updates);
            Assert.False(t.IsReading);
            t.ResumeReading();
            pipe.CloseWrite();
            Assert.Null(await protocol.Lost);
            Assert.Equal(data, protocol.Received.ToArray());
            Assert.Equal(0, protocol.UpdatesWhilePaused);
        });
    }

    [Fact]
    public void ReadPipe_Close_EndsWithoutEof_AndReportsThePipe()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            using var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(pipe.TakeRead(), ownsHandle: true);
            var (t, p) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), handle);
            Assert.Same(handle, t.GetExtraInfo("pipe"));
            Assert.Equal("none", t.GetExtraInfo("peername", "none"));
            t.Close();
            t.Close();
            Assert.True(t.IsClosing);
            Assert.Null(await p.Lost);
            Assert.Equal(["made", "lost"], p.Calls);
            Assert.True(handle.IsClosed);
            Assert.Null(t.GetExtraInfo("pipe"));
        });
    }

    [Fact]
    public void ReadPipe_CloseWithAReadOutstanding_ClosesTheReadEnd_NothingDeliveredAfterConnectionLost()
    {
        Run(Kind, async loop =>
        {
            // A completion loop has a read in flight whenever the transport reads; data may be landing
            // in it as Close comes. Whatever it brought, nothing reaches the protocol after
            // ConnectionLost, and the read end is closed by then (a blocked read would keep it open).
            for (int i = 0; i < 20; i++)
            {
                using var pipe = new NativePipe(Interop.O_CLOEXEC);
                var (t, p) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), pipe.TakeRead());
                if (i % 2 == 1)
                {
                    PipeTestNative.WriteAll(pipe.WriteFd, "racing the close"u8);
                }

                t.Close();
                Assert.Null(await p.Lost);
                await Eventually(() => false, 3); // a few iterations for a late completion to show up
                Assert.Empty(p.Errors);
                Assert.Equal("lost", p.Calls[^1]);
                Assert.Equal(-1, WriteFd(pipe.WriteFd, "x"u8));
                Assert.Equal(Interop.Errno.EPIPE, Interop.GetLastErrno());
            }
        });
    }

    [Fact]
    public void ReadPipe_BufferedProtocol_ReadsIntoItsBuffer()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var protocol = new SmallBufferProtocol(loop, 7);
            var (t, _) = await loop.ConnectReadPipeAsync(() => protocol, pipe.TakeRead());
            var data = Pattern(1000);
            PipeTestNative.WriteAll(pipe.WriteFd, data);
            pipe.CloseWrite();
            Assert.Null(await protocol.Lost);
            Assert.Equal(data, protocol.Received.ToArray());
            Assert.True(protocol.Updates >= 1000 / 7);
            Assert.True(protocol.SawEof);
        });
    }

    // ---- Write side ------------------------------------------------------------------------------

    [Fact]
    public void WritePipe_ToReadPipe_BytesExact_CloseFlushesFirst()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var (rt, reader) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), pipe.TakeRead());
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.TakeWrite());
            Assert.True(wt.CanWriteEof);
            var data = Pattern(300_000);
            wt.Write(data);                   // more than a pipe holds: the rest is buffered
            Assert.True(wt.GetWriteBufferSize() > 0);
            wt.Close();                       // flushes, then closes
            Assert.True(wt.IsClosing);
            wt.Write("dropped"u8);            // after Close: dropped silently, as asyncio
            Assert.Null(await writer.Lost);
            Assert.Null(await reader.Lost);
            Assert.Equal(data, reader.Received);
            Assert.Equal(["made", "data", "eof", "lost"], reader.Calls);
            Assert.Equal(["made", "lost"], writer.Calls);
            Assert.Empty(reader.Errors);
            Assert.Empty(writer.Errors);
        });
    }

    [Fact]
    public void WritePipe_WriteLinesAndWriteEof()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var (rt, reader) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), pipe.TakeRead());
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.TakeWrite());
            wt.WriteLines([Encoding.ASCII.GetBytes("one\n"), Encoding.ASCII.GetBytes("two\n")]);
            wt.WriteEof();
            var ex = Assert.Throws<InvalidOperationException>(() => wt.Write("x"u8));
            Assert.Contains("WriteEof", ex.Message);
            Assert.Null(await writer.Lost);
            Assert.Null(await reader.Lost);
            Assert.Equal("one\ntwo\n", Encoding.ASCII.GetString(reader.Received));
        });
    }

    [Fact]
    public void WritePipe_WriteLines_ManyBuffers_GatheredAndBufferedInOrder()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var (rt, reader) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), pipe.TakeRead());
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.TakeWrite());
            // 3000 buffers (more than IOV_MAX), 0 to 400 bytes each, ~600 KB: the pipe takes a part
            // of one writev, the rest is buffered in order; then more lines behind the backlog.
            var rng = new Random(6);
            var chunks = Enumerable.Range(0, 3000).Select(_ => { var b = new byte[rng.Next(0, 400)]; rng.NextBytes(b); return (ReadOnlyMemory<byte>)b; }).ToList();
            wt.WriteLines(chunks);
            Assert.True(wt.GetWriteBufferSize() > 0);
            wt.WriteLines([Encoding.ASCII.GetBytes("tail\n")]);
            wt.Close();
            Assert.Null(await writer.Lost);
            Assert.Null(await reader.Lost);
            var expected = chunks.SelectMany(c => c.ToArray()).Concat(Encoding.ASCII.GetBytes("tail\n")).ToArray();
            Assert.Equal(expected, reader.Received);
            Assert.True(writer.PauseCount >= 1);
        });
    }

    [Fact]
    public void WritePipe_WriteLines_SmallFitsAtOnce()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.TakeWrite());
            wt.WriteLines([Encoding.ASCII.GetBytes("a"), ReadOnlyMemory<byte>.Empty, Encoding.ASCII.GetBytes("bc")]);
            wt.WriteLines([]);
            Assert.Equal(0, wt.GetWriteBufferSize());
            var buffer = new byte[8];
            Assert.Equal(3, ReadFd(pipe.ReadFd, buffer));
            Assert.Equal("abc", Encoding.ASCII.GetString(buffer, 0, 3));
            wt.Close();
            await writer.Lost;
        });
    }

    [Fact]
    public void WritePipe_Abort_DropsTheBuffer()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.TakeWrite());
            wt.Write(Pattern(200_000));
            Assert.True(wt.GetWriteBufferSize() > 0);
            wt.Abort();
            Assert.Equal(0, wt.GetWriteBufferSize());
            Assert.Null(await writer.Lost);
            Assert.Equal(["made", "lost"], writer.Calls);
            // The reader sees what reached the pipe, then EOF: the rest was dropped.
            int got = 0;
            var buffer = new byte[65536];
            Interop.SetNonBlocking(pipe.ReadFd, false);
            while (true)
            {
                int n = ReadFd(pipe.ReadFd, buffer);
                if (n == 0) break;
                got += n;
            }

            Assert.InRange(got, 1, 199_999);
        });
    }

    [Fact]
    public void WritePipe_OneMiBToASlowReader_PausesWriting_MemoryBounded_BytesExact()
    {
        const int Total = 1 << 20;
        const int Chunk = 16 * 1024;
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var (rt, reader) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), pipe.TakeRead());
            // A slow reader: after each delivery it stops reading and resumes on a later iteration.
            reader.OnData = () =>
            {
                rt.PauseReading();
                loop.CallSoon(() => loop.CallSoon(rt.ResumeReading));
            };
            var writer = new PipeRecorder(loop);
            var (wt, _) = await loop.ConnectWritePipeAsync(() => writer, pipe.TakeWrite());
            var (low, high) = wt.GetWriteBufferLimits();
            Assert.Equal((16 * 1024, 64 * 1024), (low, high));
            var data = Pattern(Total);
            int sent = 0, maxBuffered = 0;
            bool paused = false;
            void Pump()
            {
                paused = false;
                while (sent < Total && !paused)
                {
                    wt.Write(data.AsSpan(sent, Chunk));
                    sent += Chunk;
                    maxBuffered = Math.Max(maxBuffered, wt.GetWriteBufferSize());
                    paused = writer.PauseCount > writer.ResumeCount;
                }

                if (sent == Total)
                {
                    wt.Close();
                }
            }

            writer.OnResume = Pump;
            Pump();
            Assert.Null(await writer.Lost);
            Assert.Null(await reader.Lost);
            Assert.True(writer.PauseCount >= 1, "PauseWriting was never called");
            Assert.Equal(writer.PauseCount, writer.ResumeCount);
            Assert.True(maxBuffered <= high + Chunk, $"buffer grew to {maxBuffered}");
            Assert.Equal(Total, reader.ReceivedCount);
            Assert.Equal(data, reader.Received);
            Assert.Empty(reader.Errors);
            Assert.Empty(writer.Errors);
        });
    }

    /// <summary>
    /// The writer writes again from ResumeWriting and closes at once (a pipe adapter's last flush): the
    /// resume comes from the "buffer empty" path (low-water mark 0), and the close waits for the new backlog.
    /// </summary>
    [Fact]
    public void WritePipe_WriteAndCloseFromResumeWriting_EveryByteArrives()
    {
        const int Part = 300_000; // more than a pipe holds, so each part is partly buffered
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var (rt, reader) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), pipe.TakeRead());
            var writer = new PipeRecorder(loop);
            var (wt, _) = await loop.ConnectWritePipeAsync(() => writer, pipe.TakeWrite());
            wt.SetWriteBufferLimits(high: 64 * 1024, low: 0);
            var data = Pattern(2 * Part);
            bool refilled = false;
            writer.OnResume = () =>
            {
                if (!refilled)
                {
                    refilled = true;
                    wt.Write(data.AsSpan(Part));
                    wt.Close();
                }
            };
            wt.Write(data.AsSpan(0, Part));
            Assert.Equal(1, writer.PauseCount);
            Assert.Null(await writer.Lost);
            Assert.Null(await reader.Lost);
            Assert.True(refilled, "ResumeWriting was never called");
            Assert.Equal(data.Length, reader.ReceivedCount);
            Assert.Equal(data, reader.Received);
            Assert.Empty(reader.Errors);
            Assert.Empty(writer.Errors);
        });
    }

    [Fact]
    public void WritePipe_SetWriteBufferLimits_Validated()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.TakeWrite());
            Assert.Throws<ArgumentOutOfRangeException>(() => wt.SetWriteBufferLimits(high: 10, low: 20));
            wt.SetWriteBufferLimits(low: 100);
            Assert.Equal((100, 400), wt.GetWriteBufferLimits());
            wt.Close();
            await writer.Lost;
        });
    }

    // ---- The reader going away -----------------------------------------------------------------

    [Fact]
    public void WritePipe_ReaderGoesAway_WithDataBuffered_ConnectionLostWithEpipe()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.TakeWrite());
            wt.Write(Pattern(200_000));
            Assert.True(wt.GetWriteBufferSize() > 0);
            pipe.CloseRead();
            var ex = Assert.IsType<IOException>(await writer.Lost);
            Assert.Equal(Interop.Errno.EPIPE, ex.HResult);
            Assert.Contains("EPIPE", ex.Message);
            Assert.True(wt.IsClosing);
            Assert.Equal(0, wt.GetWriteBufferSize());
            wt.Write("after"u8); // dropped, no throw
            Assert.Equal(["made", "lost"], writer.Calls);
        });
    }

    [Fact]
    public void WritePipe_ReaderGoesAway_NothingBuffered_ConnectionLostNull()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.TakeWrite());
            pipe.CloseRead();
            Assert.Null(await writer.Lost); // asyncio: the reader left, nothing was lost
            Assert.True(wt.IsClosing);
        });
    }

    [Fact]
    public void WritePipe_WriteAfterReaderClosed_GetsEpipe_NotSigpipe()
    {
        Run(Kind, async loop =>
        {
            // .NET ignores SIGPIPE (bit 13 - 1 of SigIgn in /proc/self/status): a raw write to a
            // pipe without readers returns EPIPE instead of killing the process.
            string sigIgn = File.ReadAllLines("/proc/self/status").Single(l => l.StartsWith("SigIgn:", StringComparison.Ordinal)).Split(':')[1].Trim();
            Assert.NotEqual(0UL, Convert.ToUInt64(sigIgn, 16) & (1UL << (13 - 1)));
            using (var raw = new NativePipe(Interop.O_CLOEXEC))
            {
                raw.CloseRead();
                Assert.Equal(-1, WriteFd(raw.WriteFd, "x"u8));
                Assert.Equal(Interop.Errno.EPIPE, Interop.GetLastErrno());
            }

            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.TakeWrite());
            pipe.CloseRead();
            wt.Write("into the void"u8); // before the loop notices: write(2) fails with EPIPE
            var ex = Assert.IsType<IOException>(await writer.Lost);
            Assert.Equal(Interop.Errno.EPIPE, ex.HResult);
            Assert.Contains("broken pipe", ex.Message);
        });
    }

    // ---- Kinds of fd -----------------------------------------------------------------------------

    [Fact]
    public void Fifo_BothEnds_StreamOverloads()
    {
        string path = Path.Combine(Path.GetTempPath(), $"tulip-fifo-{Guid.NewGuid():N}");
        Assert.Equal(0, PipeTestNative.MkFifo(path, 0x180));
        try
        {
            Run(Kind, async loop =>
            {
                // Open the read end without blocking (no writer yet), then the write end, then make the
                // transports: a read of a FIFO that no writer has opened yet returns EOF at once, which a
                // completion loop (it reads at once) reports, while a readiness loop waits for a writer.
                int rfd = PipeTestNative.Open(path, PipeTestNative.O_RDONLY | PipeTestNative.O_NONBLOCK | PipeTestNative.O_CLOEXEC);
                Assert.True(rfd >= 0);
                var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
                var (rt, reader) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), rfd);
                var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), stream);
                Assert.Same(stream, wt.GetExtraInfo("pipe"));
                wt.Write("through a fifo"u8);
                wt.Close();
                Assert.Null(await writer.Lost);
                Assert.Null(await reader.Lost);
                Assert.Equal("through a fifo", Encoding.ASCII.GetString(reader.Received));
                Assert.False(stream.CanWrite); // the transport disposed the stream it was given
            });
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void SocketpairEnds_NetworkStreamAndFd()
    {
        Run(Kind, async loop =>
        {
            var (a, b) = PipeTestNative.StreamSocketPair();
            var (rt, reader) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), a);
            var socket = new Socket(new SafeSocketHandle(b, ownsHandle: true));
            var stream = new NetworkStream(socket, ownsSocket: true);
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), stream);
            var data = Pattern(100_000);
            wt.Write(data);
            wt.Close();
            Assert.Null(await writer.Lost);
            Assert.Null(await reader.Lost);
            Assert.Equal(data, reader.Received);
            Assert.Equal(["made", "data", "eof", "lost"], reader.Calls);
        });
    }

    [Fact]
    public void AnonymousPipeStreams_PipeStreamOverloads()
    {
        Run(Kind, async loop =>
        {
            var server = new AnonymousPipeServerStream(PipeDirection.Out);
            var client = new AnonymousPipeClientStream(PipeDirection.In, server.ClientSafePipeHandle);
            var (rt, reader) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), client);
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), server);
            wt.Write("anonymous"u8);
            wt.Close();
            Assert.Null(await writer.Lost);
            Assert.Null(await reader.Lost);
            Assert.Equal("anonymous", Encoding.ASCII.GetString(reader.Received));
        });
    }

    [Fact]
    public void CharacterDevice_DevNull()
    {
        Run(Kind, async loop =>
        {
            var readStream = new FileStream("/dev/null", FileMode.Open, FileAccess.Read);
            var writeStream = new FileStream("/dev/null", FileMode.Open, FileAccess.Write);
            if (Kind == LoopKinds.Epoll)
            {
                // epoll cannot watch /dev/null (EPERM); the call says so and leaves the stream usable.
                var ex = await Assert.ThrowsAsync<ArgumentException>(async () =>
                    await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), readStream));
                Assert.Contains("cannot be watched by the epoll selector", ex.Message);
                Assert.Equal(-1, readStream.ReadByte());
                await Assert.ThrowsAsync<ArgumentException>(async () =>
                    await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), writeStream));
                writeStream.WriteByte(1);
                readStream.Dispose();
                writeStream.Dispose();
                return;
            }

            var (rt, reader) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), readStream);
            Assert.Null(await reader.Lost);
            Assert.Equal(["made", "eof", "lost"], reader.Calls);
            var (wt, writer) = await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), writeStream);
            wt.Write(Pattern(100_000));
            Assert.Equal(0, wt.GetWriteBufferSize());
            wt.Close();
            Assert.Null(await writer.Lost);
        });
    }

    // ---- Bad input -------------------------------------------------------------------------------

    [Fact]
    public void RegularFile_IsRefused_AndLeftToTheCaller()
    {
        string path = Path.GetTempFileName();
        try
        {
            Run(Kind, async loop =>
            {
                using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
                var ex = await Assert.ThrowsAsync<ArgumentException>(async () =>
                    await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), file));
                Assert.Contains("regular file", ex.Message);
                Assert.Contains("cannot be polled", ex.Message);
                ex = await Assert.ThrowsAsync<ArgumentException>(async () =>
                    await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), file.SafeFileHandle));
                Assert.Contains("regular file", ex.Message);
                file.Write("still mine"u8);           // the caller's stream still works
                await LoopStillRuns(loop);
            });
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ClosedHandle_NegativeFd_UnopenedFd_Refused()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var closed = new Microsoft.Win32.SafeHandles.SafeFileHandle(Interop.Dup(pipe.ReadFd), ownsHandle: true);
            closed.Dispose();
            await Assert.ThrowsAsync<ObjectDisposedException>(async () =>
                await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), closed));
            var neg = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () =>
                await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), -1));
            Assert.Contains("non-negative", neg.Message);
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () =>
                await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), -5));
            var notOpen = await Assert.ThrowsAsync<ArgumentException>(async () =>
                await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), 1_000_000));
            Assert.Contains("not an open file descriptor", notOpen.Message);
            var disposedStream = new MemoryStream();
            var wrongStream = await Assert.ThrowsAsync<ArgumentException>(async () =>
                await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), disposedStream));
            Assert.Contains("MemoryStream", wrongStream.Message);
            await Assert.ThrowsAsync<ArgumentNullException>(async () =>
                await loop.ConnectReadPipeAsync<PipeRecorder>(null!, pipe.ReadFd));
            await LoopStillRuns(loop);
        });
    }

    [Fact]
    public void WrongEnd_WrongProtocol_FactoryFailure_LeaveTheFdToTheCaller()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var ro = await Assert.ThrowsAsync<ArgumentException>(async () =>
                await loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), pipe.ReadFd));
            Assert.Contains("read-only", ro.Message);
            var wo = await Assert.ThrowsAsync<ArgumentException>(async () =>
                await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), pipe.WriteFd));
            Assert.Contains("write-only", wo.Message);
            var proto = await Assert.ThrowsAsync<ArgumentException>(async () =>
                await loop.ConnectReadPipeAsync(() => new NotAStreamProtocol(), pipe.ReadFd));
            Assert.Contains(nameof(IProtocol), proto.Message);
            await Assert.ThrowsAsync<FormatException>(async () =>
                await loop.ConnectReadPipeAsync<PipeRecorder>(() => throw new FormatException("no"), pipe.ReadFd));
            await Assert.ThrowsAsync<InvalidOperationException>(async () =>
                await loop.ConnectReadPipeAsync<PipeRecorder>(() => null!, pipe.ReadFd));

            // Each failure gave the fds back as they were: open, and still blocking.
            Assert.True(PipeTestNative.IsOpen(pipe.ReadFd));
            Assert.Equal(0, Interop.Fcntl(pipe.ReadFd, Interop.F_GETFL) & Interop.O_NONBLOCK);
            PipeTestNative.WriteAll(pipe.WriteFd, "ok"u8);
            Assert.Equal(2, ReadFd(pipe.ReadFd, new byte[2]));
            await LoopStillRuns(loop);
        });
    }

    [Fact]
    public void AnFdAlreadyWatched_IsRefused()
    {
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var (t, p) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), new Microsoft.Win32.SafeHandles.SafeFileHandle(pipe.ReadFd, ownsHandle: false));
            var ex = await Assert.ThrowsAsync<ArgumentException>(async () =>
                await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), new Microsoft.Win32.SafeHandles.SafeFileHandle(pipe.ReadFd, ownsHandle: false)));
            Assert.Contains("already watched", ex.Message);
            PipeTestNative.WriteAll(pipe.WriteFd, "still the first's"u8);
            Assert.True(await p.WaitBytes(loop, 17));
            t.Close();
            await p.Lost;
        });
    }

    [Fact]
    public void NetworkStreamNotOwningItsSocket_TheTransportStillClosesTheFd()
    {
        Run(Kind, async loop =>
        {
            var (a, b) = PipeTestNative.StreamSocketPair();
            using var peer = new Socket(new SafeSocketHandle(b, ownsHandle: true));
            var socket = new Socket(new SafeSocketHandle(a, ownsHandle: true));
            var (t, p) = await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), new NetworkStream(socket, ownsSocket: false));
            t.Close();
            await p.Lost;
            Assert.True(socket.SafeHandle.IsClosed);
            Assert.Equal(0, peer.Receive(new byte[1])); // the peer sees EOF: the fd was closed
        });
    }

    [Fact]
    public void ConnectionMadeThrows_ReportedAndThePipeClosed()
    {
        var errors = new List<ExceptionContext>();
        Run(Kind, async loop =>
        {
            using var pipe = new NativePipe(Interop.O_CLOEXEC);
            var ex = await Assert.ThrowsAsync<FormatException>(async () =>
                await loop.ConnectWritePipeAsync(() => new ThrowingOnMade(loop), pipe.TakeWrite()));
            Assert.Equal("made", ex.Message);
            await LoopStillRuns(loop);
        }, errors: errors);
        var context = Assert.Single(errors);
        Assert.IsType<FormatException>(context.Exception);
        Assert.Contains("ConnectionMade", context.Message);
    }

    [Fact]
    public void NotSupportedOnTheVirtualClockLoop()
    {
        using var loop = new Tulip.Testing.TestEventLoop();
        using var pipe = new NativePipe(Interop.O_CLOEXEC);
        loop.RunUntilComplete(async () =>
        {
            var ex = await Assert.ThrowsAsync<NotSupportedException>(async () =>
                await loop.ConnectReadPipeAsync(() => new PipeRecorder(loop), pipe.ReadFd));
            Assert.Contains("ConnectReadPipeAsync", ex.Message);
            ex = Assert.Throws<NotSupportedException>(() => loop.ConnectWritePipeAsync(() => new PipeRecorder(loop), new Microsoft.Win32.SafeHandles.SafeFileHandle(pipe.WriteFd, ownsHandle: false)));
            Assert.Contains("ConnectWritePipeAsync", ex.Message);
        });
        Assert.True(PipeTestNative.IsOpen(pipe.ReadFd));
    }

    // ---- Helpers ---------------------------------------------------------------------------------

    private static async LoopTask LoopStillRuns(BaseEventLoop loop)
    {
        var f = loop.CreateFuture<int>();
        loop.CallSoon(() => f.SetResult(42));
        Assert.Equal(42, await f);
    }

    private static unsafe int ReadFd(int fd, byte[] buffer)
    {
        fixed (byte* p = buffer)
        {
            return (int)Interop.Read(fd, p, (nuint)buffer.Length);
        }
    }

    private static unsafe int WriteFd(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            return (int)Interop.Write(fd, p, (nuint)data.Length);
        }
    }

    private sealed class NotAStreamProtocol : IBaseProtocol
    {
        public void ConnectionMade(IBaseTransport transport) { }
        public void ConnectionLost(Exception? exception) { }
        public void PauseWriting() { }
        public void ResumeWriting() { }
    }

    private sealed class ThrowingOnMade(IEventLoop loop) : PipeRecorder(loop)
    {
        public override void ConnectionMade(IBaseTransport transport) => throw new FormatException("made");
    }

    private sealed class ResumeInsideProtocol(IEventLoop loop) : IProtocol
    {
        private IReadTransport? _transport;

        public Future<Exception?> Lost { get; } = loop.CreateFuture<Exception?>();
        public MemoryStream Received { get; } = new();

        public void ConnectionMade(IBaseTransport transport) => _transport = (IReadTransport)transport;

        public void DataReceived(ReadOnlySpan<byte> data)
        {
            _transport!.PauseReading();
            _transport.ResumeReading();
            Received.Write(data);
        }

        public bool EofReceived() => false;
        public void ConnectionLost(Exception? exception) => Lost.TrySetResult(exception);
        public void PauseWriting() { }
        public void ResumeWriting() { }
    }

    private sealed class SmallBufferProtocol(IEventLoop loop, int size) : IBufferedProtocol
    {
        private readonly byte[] _buffer = new byte[size];
        private IReadTransport? _transport;

        public Future<Exception?> Lost { get; } = loop.CreateFuture<Exception?>();
        public MemoryStream Received { get; } = new();
        public int Updates { get; private set; }
        public bool SawEof { get; private set; }
        public bool PauseAfterFirstUpdate { get; init; }
        public int UpdatesWhilePaused { get; private set; }

        public void ConnectionMade(IBaseTransport transport) => _transport = (IReadTransport)transport;
        public Memory<byte> GetBuffer(int sizeHint) => _buffer;
        public void BufferUpdated(int bytesWritten)
        {
            if (_transport is { IsReading: false } && !SawEof)
            {
                UpdatesWhilePaused++;
            }

            Updates++;
            Received.Write(_buffer, 0, bytesWritten);
            if (PauseAfterFirstUpdate && Updates == 1)
            {
                _transport!.PauseReading();
            }
        }

        public bool EofReceived()
        {
            SawEof = true;
            return false;
        }

        public void ConnectionLost(Exception? exception) => Lost.TrySetResult(exception);
        public void PauseWriting() { }
        public void ResumeWriting() { }
    }
}

public sealed class EpollPipeTransportTests() : PipeTransportContractTests(LoopKinds.Epoll);

public sealed class PollPipeTransportTests() : PipeTransportContractTests(LoopKinds.Poll);

public sealed class ProactorPipeTransportTests() : PipeTransportContractTests(LoopKinds.Proactor);
