//! Where a benchmark's time goes: a profile's events summed per name, printed as a table per
//! iteration: device kernels and copies as they ran (summed over streams, so overlapping
//! kernels add up to more than the time they took), CUDA runtime calls, and host operators
//! by self time (the time of operators they called taken out; the runtime calls they made
//! stay in).

use std::collections::HashMap;
use std::fmt::Write;

use crate::native::profile::{Event, Side};

/// The time of one operator or kernel name over a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Where it ran.
    pub side: Side,
    /// The operator's or kernel's name.
    pub name: String,
    /// How many times it ran.
    pub calls: u64,
    /// Self time, nanoseconds.
    pub ns: u64,
}

/// Self time of every event: a host operator's duration less that of the operators directly
/// inside it on the same thread; device and runtime events keep their durations.
fn self_ns(events: &[Event]) -> Vec<u64> {
    let mut out: Vec<u64> = events
        .iter()
        .map(|e| e.end_ns.saturating_sub(e.start_ns))
        .collect();
    let mut order: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].side == Side::Host)
        .collect();
    // Per thread, outer events before the ones they enclose.
    order.sort_by_key(|&i| {
        let e = &events[i];
        (e.thread, e.start_ns, std::cmp::Reverse(e.end_ns))
    });
    let mut open: Vec<usize> = Vec::new();
    for i in order {
        let e = &events[i];
        while let Some(&top) = open.last() {
            let t = &events[top];
            if t.thread != e.thread || t.end_ns <= e.start_ns {
                open.pop();
            } else {
                break;
            }
        }
        if let Some(&parent) = open.last() {
            let inside = e.end_ns.min(events[parent].end_ns).saturating_sub(e.start_ns);
            out[parent] = out[parent].saturating_sub(inside);
        }
        open.push(i);
    }
    out
}

/// Per-name totals, largest first.
pub fn rows(events: &[Event]) -> Vec<Row> {
    let own = self_ns(events);
    let mut by_name: HashMap<(Side, &str), (u64, u64)> = HashMap::new();
    for (e, ns) in events.iter().zip(own) {
        let slot = by_name.entry((e.side, e.name.as_str())).or_default();
        slot.0 += 1;
        slot.1 += ns;
    }
    let mut rows: Vec<Row> = by_name
        .into_iter()
        .map(|((side, name), (calls, ns))| Row {
            side,
            name: name.to_string(),
            calls,
            ns,
        })
        .collect();
    rows.sort_by(|a, b| b.ns.cmp(&a.ns).then_with(|| a.name.cmp(&b.name)));
    rows
}

/// A profile of `iters` iterations: per-name rows, the wall time they took, and the span
/// from the first device event's start to the last one's end.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Per-name totals, largest first.
    pub rows: Vec<Row>,
    /// Iterations profiled.
    pub iters: u64,
    /// Wall time of the profiled iterations, nanoseconds.
    pub wall_ns: u64,
    /// First device start to last device end, nanoseconds (0 without device events).
    pub device_span_ns: u64,
}

impl Profile {
    /// Sums `events` of `iters` iterations that took `wall_ns`.
    pub fn new(events: &[Event], iters: u64, wall_ns: u64) -> Self {
        let dev = events.iter().filter(|e| e.side == Side::Device);
        let first = dev.clone().map(|e| e.start_ns).min();
        let last = dev.map(|e| e.end_ns).max();
        Self {
            rows: rows(events),
            iters,
            wall_ns,
            device_span_ns: match (first, last) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => 0,
            },
        }
    }

    /// The Markdown table: [`table`] after the wall time and, with device events, how much
    /// of their span the device's work fills (above 1: kernels overlapped, as on streams).
    pub fn table(&self, top: usize) -> String {
        let per = self.iters.max(1) as f64 * 1e6;
        let device: u64 = self
            .rows
            .iter()
            .filter(|r| r.side == Side::Device)
            .map(|r| r.ns)
            .sum();
        let mut out = format!(
            "\nwall: {:.3} ms per iteration (profiled)\n",
            self.wall_ns as f64 / per
        );
        if self.device_span_ns > 0 {
            let _ = writeln!(
                out,
                "device span: {:.3} ms per iteration, filled {:.2}x by its kernels and copies",
                self.device_span_ns as f64 / per,
                device as f64 / self.device_span_ns as f64
            );
        }
        out + &table(&self.rows, self.iters, top)
    }
}

