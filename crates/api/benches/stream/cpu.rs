//! The bench's view of CPUs: time used by a process or by threads, and the
//! scheduling that keeps the bench's own threads out of what it measures.

use elkservice_testkit::cpu_seconds;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// CPU time the process has used, user and system, in ms.
pub fn cpu_ms(pid: u32) -> f64 {
    cpu_ms_of(std::path::Path::new(&format!("/proc/{pid}/stat")))
}

/// CPU time, user and system, in ms, from a `stat` file of /proc.
fn cpu_ms_of(path: &std::path::Path) -> f64 {
    cpu_seconds(path).unwrap_or(0.0) * 1e3
}

/// CPU time this process's threads named `name` have used, in ms.
pub fn threads_cpu_ms(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .map(|t| cpu_ms_of(&t.path().join("stat")))
        .sum()
}

/// Put the calling thread under the scheduling `policy` at `priority`.
fn set_scheduler(policy: libc::c_int, priority: libc::c_int) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // 0: the calling thread.
    match unsafe { libc::sched_setscheduler(0, policy, &param) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Run the calling thread only when nothing else wants the CPU.
pub fn set_sched_idle() {
    set_scheduler(libc::SCHED_IDLE, 0).expect("SCHED_IDLE needs no privilege");
}

/// Run the calling thread before any other that wants its CPU, where this
/// process may (root, `CAP_SYS_NICE`, or an `RLIMIT_RTPRIO` of at least 1);
/// false where it may not. The thread that times the GETs stands for a
/// client on another machine: at the priority of the api's own threads it
/// also waits for a CPU that the api holds while it writes to its streams
/// (`perf sched`: most of the long waits behind those writes were the timing
/// thread's own), and that wait is the bench's, not the api's.
pub fn set_real_time() -> bool {
    set_scheduler(libc::SCHED_FIFO, 1).is_ok()
}

/// Run `run` while two threads at SCHED_IDLE keep the cores busy `duty` of
/// every millisecond (all of it at 1.0).
pub async fn with_idle_load<F: std::future::Future>(
    duty: f64,
    run: impl FnOnce() -> F,
) -> F::Output {
    const CYCLE: Duration = Duration::from_millis(1);
    let on = Arc::new(AtomicBool::new(true));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let on = on.clone();
            std::thread::spawn(move || {
                set_sched_idle();
                let busy = CYCLE.mul_f64(duty);
                let mut cycle = Instant::now();
                while on.load(Ordering::Relaxed) {
                    while cycle.elapsed() < busy {
                        std::hint::spin_loop();
                    }
                    if let Some(rest) = CYCLE.checked_sub(cycle.elapsed()) {
                        std::thread::sleep(rest);
                    }
                    cycle = Instant::now();
                }
            })
        })
        .collect();
    let output = run().await;
    on.store(false, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    output
}
