//! The binary refuses bad configuration with one clear line and exit code 2.

use elkservice_testkit::program;

/// Environment, config file text, and what stderr must mention.
type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a str);

fn run(case: usize, env: &[(&str, &str)], file: Option<&str>) -> (i32, String) {
    let mut cmd = program(env!("CARGO_BIN_EXE_elkservice-watcher"));
    cmd.envs(env.iter().copied());
    let dir = std::env::temp_dir().join(format!("elkw-{}", std::process::id()));
    if let Some(text) = file {
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("case-{case}.toml"));
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config").arg(&path);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_settings_name_the_key_and_exit_2() {
    let cases: [Case; 8] = [
        (&[("ELK_AMQP__QUEUE_TYPE", "stream")], None, r#"must be "classic" or "quorum", got "stream" for key `amqp.queue_type`"#),
        (&[], Some("[watchr]\npoll_interval_secs = 5\n"), "unknown field `watchr`"),
        (&[("ELK_WATCHER__POLL_INTERVAL_SECS", "0")], None, "watcher.poll_interval_secs"),
        (&[("ELK_WATCHER__LISTEN", "nowhere")], None, "watcher.listen"),
        (&[], Some("[[services]]\nname = \"es\"\ntcp = \"127.0.0.1:9200\"\nhttp = { url = \"http://x\" }\n"), "exactly one"),
        (&[], Some("[[services]]\nname = \"es\"\ntcp = \"127.0.0.1:9200\"\ninterval_secs = 1\ntimeout_secs = 2\n"), "shorter than interval"),
        (&[], Some("[[services]]\nname = \"bad name\"\ntcp = \"127.0.0.1:9200\"\n"), "Name must be"),
        (&[], Some("[[services]]\nname = \"es\"\ntcp = \"127.0.0.1:9200\"\ninterval_secs = inf\n"), "positive numbers"),
    ];
    for (i, (env, file, expected)) in cases.into_iter().enumerate() {
        let (code, stderr) = run(i, env, file);
        assert_eq!(code, 2, "{env:?} {file:?}: {stderr}");
        assert!(stderr.contains(expected), "{env:?} {file:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}
