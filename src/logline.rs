//! Log lines that a client can neither forge nor flood.
//!
//! * [`Escaped`] shows bytes that came from a client (an address, a reply
//!   path, a flush name, a login): printable ASCII as it is, every other byte
//!   and the backslash as `\xNN`, and at most [`SHOWN_BYTES`] of them. No
//!   client can end a line early and write one that looks like the daemon's
//!   (a `Ready` line, a stats line qmailmrtg reads), move the cursor of a
//!   terminal that shows the log, or make one line megabytes long.
//! * [`Throttle`] lets at most [`BURST`] lines of one kind through in each
//!   [`INTERVAL`]; the rest are counted and reported in one line, once per
//!   interval: `InLookup: N more "KIND" lines suppressed in the last S s`.
//!   The statistics (USR1) still count every event.

use std::fmt::{self, Write as _};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most bytes of one client-supplied value a log line shows. An address
/// (at most 108 bytes) is shown whole.
pub const SHOWN_BYTES: usize = 128;

/// Client bytes as a log line may show them (see the module documentation).
///
/// `\x` occurs in the output only as the start of an escape: a backslash of
/// the input is escaped too, so the bytes can always be read back.
#[derive(Clone, Copy)]
pub struct Escaped<'a> {
    bytes: &'a [u8],
    max: usize,
}

