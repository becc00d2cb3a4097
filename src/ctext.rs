//! Texts worded as IndiMail's C programs word them, for output that C tools and
//! their users compare: libqmail's `error_str` for a system error, `ctime(3)` for a time.

use std::io;

/// libqmail's `error_str` texts, which IndiMail's programs print (to the SMTP client
/// too) where the C library would print strerror's: the first entry for an errno wins,
/// as in its chain of comparisons (EWOULDBLOCK is EAGAIN on Linux).
const ERROR_STR: &[(i32, &str)] = &[
    (libc::EINTR, "interrupted system call"),
    (libc::ENOMEM, "out of memory"),
    (libc::ENOENT, "file does not exist"),
    (libc::ETXTBSY, "text busy"),
    (libc::EIO, "input/output error"),
    (libc::EEXIST, "file already exists"),
    (libc::ETIMEDOUT, "timed out"),
    (libc::EINPROGRESS, "operation in progress"),
    (libc::EAGAIN, "temporary failure"),
    (libc::EWOULDBLOCK, "input/output would block"),
    (libc::EPIPE, "broken pipe"),
    (libc::EPERM, "permission denied"),
    (libc::EACCES, "access denied"),
    (libc::ESRCH, "no such process"),
    (libc::ENXIO, "device not configured"),
    (libc::ENOEXEC, "exec format error"),
    (libc::EBADF, "file descriptor not open"),
    (libc::ECHILD, "no child processes"),
    (libc::EDEADLK, "operation would cause deadlock"),
    (libc::EFAULT, "bad address"),
    (libc::ENOTBLK, "not a block device"),
    (libc::EBUSY, "device busy"),
    (libc::EXDEV, "cross-device link"),
    (libc::ENODEV, "device does not support operation"),
    (libc::ENOTDIR, "not a directory"),
    (libc::EISDIR, "is a directory"),
    (libc::EINVAL, "invalid argument"),
    (libc::ENFILE, "system cannot open more files"),
    (libc::EMFILE, "process cannot open more files"),
    (libc::ENOTTY, "not a tty"),
    (libc::EFBIG, "file too big"),
    (libc::ENOSPC, "out of disk space"),
    (libc::ESPIPE, "unseekable descriptor"),
    (libc::EROFS, "read-only file system"),
    (libc::EMLINK, "too many links"),
    (libc::EDOM, "input out of range"),
    (libc::ERANGE, "output out of range"),
    (libc::EALREADY, "operation already in progress"),
    (libc::ENOTSOCK, "not a socket"),
    (libc::EDESTADDRREQ, "destination address required"),
    (libc::EMSGSIZE, "message too long"),
    (libc::EPROTOTYPE, "incorrect protocol type"),
    (libc::ENOPROTOOPT, "protocol not available"),
    (libc::EPROTONOSUPPORT, "protocol not supported"),
    (libc::ESOCKTNOSUPPORT, "socket type not supported"),
    (libc::EOPNOTSUPP, "operation not supported"),
    (libc::EPFNOSUPPORT, "protocol family not supported"),
    (libc::EAFNOSUPPORT, "address family not supported"),
    (libc::EADDRINUSE, "address already used"),
    (libc::EADDRNOTAVAIL, "address not available"),
    (libc::ENETDOWN, "network down"),
    (libc::ENETUNREACH, "network unreachable"),
    (libc::ENETRESET, "network reset"),
    (libc::ECONNABORTED, "connection aborted"),
    (libc::ECONNRESET, "connection reset"),
    (libc::ENOBUFS, "out of buffer space"),
    (libc::EISCONN, "already connected"),
    (libc::ENOTCONN, "not connected"),
    (libc::ESHUTDOWN, "socket shut down"),
    (libc::ETOOMANYREFS, "too many references"),
    (libc::ECONNREFUSED, "connection refused"),
    (libc::ELOOP, "symbolic link loop"),
    (libc::ENAMETOOLONG, "file name too long"),
    (libc::EHOSTDOWN, "host down"),
    (libc::EHOSTUNREACH, "host unreachable"),
    (libc::ENOTEMPTY, "directory not empty"),
    (libc::EUSERS, "too many users"),
    (libc::EDQUOT, "disk quota exceeded"),
    (libc::ESTALE, "stale NFS file handle"),
    (libc::EREMOTE, "too many levels of remote in path"),
    (libc::ENOLCK, "no locks available"),
    (libc::ENOSYS, "system call not available"),
    (libc::ENOSTR, "not a stream device"),
    (libc::ETIME, "timer expired"),
    (libc::ENOSR, "out of stream resources"),
    (libc::ENOMSG, "no message of desired type"),
    (libc::EBADMSG, "bad message type"),
    (libc::EIDRM, "identifier removed"),
    (libc::ENONET, "machine not on network"),
    (libc::ENOLINK, "link severed"),
    (libc::EADV, "advertise error"),
    (libc::ESRMNT, "srmount error"),
    (libc::ECOMM, "communication error"),
    (libc::EPROTO, "protocol error"),
    (libc::EMULTIHOP, "multihop attempted"),
    (libc::EREMCHG, "remote address changed"),
];

