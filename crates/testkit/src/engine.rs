//! The container engines that `scripts/services` starts, their CLIs, and
//! containers that are removed when the test is done with them.

/// The tiny image that `scripts/services` imports into both engines for test
/// and demo containers.
pub const IMAGE: &str = "localhost/elkservice-busybox:latest";

/// A container engine that `scripts/services` starts: Podman's Docker-compatible
/// API (`DOCKER_HOST`) or a real Docker Engine (`ELK_DOCKERD_HOST`). Tests
/// that watch containers run one body on each (see [`on_both_engines`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Podman,
    Docker,
}

impl Engine {
    /// Its API endpoint, for the watcher's `DOCKER_HOST`.
    pub fn host(self) -> String {
        let (var, default) = match self {
            Engine::Podman => ("DOCKER_HOST", "unix:///run/elk-podman.sock"),
            Engine::Docker => ("ELK_DOCKERD_HOST", "unix:///run/elk-docker.sock"),
        };
        std::env::var(var).unwrap_or_else(|_| default.into())
    }

    /// Whether the engine always says that a stop was asked for (Docker's
    /// `stop` event; Podman 4.3 sends it only at times).
    pub fn reports_stops(self) -> bool {
        self == Engine::Docker
    }

    fn command(self) -> std::process::Command {
        match self {
            Engine::Podman => std::process::Command::new("podman"),
            Engine::Docker => {
                let mut c = std::process::Command::new("docker");
                c.env("DOCKER_HOST", self.host());
                c
            }
        }
    }

    /// Run the engine's CLI; panics with its output on failure.
    pub fn cli(self, args: &[&str]) -> String {
        let out =
            self.command().args(args).output().unwrap_or_else(|e| {
                panic!("{self:?}'s CLI runs (scripts/services installs it): {e}")
            });
        assert!(
            out.status.success(),
            "{self:?} {args:?}: {}\n(the tests expect the engines that `eval \"$(scripts/services)\"` \
             sets up, with CONTAINERS_CONF and ELK_DOCKERD_HOST)",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Run the CLI and say only whether it succeeded (a health check that is
    /// meant to fail, say).
    pub fn try_cli(self, args: &[&str]) -> bool {
        self.command()
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Run a detached container from [`IMAGE`] named `name`; the guard removes
    /// it. Docker's containers get no network: there is no bridge here.
    pub fn run(self, name: &str, extra: &[&str], cmd: &[&str]) -> Container {
        let mut args = vec!["run", "-d", "--name", name];
        if self == Engine::Docker {
            args.extend(["--network", "none"]);
        }
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        // The guard first: a failed run can leave a created container behind.
        let container = Container {
            engine: self,
            name: name.to_owned(),
        };
        self.cli(&args);
        container
    }

    /// Run `cmd` in a container labelled `<label_key>=<service>`, so that only
    /// a watcher configured with that label key sees it; the container is
    /// named after the two.
    pub fn run_labelled(
        self,
        label_key: &str,
        service: &str,
        extra: &[&str],
        cmd: &[&str],
    ) -> Container {
        let name = format!("{}-{service}", label_key.replace('.', "-"));
        let label = format!("{label_key}={service}");
        let mut args = vec!["--label", label.as_str()];
        args.extend_from_slice(extra);
        self.run(&name, &args, cmd)
    }
}

/// The podman CLI (for tests that need no second engine).
pub fn podman(args: &[&str]) -> String {
    Engine::Podman.cli(args)
}

/// A container removed when the guard is dropped.
pub struct Container {
    pub engine: Engine,
    pub name: String,
}

impl Container {
    /// Run the engine's CLI with these arguments and the container's name last.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.push(&self.name);
        self.engine.cli(&all)
    }

    /// Run `cmd` inside the container.
    pub fn exec(&self, cmd: &[&str]) -> String {
        let mut all = vec!["exec", self.name.as_str()];
        all.extend_from_slice(cmd);
        self.engine.cli(&all)
    }

    /// Remove it now, running or not.
    pub fn remove(&self) {
        self.engine.cli(&self.remove_args());
    }

    fn remove_args(&self) -> Vec<&str> {
        // Podman's `rm -f` would wait for the stop timeout first; Docker's kills.
        match self.engine {
            Engine::Podman => vec!["rm", "-f", "-t", "0", &self.name],
            Engine::Docker => vec!["rm", "-f", &self.name],
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.engine.command().args(self.remove_args()).output();
    }
}

/// Two tests for each named body (an `async fn(Engine)` in scope): one in the
/// module `podman`, one in `docker`.
#[macro_export]
macro_rules! on_both_engines {
    ($($body:ident),* $(,)?) => {
        mod podman {
            $(
                #[tokio::test]
                async fn $body() {
                    super::$body($crate::Engine::Podman).await
                }
            )*
        }
        mod docker {
            $(
                #[tokio::test]
                async fn $body() {
                    super::$body($crate::Engine::Docker).await
                }
            )*
        }
    };
}
