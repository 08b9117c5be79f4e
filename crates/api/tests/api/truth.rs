//! The database is the truth: rows written, changed and deleted by plain SQL
//! (a DBA, another program, a restore) reach GET, the listings and the feed,
//! as `"Source":"database"` entries, in every api process.

use crate::helpers::{spawn_app, TestApp};
use elkservice_testkit::eventually;
use serde_json::Value;
use sqlx::{Connection, Executor, MySqlConnection};

/// How long a test waits for what the docs bound at 2 s (`api.external_change_secs`).
const WAIT: u64 = 15;

/// A connection as a person's mysql client would have: not elkservice's own.
async fn outsider(app: &TestApp) -> MySqlConnection {
    MySqlConnection::connect(&app.db.url).await.unwrap()
}

async fn entries(app: &TestApp) -> Vec<Value> {
    app.get_json("/elkservice/changes?since=0&limit=1000", 200)
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// The feed's entries for `id` with `"Source":"database"`, as (Kind, FromStatus, Status).
async fn from_database(app: &TestApp, id: i64) -> Vec<(String, Value, Value)> {
    entries(app)
        .await
        .into_iter()
        .filter(|e| e["Id"] == id && e["Source"] == "database")
        .map(|e| {
            (
                e["Kind"].as_str().unwrap().to_owned(),
                e["FromStatus"].clone(),
                e["Service"]["Status"].clone(),
            )
        })
        .collect()
}

async fn status_of(app: &TestApp, id: i64) -> Option<(u16, Value)> {
    let res = app.get(&format!("/elkservice/{id}")).send().await.ok()?;
    let code = res.status().as_u16();
    let body: Value = res.json().await.ok()?;
    Some((code, body["Status"].clone()))
}

/// Wait until both processes answer `GET /elkservice/{id}` with `code` (and
/// `status`, for a 200).
async fn both_say(apps: [&TestApp; 2], id: i64, code: u16, status: &str) {
    for app in apps {
        eventually(
            WAIT,
            &format!("GET /elkservice/{id} → {code} {status}"),
            || async {
                let (got, s) = status_of(app, id).await?;
                (got == code && (code != 200 || s == status)).then_some(())
            },
        )
        .await;
    }
}

#[tokio::test]
async fn rows_inserted_changed_and_deleted_by_sql_reach_get_the_listing_and_the_feed_of_every_process(
) {
    let one = spawn_app().await;
    let two = one.another(|_| {}).await;
    let mut sql = outsider(&one).await;

    sql.execute(
        "INSERT INTO elkservice (id, name, status, running) VALUES (1, 'legacy', 'normal', 1)",
    )
    .await
    .unwrap();
    both_say([&one, &two], 1, 200, "normal").await;
    let etag = one.get("/elkservice/1").send().await.unwrap().headers()["etag"].clone();
    let listed = two.get_json("/elkservice?query=Name:legacy", 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    sql.execute("UPDATE elkservice SET status = 'down', running = 0 WHERE id = 1")
        .await
        .unwrap();
    both_say([&one, &two], 1, 200, "down").await;
    let row = one.get_json("/elkservice/1", 200).await;
    assert_eq!(row["Running"], false);
    let now = one.get("/elkservice/1").send().await.unwrap().headers()["etag"].clone();
    assert_ne!(now, etag, "the ETag follows the row");
    let down = two.get_json("/elkservice?query=Status:down", 200).await;
    assert_eq!(down[0]["Name"], "legacy");
    let history = one.get_json("/elkservice/1/events", 200).await;
    assert_eq!(history[0]["Status"], "down", "{history}");
    assert_eq!(history[0]["Source"], "database", "{history}");

    sql.execute("DELETE FROM elkservice WHERE id = 1")
        .await
        .unwrap();
    both_say([&one, &two], 1, 404, "").await;
    let listed = one.get_json("/elkservice?query=Name:legacy", 200).await;
    assert_eq!(listed, serde_json::json!([]));

    let recorded = from_database(&two, 1).await;
    assert_eq!(
        recorded,
        [
            ("created".into(), Value::Null, "normal".into()),
            ("transition".into(), "normal".into(), "down".into()),
            ("deleted".into(), "down".into(), Value::Null),
        ],
        "one entry per change, whichever process recorded it"
    );
}

#[tokio::test]
async fn changes_made_through_the_api_are_recorded_once_as_the_apis() {
    let app = spawn_app().await;
    let id = app.create("kibana", "normal").await["Id"].as_i64().unwrap();
    // A change by SQL after it, so that the api's loop has demonstrably run.
    let mut sql = outsider(&app).await;
    sql.execute("INSERT INTO elkservice (name, status) VALUES ('marker', 'down')")
        .await
        .unwrap();
    let all = eventually(WAIT, "the marker's entry", || async {
        let all = entries(&app).await;
        all.iter().any(|e| e["Name"] == "marker").then_some(all)
    })
    .await;
    let sources: Vec<_> = all
        .iter()
        .map(|e| (e["Name"].as_str().unwrap(), e["Source"].as_str().unwrap()))
        .collect();
    assert_eq!(sources, [("kibana", "api"), ("marker", "database")]);
    assert_eq!(all[0]["Id"], id);
}

#[tokio::test]
async fn a_sql_update_of_only_the_check_time_makes_no_entry() {
    let app = spawn_app().await;
    let id = app.create("kibana", "normal").await["Id"].as_i64().unwrap();
    let mut sql = outsider(&app).await;
    sql.execute(format!("UPDATE elkservice SET last_checked_at = NOW(6) WHERE id = {id}").as_str())
        .await
        .unwrap();
    sql.execute("INSERT INTO elkservice (name, status) VALUES ('marker', 'down')")
        .await
        .unwrap();
    eventually(WAIT, "the marker's entry", || async {
        entries(&app)
            .await
            .iter()
            .any(|e| e["Name"] == "marker")
            .then_some(())
    })
    .await;
    assert!(
        from_database(&app, id).await.is_empty(),
        "a confirmation is no feed entry"
    );
    // Yet GET shows the new check time (read in with the others once a second).
    eventually(WAIT, "LastCheckedAt in GET", || async {
        let row = app.get_json(&format!("/elkservice/{id}"), 200).await;
        (!row["LastCheckedAt"].is_null()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_status_or_name_outside_the_contract_is_refused_by_the_table() {
    let app = spawn_app().await;
    let mut sql = outsider(&app).await;
    for bad in [
        "INSERT INTO elkservice (name, status) VALUES ('es', 'sideways')",
        "INSERT INTO elkservice (name, status) VALUES ('no spaces', 'down')",
    ] {
        let err = sql.execute(bad).await.unwrap_err().to_string();
        assert!(err.contains("CONSTRAINT"), "{bad}: {err}");
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM elkservice")
        .fetch_one(&mut sql)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

/// mysqldump's output for the table, as an operator's backup would be.
fn dump(app: &TestApp) -> Vec<u8> {
    let out = std::process::Command::new("mysqldump")
        .args(client_args(app))
        .arg("elkservice")
        .output()
        .expect("mysqldump (MariaDB's client) is installed by scripts/services");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `--host … --port … --user … <database>` from the test database's URL.
fn client_args(app: &TestApp) -> Vec<String> {
    let url = reqwest::Url::parse(&app.db.url).unwrap();
    let mut args = vec![
        format!("--host={}", url.host_str().unwrap()),
        format!("--port={}", url.port().unwrap_or(3306)),
        format!("--user={}", url.username()),
    ];
    if let Some(p) = url.password() {
        args.push(format!("--password={p}"));
    }
    args.push(url.path().trim_start_matches('/').to_owned());
    args
}

fn restore(app: &TestApp, dump: &[u8]) {
    use std::io::Write;
    let mut child = std::process::Command::new("mysql")
        .args(client_args(app))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(dump).unwrap();
    assert!(child.wait().unwrap().success(), "the restore ran");
}

#[tokio::test]
async fn a_dump_restored_over_the_table_is_taken_as_it_is() {
    let one = spawn_app().await;
    let two = one.another(|_| {}).await;
    let kept = one.create("elasticsearch", "normal").await["Id"]
        .as_i64()
        .unwrap();
    let deleted_later = one.create("kibana", "normal").await["Id"].as_i64().unwrap();
    let backup = dump(&one);

    // After the backup, through the api: a transition, a deletion, a creation.
    let body = serde_json::json!({"Name": "elasticsearch", "Status": "down", "Running": false, "FailedCount": 1});
    assert_eq!(one.put_service(kept, body).await.status(), 200);
    let res = one
        .authed(
            reqwest::Method::DELETE,
            &format!("/elkservice/{deleted_later}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let made_later = one.create("logstash", "normal").await["Id"]
        .as_i64()
        .unwrap();

    // The restore drops the table and makes it again: older rows than the model's.
    restore(&one, &backup);
    both_say([&one, &two], kept, 200, "normal").await;
    both_say([&one, &two], deleted_later, 200, "normal").await;
    both_say([&one, &two], made_later, 404, "").await;
    let kinds = |rows: Vec<(String, Value, Value)>| -> Vec<String> {
        rows.into_iter().map(|r| r.0).collect()
    };
    assert_eq!(kinds(from_database(&one, kept).await), ["transition"]);
    assert_eq!(kinds(from_database(&one, deleted_later).await), ["created"]);
    assert_eq!(kinds(from_database(&one, made_later).await), ["deleted"]);

    // The dump brought the triggers back with the table: plain SQL is seen again.
    let mut sql = outsider(&one).await;
    sql.execute(format!("UPDATE elkservice SET status = 'degraded' WHERE id = {kept}").as_str())
        .await
        .unwrap();
    both_say([&one, &two], kept, 200, "degraded").await;
}