/// An I/O error as IndiMail's programs word it (libqmail's `error_str`): `file does not
/// exist` for ENOENT, `unknown error` for an errno it does not name; an error that
/// carries no errno is its own text.
pub fn error_str(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => ERROR_STR
            .iter()
            .find(|(n, _)| *n == code)
            .map_or("unknown error", |(_, text)| text)
            .to_string(),
        None => e.to_string(),
    }
}

/// The system error a connection error's text names (Rust's `... (os error N)`),
/// worded as IndiMail words it; the text itself when it names none.
pub fn error_str_in_text(text: &str) -> String {
    match split_os_error(text) {
        (_, Some(code)) => error_str(&io::Error::from_raw_os_error(code)),
        (_, None) => text.to_string(),
    }
}

/// An error text without Rust's ` (os error N)` suffix, and N when it has one.
pub fn split_os_error(text: &str) -> (&str, Option<i32>) {
    let code = text
        .rfind(" (os error ")
        .filter(|_| text.ends_with(')'))
        .and_then(|i| {
            Some((
                i,
                text[i + " (os error ".len()..text.len() - 1].parse().ok()?,
            ))
        });
    match code {
        Some((i, code)) => (&text[..i], Some(code)),
        None => (text, None),
    }
}

/// `ctime(3)` of a Unix time in the local time zone, newline included:
/// `Thu Nov 28 15:22:00 2024\n`.
pub fn ctime(t: i64) -> String {
    // SAFETY: an all-zero `tm` is a valid value for localtime_r to overwrite.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let t: libc::time_t = t as libc::time_t;
    // SAFETY: both pointers are valid for the duration of the call;
    // localtime_r is the thread-safe variant and only writes `tm`.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return format!("{t}\n");
    }
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {}{:>3} {:02}:{:02}:{:02} {}\n",
        DAYS.get(tm.tm_wday as usize).unwrap_or(&"???"),
        MONTHS.get(tm.tm_mon as usize).unwrap_or(&"???"),
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        i64::from(tm.tm_year) + 1900
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_str_words_errors_as_libqmail() {
        let text = |code| error_str(&io::Error::from_raw_os_error(code));
        assert_eq!(text(libc::ENOENT), "file does not exist");
        assert_eq!(text(libc::EACCES), "access denied");
        assert_eq!(text(libc::EPERM), "permission denied");
        assert_eq!(text(libc::EAGAIN), "temporary failure");
        assert_eq!(text(libc::ECONNREFUSED), "connection refused");
        assert_eq!(text(libc::ENOEXEC), "exec format error");
        assert_eq!(text(libc::EBADF), "file descriptor not open");
        assert_eq!(text(libc::ETIMEDOUT), "timed out");
        assert_eq!(text(libc::EREMCHG), "remote address changed");
        assert_eq!(text(9999), "unknown error");
        assert_eq!(error_str(&io::Error::other("plain")), "plain");
    }

    #[test]
    fn connection_errors_in_libqmail_words() {
        assert_eq!(
            error_str_in_text("No such file or directory (os error 2)"),
            "file does not exist"
        );
        assert_eq!(
            error_str_in_text("Connection refused (os error 111)"),
            "connection refused"
        );
        assert_eq!(error_str_in_text("no route"), "no route");
        assert_eq!(error_str_in_text("odd (os error x)"), "odd (os error x)");
        assert_eq!(
            split_os_error("Connection refused (os error 111)"),
            ("Connection refused", Some(111))
        );
        assert_eq!(split_os_error("no route"), ("no route", None));
    }

    #[test]
    fn ctime_is_the_c_layout() {
        let text = ctime(0);
        // The local time zone decides the day and the hour, not the layout.
        assert_eq!(text.len(), "Thu Jan  1 00:00:00 1970\n".len(), "{text:?}");
        assert!(
            text.ends_with(" 1970\n") || text.ends_with(" 1969\n"),
            "{text:?}"
        );
        assert_eq!(&text[13..14], ":", "{text:?}");
    }
}