impl<'a> Escaped<'a> {
    /// At most [`SHOWN_BYTES`] of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Escaped<'a> {
        Escaped::with_max(bytes, SHOWN_BYTES)
    }

    /// At most `max` of `bytes`.
    pub fn with_max(bytes: &'a [u8], max: usize) -> Escaped<'a> {
        Escaped { bytes, max }
    }

    /// A path, as bytes.
    pub fn path(path: &'a std::path::Path) -> Escaped<'a> {
        use std::os::unix::ffi::OsStrExt;
        Escaped::new(path.as_os_str().as_bytes())
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.bytes[..self.bytes.len().min(self.max)];
        for &b in shown {
            if (0x20..0x7f).contains(&b) && b != b'\\' {
                f.write_char(char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if self.bytes.len() > shown.len() {
            write!(f, "...[{} more bytes]", self.bytes.len() - shown.len())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Lines of one kind let through per interval.
pub const BURST: u32 = 10;
/// The interval of [`BURST`].
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Lines of one kind, in the interval that began at `start`.
struct Window {
    kind: &'static str,
    start: Duration,
    logged: u32,
    suppressed: u64,
}

/// Lines suppressed in an interval that has ended: what the counter line
/// reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    pub kind: &'static str,
    pub count: u64,
    /// From the start of the interval to the report.
    pub over: Duration,
}

impl fmt::Display for Suppressed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "InLookup: {} more \"{}\" lines suppressed in the last {} s",
            self.count,
            self.kind,
            self.over.as_secs().max(1)
        )
    }
}

/// A rate limit on log lines, per kind (see the module documentation).
/// A kind is a short fixed text that names the line ("reply path refused").
pub struct Throttle {
    burst: u32,
    interval: Duration,
    origin: Instant,
    windows: Mutex<Vec<Window>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(BURST, INTERVAL)
    }
}

impl Throttle {
    pub fn new(burst: u32, interval: Duration) -> Throttle {
        Throttle {
            burst,
            interval,
            origin: Instant::now(),
            windows: Mutex::new(Vec::new()),
        }
    }

    /// May a line of `kind` be logged now? Before saying yes to the first
    /// line of a new interval, logs the count of those suppressed in the
    /// previous one.
    pub fn admit(&self, kind: &'static str) -> bool {
        let (admitted, report) = self.admit_at(kind, self.origin.elapsed());
        if let Some(s) = report {
            log::warn!("{s}");
        }
        admitted
    }

    /// Log the counts of the intervals that have ended with lines
    /// suppressed. Called often (the daemon's reader does, at least every
    /// 200 ms), so that a flood that stops is still reported.
    pub fn tick(&self) {
        for s in self.due_at(self.origin.elapsed(), false) {
            log::warn!("{s}");
        }
    }

    /// Log every count still unreported, ended interval or not (at exit).
    pub fn flush(&self) {
        for s in self.due_at(self.origin.elapsed(), true) {
            log::warn!("{s}");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Window>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `admit` at time `now` (since the throttle's origin): whether the line
    /// goes through, and the report of an ended interval to log before it.
    pub fn admit_at(&self, kind: &'static str, now: Duration) -> (bool, Option<Suppressed>) {
        let mut windows = self.lock();
        let w = match windows.iter().position(|w| w.kind == kind) {
            Some(i) => &mut windows[i],
            None => {
                windows.push(Window {
                    kind,
                    start: now,
                    logged: 0,
                    suppressed: 0,
                });
                windows.last_mut().expect("just pushed")
            }
        };
        let mut report = None;
        if now.saturating_sub(w.start) >= self.interval {
            if w.suppressed > 0 {
                report = Some(Suppressed {
                    kind,
                    count: w.suppressed,
                    over: now.saturating_sub(w.start),
                });
            }
            *w = Window {
                kind,
                start: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if w.logged < self.burst {
            w.logged += 1;
            (true, report)
        } else {
            w.suppressed += 1;
            (false, report)
        }
    }

    /// The reports due at `now`: of every interval that has ended with
    /// lines suppressed, or with `all` of every interval with lines
    /// suppressed. Each starts a new interval.
    pub fn due_at(&self, now: Duration, all: bool) -> Vec<Suppressed> {
        let mut due = Vec::new();
        for w in self.lock().iter_mut() {
            let over = now.saturating_sub(w.start);
            if w.suppressed > 0 && (all || over >= self.interval) {
                due.push(Suppressed {
                    kind: w.kind,
                    count: w.suppressed,
                    over,
                });
                w.start = now;
                w.logged = 0;
                w.suppressed = 0;
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(bytes: &[u8]) -> String {
        Escaped::new(bytes).to_string()
    }

    #[test]
    fn printable_ascii_is_shown_as_it_is() {
        assert_eq!(shown(b"joe@example.com"), "joe@example.com");
        assert_eq!(
            shown(b"/run/indimail/inquery/1234 x ~!\"'`{}"),
            "/run/indimail/inquery/1234 x ~!\"'`{}"
        );
        assert_eq!(shown(b""), "");
    }

    #[test]
    fn every_other_byte_and_the_backslash_are_escaped() {
        assert_eq!(
            shown(b"a\nInLookup[1] PPID 1 PID 2 Ready with INFIFO=x"),
            "a\\x0aInLookup[1] PPID 1 PID 2 Ready with INFIFO=x"
        );
        assert_eq!(shown(b"\r\n\t\0"), "\\x0d\\x0a\\x09\\x00");
        assert_eq!(
            shown(b"\x1b[2J\x1b]0;title\x07"),
            "\\x1b[2J\\x1b]0;title\\x07"
        );
        assert_eq!(shown(b"\x7f\x80\xff"), "\\x7f\\x80\\xff");
        assert_eq!(shown("jöe".as_bytes()), "j\\xc3\\xb6e");
        // A backslash cannot pass for an escape.
        assert_eq!(shown(b"a\\x0ab"), "a\\x5cx0ab");
        // Every byte value: the 94 printable ones but the backslash as they
        // are, the others in 4 characters each.
        let all: Vec<u8> = (0..=255).collect();
        let text = Escaped::with_max(&all, 256).to_string();
        assert_eq!(text.len(), 94 + 4 * (256 - 94));
        assert!(text.bytes().all(|b| (0x20..0x7f).contains(&b)));
    }

    #[test]
    fn long_values_are_cut_with_a_marker() {
        let path = [b'/'; 4000];
        let text = shown(&path);
        assert_eq!(text, format!("{}...[3872 more bytes]", "/".repeat(128)));
        assert_eq!(shown(&[b'a'; 128]), "a".repeat(128));
        assert_eq!(
            Escaped::with_max(b"ab\ncd", 3).to_string(),
            "ab\\x0a...[2 more bytes]"
        );
        // The worst case stays short: 128 escaped bytes and the marker.
        let text = shown(&[b'\n'; 100_000]);
        assert_eq!(
            text,
            format!("{}...[99872 more bytes]", "\\x0a".repeat(128))
        );
        assert_eq!(format!("{:?}", Escaped::new(b"a\"\n")), "\"a\"\\x0a\"");
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_burst_per_kind_and_interval_then_one_count() {
        let t = Throttle::new(3, 10 * S);
        let admitted = |at: Duration| (0..5).filter(|_| t.admit_at("refused", at).0).count();
        assert_eq!(admitted(S), 3);
        // Another kind has a burst of its own.
        assert!(t.admit_at("queue full", S).0);
        assert_eq!(t.due_at(5 * S, false), vec![], "the interval has not ended");
        // The interval has ended: the count of the suppressed ones comes
        // before the first line of the next.
        let (ok, report) = t.admit_at("refused", 12 * S);
        assert!(ok);
        let report = report.unwrap();
        assert_eq!(
            report,
            Suppressed {
                kind: "refused",
                count: 2,
                over: 11 * S
            }
        );
        assert_eq!(
            report.to_string(),
            "InLookup: 2 more \"refused\" lines suppressed in the last 11 s"
        );
        // Nothing suppressed: no count.
        assert_eq!(t.admit_at("queue full", 30 * S), (true, None));
    }

    #[test]
    fn a_flood_that_stops_is_reported_by_the_tick() {
        let t = Throttle::new(2, 10 * S);
        for _ in 0..1000 {
            t.admit_at("bad request", S);
        }
        assert_eq!(t.due_at(10 * S, false), vec![]);
        let due = t.due_at(11 * S, false);
        assert_eq!(
            due,
            vec![Suppressed {
                kind: "bad request",
                count: 998,
                over: 10 * S
            }]
        );
        // Reported once; the next interval starts with a full burst.
        assert_eq!(t.due_at(30 * S, false), vec![]);
        assert_eq!(t.admit_at("bad request", 31 * S), (true, None));
        assert_eq!(t.admit_at("bad request", 31 * S), (true, None));
        assert_eq!(t.admit_at("bad request", 31 * S), (false, None));
        // At exit, whatever is left.
        assert_eq!(
            t.due_at(32 * S, true),
            vec![Suppressed {
                kind: "bad request",
                count: 1,
                over: S
            }]
        );
    }

    #[test]
    fn lines_per_interval_are_bounded_whatever_the_rate() {
        let t = Throttle::new(BURST, INTERVAL);
        let mut lines = 0;
        // A million events over 100 s: per 10 s at most BURST lines and one
        // count.
        for i in 0..1_000_000u64 {
            let now = Duration::from_micros(i * 100);
            let (ok, report) = t.admit_at("refused", now);
            lines += usize::from(ok) + usize::from(report.is_some());
        }
        lines += t.due_at(Duration::from_secs(100), true).len();
        assert!(lines <= 10 * (BURST as usize + 1), "{lines} lines");
        assert!(lines >= 10 * BURST as usize, "{lines} lines");
    }
}