/// A Markdown table of the `top` largest rows of each side, per iteration of `iters`.
pub fn table(rows: &[Row], iters: u64, top: usize) -> String {
    let per = iters.max(1) as f64;
    let mut out = String::new();
    let sides = [
        (
            Side::Device,
            "device (kernels, copies, fills; summed over streams)",
        ),
        (Side::Runtime, "CUDA runtime and driver calls"),
        (Side::Host, "host operators (self time)"),
    ];
    for (which, side) in sides {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.side == which).collect();
        if mine.is_empty() {
            continue;
        }
        let total: u64 = mine.iter().map(|r| r.ns).sum();
        let calls: u64 = mine.iter().map(|r| r.calls).sum();
        let _ = writeln!(
            out,
            "\n{side}: {:.3} ms per iteration in {:.0} calls ({} names; top {})\n",
            total as f64 / per / 1e6,
            calls as f64 / per,
            mine.len(),
            top.min(mine.len()),
        );
        out.push_str("| ms/iter | share | calls/iter | name |\n|---:|---:|---:|---|\n");
        for r in mine.iter().take(top) {
            let _ = writeln!(
                out,
                "| {:.4} | {:.1}% | {:.1} | {} |",
                r.ns as f64 / per / 1e6,
                100.0 * r.ns as f64 / total.max(1) as f64,
                r.calls as f64 / per,
                short(&r.name, 110).replace('|', "\\|"),
            );
        }
    }
    out
}

/// `s` cut to at most `n` characters (kernel names run to thousands).
fn short(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(device: bool, thread: u64, start_ns: u64, end_ns: u64, name: &str) -> Event {
        Event {
            side: if device { Side::Device } else { Side::Host },
            thread,
            start_ns,
            end_ns,
            name: name.into(),
        }
    }

    /// conv (0..100) calls conv_impl (10..60) which calls fill (20..30); a sibling add
    /// (70..90) sits in conv too; another thread's op overlaps in time but is not nested;
    /// device kernels keep their durations.
    #[test]
    fn nested_host_operators_count_their_own_time_only() {
        let events = [
            ev(false, 1, 0, 100, "conv"),
            ev(false, 1, 10, 60, "conv_impl"),
            ev(false, 1, 20, 30, "fill"),
            ev(false, 1, 70, 90, "add"),
            ev(false, 2, 5, 50, "other"),
            ev(true, 9, 15, 45, "kernel"),
            ev(true, 9, 50, 55, "kernel"),
            ev(false, 1, 200, 210, "fill"),
        ];
        let r = rows(&events);
        let get = |name: &str| r.iter().find(|x| x.name == name).map(|x| (x.calls, x.ns));
        assert_eq!(get("conv"), Some((1, 100 - 50 - 20)));
        assert_eq!(get("conv_impl"), Some((1, 50 - 10)));
        assert_eq!(get("fill"), Some((2, 20)));
        assert_eq!(get("add"), Some((1, 20)));
        assert_eq!(get("other"), Some((1, 45)));
        assert_eq!(get("kernel"), Some((2, 35)));
        // Largest first: other 45, conv_impl 40, kernel 35, conv 30, ...
        assert_eq!(r[0].name, "other");
        let t = table(&r, 5, 2);
        assert!(
            t.contains("summed over streams): 0.000 ms per iteration in 0 calls (1 names; top 1)"),
            "{t}"
        );
        assert!(
            t.contains("(self time): 0.000 ms per iteration in 1 calls (5 names; top 2)"),
            "{t}"
        );
        assert!(!t.contains("runtime"), "no runtime events, no runtime table: {t}");
        assert!(
            t.contains("| 0.0000 | 29.0% | 0.2 | other |"),
            "45 of 155 host ns: {t}"
        );
        // A runtime call keeps its duration and takes nothing from the operator around it.
        let mut with_rt = events.to_vec();
        with_rt.push(Event {
            side: Side::Runtime,
            thread: 1,
            start_ns: 22,
            end_ns: 28,
            name: "cudaLaunchKernel".into(),
        });
        let r2 = rows(&with_rt);
        let get2 = |name: &str| r2.iter().find(|x| x.name == name).map(|x| (x.calls, x.ns));
        assert_eq!(get2("fill"), Some((2, 20)));
        assert_eq!(get2("cudaLaunchKernel"), Some((1, 6)));
        assert!(table(&r2, 1, 3).contains("CUDA runtime and driver calls: 0.000 ms"));
    }

    /// Two device kernels overlapping by half fill their span 1.33x; the wall time is shown.
    #[test]
    fn the_device_span_shows_overlap() {
        let events = [
            ev(true, 1, 0, 2_000_000, "a"),
            ev(true, 2, 1_000_000, 3_000_000, "b"),
        ];
        let p = Profile::new(&events, 1, 5_000_000);
        assert_eq!(p.device_span_ns, 3_000_000);
        let t = p.table(5);
        assert!(t.contains("wall: 5.000 ms per iteration"), "{t}");
        assert!(
            t.contains("device span: 3.000 ms per iteration, filled 1.33x"),
            "{t}"
        );
        assert_eq!(Profile::new(&events[..0], 1, 1).device_span_ns, 0);
    }

    #[test]
    fn long_names_are_cut_and_pipes_escaped() {
        let r = [Row {
            side: Side::Device,
            name: format!("a|{}", "x".repeat(300)),
            calls: 2,
            ns: 4_000_000,
        }];
        let t = table(&r, 2, 10);
        assert!(t.contains("| 2.0000 | 100.0% | 1.0 | a\\|xxx"), "{t}");
        assert!(t.contains("x…"), "{t}");
    }
}
