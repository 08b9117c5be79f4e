//! Programs under test: a clean environment, SIGTERM, free ports, and a
//! guard that ends a process with its test.

/// A process killed (SIGKILL) and reaped when dropped, so that a failing
/// test leaves nothing running.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A command for a program under test, with none of the caller's `ELK_*`
/// settings, so that only what the test sets reaches the program.
pub fn program(path: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new(path);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ELK_")) {
        cmd.env_remove(k);
    }
    cmd
}

/// Send SIGTERM to a child process.
pub fn sigterm(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM {}", child.id());
}

/// SIGTERM `child` and return its exit code; it must exit within `within`.
pub async fn terminate(mut child: std::process::Child, within: std::time::Duration) -> Option<i32> {
    sigterm(&child);
    tokio::time::timeout(within, tokio::task::spawn_blocking(move || child.wait()))
        .await
        .unwrap_or_else(|_| panic!("no exit within {within:?} of SIGTERM"))
        .expect("the waiting thread")
        .expect("wait on the child")
        .code()
}

/// A free TCP port on the loopback interface, for a program under test to
/// listen on. Chosen below the kernel's ephemeral range: a port the kernel
/// hands out (port 0) is free only until an outgoing connection of any test
/// is given the same one, before the program binds it.
pub fn free_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (from, to) = (low.saturating_sub(12000).max(1024), low);
    loop {
        let port = from + (uuid::Uuid::new_v4().as_u128() % u128::from(to - from)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
