using System.Runtime.InteropServices;

namespace Tulip;

/// <summary>
/// io_uring(7): the three system calls, the ring mappings, and the ABI structures Tulip uses, with the
/// values of linux/io_uring.h. There is no libc wrapper for these calls (liburing is a library of its
/// own, which Tulip does not use), so they go through syscall(2); their numbers (425 to 427) are the
/// same on every architecture, being newer than the unified syscall table.
/// </summary>
internal static partial class Interop
{
    internal const long SYS_io_uring_setup = 425;
    internal const long SYS_io_uring_enter = 426;
    internal const long SYS_io_uring_register = 427;

    /// <summary>syscall(2) with six integer arguments: the raw result, -1 with errno set on failure.</summary>
    /// <remarks>syscall is variadic in C; passing integers and pointers as fixed arguments is the same
    /// call on x86_64 and aarch64 Linux (the callee is assembly that reads the argument registers).</remarks>
    [LibraryImport(Libc, EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall6(long number, nint a1, nint a2, nint a3, nint a4, nint a5, nint a6);

    /// <summary>io_uring_setup(2): the ring's fd, or -1 with errno set. Fills <paramref name="p"/>.</summary>
    internal static unsafe int IoUringSetup(uint entries, IoUringParams* p) =>
        (int)Syscall6(SYS_io_uring_setup, (nint)entries, (nint)p, 0, 0, 0, 0);

    /// <summary>io_uring_enter(2): SQEs consumed, or -1 with errno set (ETIME when a wait timed out).</summary>
    internal static unsafe int IoUringEnter(int fd, uint toSubmit, uint minComplete, uint flags, void* arg, nuint argSize) =>
        (int)Syscall6(SYS_io_uring_enter, fd, (nint)toSubmit, (nint)minComplete, (nint)flags, (nint)arg, (nint)argSize);

    /// <summary>io_uring_register(2): the opcode's result, or -1 with errno set.</summary>
    internal static unsafe int IoUringRegister(int fd, uint opcode, void* arg, uint count) =>
        (int)Syscall6(SYS_io_uring_register, fd, (nint)opcode, (nint)arg, (nint)count, 0, 0);

    internal const int PROT_READ = 0x1;
    internal const int PROT_WRITE = 0x2;
    internal const int MAP_SHARED = 0x01;
    internal const int MAP_PRIVATE = 0x02;
    internal const int MAP_ANONYMOUS = 0x20;
    internal const int MAP_POPULATE = 0x8000;
    internal static readonly unsafe void* MAP_FAILED = (void*)-1;

    /// <summary>mmap(2): the mapping, or <see cref="MAP_FAILED"/> with errno set.</summary>
    [LibraryImport(Libc, EntryPoint = "mmap", SetLastError = true)]
    internal static unsafe partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

    /// <summary>munmap(2): 0, or -1 with errno set.</summary>
    [LibraryImport(Libc, EntryPoint = "munmap", SetLastError = true)]
    internal static unsafe partial int Munmap(void* address, nuint length);

    internal const int ETIME = 62;
    internal const int EBUSY = 16;
    internal const int EEXIST = 17;
    internal const int ECANCELED = 125;
    internal const int ENOBUFS = 105;

    /// <summary>Constants of linux/io_uring.h.</summary>
    internal static class IoUring
    {
        // io_uring_setup flags.
        internal const uint SETUP_CQSIZE = 1u << 3;
        internal const uint SETUP_CLAMP = 1u << 4;
        internal const uint SETUP_R_DISABLED = 1u << 6;
        internal const uint SETUP_SUBMIT_ALL = 1u << 7;
        internal const uint SETUP_COOP_TASKRUN = 1u << 8;
        internal const uint SETUP_TASKRUN_FLAG = 1u << 9;
        internal const uint SETUP_SINGLE_ISSUER = 1u << 12;
        internal const uint SETUP_DEFER_TASKRUN = 1u << 13;

        // Features the kernel reports.
        internal const uint FEAT_SINGLE_MMAP = 1u << 0;
        internal const uint FEAT_NODROP = 1u << 1;
        internal const uint FEAT_EXT_ARG = 1u << 8;

        // mmap offsets of the three regions.
        internal const long OFF_SQ_RING = 0;
        internal const long OFF_CQ_RING = 0x8000000;
        internal const long OFF_SQES = 0x10000000;

        // Flags the kernel sets in the SQ ring's flags word.
        internal const uint SQ_NEED_WAKEUP = 1u << 0;
        internal const uint SQ_CQ_OVERFLOW = 1u << 1;
        internal const uint SQ_TASKRUN = 1u << 2;

        // io_uring_enter flags.
        internal const uint ENTER_GETEVENTS = 1u << 0;
        internal const uint ENTER_EXT_ARG = 1u << 3;

        // io_uring_register opcodes.
        internal const uint REGISTER_PROBE = 8;
        internal const uint REGISTER_ENABLE_RINGS = 12;
        internal const uint REGISTER_PBUF_RING = 22;
        internal const uint UNREGISTER_PBUF_RING = 23;

        // Opcodes (enum io_uring_op).
        internal const byte OP_NOP = 0;
        internal const byte OP_POLL_ADD = 6;
        internal const byte OP_POLL_REMOVE = 7;
        internal const byte OP_SENDMSG = 9;
        internal const byte OP_RECVMSG = 10;
        internal const byte OP_TIMEOUT = 11;
        internal const byte OP_ACCEPT = 13;
        internal const byte OP_ASYNC_CANCEL = 14;
        internal const byte OP_CONNECT = 16;
        internal const byte OP_READ = 22;
        internal const byte OP_WRITE = 23;
        internal const byte OP_SEND = 26;
        internal const byte OP_RECV = 27;
        internal const byte OP_SHUTDOWN = 34;
        internal const byte OP_SEND_ZC = 47;
        internal const byte OP_LAST_KNOWN = 47;

        // SQE flags.
        internal const byte IOSQE_BUFFER_SELECT = 1 << 5;

        // Operation flags carried in ioprio / len / op_flags.
        internal const ushort RECVSEND_POLL_FIRST = 1 << 0;
        internal const ushort RECV_MULTISHOT = 1 << 1;
        internal const ushort ACCEPT_MULTISHOT = 1 << 0;
        internal const uint POLL_ADD_MULTI = 1u << 0;
        internal const uint ASYNC_CANCEL_ALL = 1u << 0;
        internal const uint ASYNC_CANCEL_FD = 1u << 1;
        internal const uint ASYNC_CANCEL_ANY = 1u << 2;

        // CQE flags.
        internal const uint CQE_F_BUFFER = 1u << 0;
        internal const uint CQE_F_MORE = 1u << 1;
        internal const int CQE_BUFFER_SHIFT = 16;

        // Probe: an op is supported when this flag is set in its io_uring_probe_op.
        internal const ushort IO_URING_OP_SUPPORTED = 1 << 0;
    }
}

/// <summary>struct io_sqring_offsets.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoSqRingOffsets
{
    public uint Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1;
    public ulong UserAddr;
}

/// <summary>struct io_cqring_offsets.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoCqRingOffsets
{
    public uint Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Resv1;
    public ulong UserAddr;
}

/// <summary>struct io_uring_params (120 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoUringParams
{
    public uint SqEntries, CqEntries, Flags, SqThreadCpu, SqThreadIdle, Features, WqFd;
    public uint Resv0, Resv1, Resv2;
    public IoSqRingOffsets SqOff;
    public IoCqRingOffsets CqOff;
}

/// <summary>struct io_uring_sqe (64 bytes), with the union members Tulip uses.</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
internal struct IoUringSqe
{
    [FieldOffset(0)] public byte Opcode;
    [FieldOffset(1)] public byte Flags;
    [FieldOffset(2)] public ushort IoPrio;
    [FieldOffset(4)] public int Fd;
    [FieldOffset(8)] public ulong Off;           // also addr2
    [FieldOffset(16)] public ulong Addr;
    [FieldOffset(24)] public uint Len;
    [FieldOffset(28)] public uint OpFlags;       // rw_flags, poll32_events, msg_flags, timeout_flags, cancel_flags...
    [FieldOffset(32)] public ulong UserData;
    [FieldOffset(40)] public ushort BufIndex;    // also buf_group
    [FieldOffset(42)] public ushort Personality;
    [FieldOffset(44)] public int SpliceFdIn;     // also file_index
    [FieldOffset(48)] public ulong Addr3;
    [FieldOffset(56)] public ulong Pad2;
}

/// <summary>struct io_uring_cqe (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoUringCqe
{
    public ulong UserData;
    public int Res;
    public uint Flags;
}

/// <summary>struct io_uring_getevents_arg (24 bytes), for IORING_ENTER_EXT_ARG.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoUringGeteventsArg
{
    public ulong SigMask;
    public uint SigMaskSize;
    public uint Pad;
    public ulong Ts;
}

/// <summary>struct __kernel_timespec.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct KernelTimespec
{
    public long Seconds;
    public long Nanoseconds;
}

/// <summary>struct io_uring_buf_reg (40 bytes), for IORING_REGISTER_PBUF_RING.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoUringBufReg
{
    public ulong RingAddr;
    public uint RingEntries;
    public ushort Bgid;
    public ushort Flags;
    public ulong Resv0, Resv1, Resv2;
}

/// <summary>struct io_uring_buf (16 bytes): one entry of a provided-buffer ring. The ring's tail is the
/// <c>resv</c> field of entry 0.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoUringBuf
{
    public ulong Addr;
    public uint Len;
    public ushort Bid;
    public ushort Resv;
}
