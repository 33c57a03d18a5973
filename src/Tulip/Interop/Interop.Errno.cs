namespace Tulip;

internal static partial class Interop
{
    /// <summary>Linux errno values (asm-generic/errno-base.h and errno.h; the same on x86_64 and aarch64).</summary>
    internal static class Errno
    {
        public const int EPERM = 1;
        public const int ENOENT = 2;
        public const int ESRCH = 3;
        public const int EINTR = 4;
        public const int EIO = 5;
        public const int EBADF = 9;
        public const int ECHILD = 10;
        public const int EAGAIN = 11;
        public const int EWOULDBLOCK = EAGAIN;
        public const int ENOMEM = 12;
        public const int EACCES = 13;
        public const int EEXIST = 17;
        public const int EINVAL = 22;
        public const int ENFILE = 23;
        public const int EMFILE = 24;
        public const int ESPIPE = 29;
        public const int EPIPE = 32;
        public const int ENOSYS = 38;
        public const int EOVERFLOW = 75;
        public const int EMSGSIZE = 90;
        public const int EOPNOTSUPP = 95;
        public const int EADDRINUSE = 98;
        public const int EADDRNOTAVAIL = 99;
        public const int ENETDOWN = 100;
        public const int ENETUNREACH = 101;
        public const int ECONNABORTED = 103;
        public const int ECONNRESET = 104;
        public const int ENOBUFS = 105;
        public const int EISCONN = 106;
        public const int ENOTCONN = 107;
        public const int ETIMEDOUT = 110;
        public const int ECONNREFUSED = 111;
        public const int EHOSTUNREACH = 113;
        public const int EALREADY = 114;
        public const int EINPROGRESS = 115;

        /// <summary>The symbolic name of <paramref name="errno"/> ("EAGAIN"), or null if it is not one of the above.</summary>
        public static string? GetName(int errno) => errno switch
        {
            EPERM => nameof(EPERM),
            ENOENT => nameof(ENOENT),
            ESRCH => nameof(ESRCH),
            EINTR => nameof(EINTR),
            EIO => nameof(EIO),
            EBADF => nameof(EBADF),
            ECHILD => nameof(ECHILD),
            EAGAIN => nameof(EAGAIN),
            ENOMEM => nameof(ENOMEM),
            EACCES => nameof(EACCES),
            EEXIST => nameof(EEXIST),
            EINVAL => nameof(EINVAL),
            ENFILE => nameof(ENFILE),
            EMFILE => nameof(EMFILE),
            ESPIPE => nameof(ESPIPE),
            EPIPE => nameof(EPIPE),
            ENOSYS => nameof(ENOSYS),
            EOVERFLOW => nameof(EOVERFLOW),
            EMSGSIZE => nameof(EMSGSIZE),
            EOPNOTSUPP => nameof(EOPNOTSUPP),
            EADDRINUSE => nameof(EADDRINUSE),
            EADDRNOTAVAIL => nameof(EADDRNOTAVAIL),
            ENETDOWN => nameof(ENETDOWN),
            ENETUNREACH => nameof(ENETUNREACH),
            ECONNABORTED => nameof(ECONNABORTED),
            ECONNRESET => nameof(ECONNRESET),
            ENOBUFS => nameof(ENOBUFS),
            EISCONN => nameof(EISCONN),
            ENOTCONN => nameof(ENOTCONN),
            ETIMEDOUT => nameof(ETIMEDOUT),
            ECONNREFUSED => nameof(ECONNREFUSED),
            EHOSTUNREACH => nameof(EHOSTUNREACH),
            EALREADY => nameof(EALREADY),
            EINPROGRESS => nameof(EINPROGRESS),
            _ => null,
        };
    }
}
