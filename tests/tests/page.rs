//! The status page in a real browser (Debian's Chromium through
//! chromedriver): a labelled container is killed, and its element turns
//! `data-status="down"` without a reload.

use elkservice_e2e::{Api, System};
use elkservice_testkit::{eventually, free_port, on_both_engines, Engine};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::Instant;

/// chromedriver on a port of its own, stopped with the guard.
use elkservice_testkit::Killed as Driver;

async fn browser() -> (Driver, Client) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (scripts/test installs chromium-driver)");
    let driver = Driver(child);
    eventually(30, "chromedriver to answer", || async move {
        reqwest::get(format!("http://127.0.0.1:{port}/status"))
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;
    let profile = std::env::temp_dir().join(format!("elk-chromium-{port}"));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display())],
        }),
    );
    let client = ClientBuilder::rustls()
        .expect("a TLS stack")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session");
    (driver, client)
}

/// An attribute of a service's element (`data-status`, `data-late`).
async fn service_attr(page: &Client, service: &str, attr: &str) -> Option<String> {
    let card = page
        .find(Locator::Css(&format!("[data-service=\"{service}\"]")))
        .await
        .ok()?;
    card.attr(attr).await.ok().flatten()
}

async fn status_of(page: &Client, service: &str) -> Option<String> {
    service_attr(page, service, "data-status").await
}

/// Empty the search box, as a person deleting what they typed.
async fn clear_search(page: &Client) {
    page.execute(
        "const f = document.getElementById('filter'); f.value = ''; f.dispatchEvent(new Event('input'));",
        vec![],
    )
    .await
    .unwrap();
}

/// Clicks the element `css` names. The page redraws its groups on every
/// refresh, so an element found a moment ago may be gone: find it afresh
/// until a click lands.
async fn click(page: &Client, css: &str) {
    eventually(10, css, || async {
        let element = page.find(Locator::Css(css)).await.ok()?;
        element.click().await.ok()
    })
    .await;
}

async fn text_of(page: &Client, id: &str) -> Option<String> {
    page.find(Locator::Id(id)).await.ok()?.text().await.ok()
}

/// The services' names on the page, in its order.
async fn names_shown(page: &Client) -> Vec<String> {
    let names = page
        .execute(
            "return [...document.querySelectorAll('[data-service]')].map((c) => c.dataset.service);",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(names).unwrap()
}

on_both_engines!(the_status_page_shows_a_killed_container_down_without_a_reload);

async fn the_status_page_shows_a_killed_container_down_without_a_reload(engine: Engine) {
    let sys = System::start(engine).await;
    let c = sys.run_container("web");
    eventually(30, "web normal", || async {
        sys.row("web").await.filter(|r| r["Status"] == "normal")
    })
    .await;

    // A service last checked 10 min ago, which nothing has marked since: the
    // page says so, on its card and in the summary.
    let res = sys
        .client
        .post(format!("{}/elkservice", sys.api))
        .bearer_auth(elkservice_e2e::KEY)
        .json(&json!({"Name": "quiet", "Status": "normal", "Running": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let mut conn = sys.db.connect().await;
    sqlx::query(
        "UPDATE elkservice SET last_checked_at = NOW(6) - INTERVAL 10 MINUTE WHERE name = 'quiet'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    eventually(10, "the api to read the check time", || async {
        sys.row("quiet")
            .await
            .filter(|r| r["LastCheckedAt"].is_string())
    })
    .await;

    let (_driver, page) = browser().await;
    page.goto(&format!("{}/", sys.api)).await.unwrap();
    assert!(page
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/status/"));
    eventually(20, "the page to show web normal and be live", || async {
        let live = page
            .find(Locator::Id("live"))
            .await
            .ok()?
            .attr("data-live")
            .await
            .ok()??;
        (status_of(&page, "web").await.as_deref() == Some("normal") && live == "up").then_some(())
    })
    .await;
    let late = |service| service_attr(&page, service, "data-late");
    assert_eq!(late("quiet").await.as_deref(), Some("true"));
    assert_eq!(late("web").await.as_deref(), Some("false"));
    let chip = page
        .find(Locator::Id("late"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(chip, "1 not checked for 3 min");
    // A mark that a reload would wipe.
    page.execute("window.notReloaded = true;", vec![])
        .await
        .unwrap();
    let shot = page.screenshot().await.unwrap();
    let path = std::env::temp_dir().join(format!("elkservice-status-page-{engine:?}.png"));
    std::fs::write(&path, shot).unwrap();
    eprintln!("screenshot: {}", path.display());

    let killed = Instant::now();
    c.cli(&["kill"]);
    eventually(10, "the page to show web down", || async {
        (status_of(&page, "web").await.as_deref() == Some("down")).then_some(())
    })
    .await;
    // The target is 1 s from the kill; on a shared machine it is reported, not asserted.
    eprintln!(
        "{engine:?}: container kill → page shows down: {} ms",
        killed.elapsed().as_millis()
    );
    let kept = page
        .execute("return window.notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(kept, json!(true), "the page reloaded");

    // The search box asks the api; what does not match goes, and comes back.
    let filter = page.find(Locator::Id("filter")).await.unwrap();
    filter.send_keys("nothing-like-it").await.unwrap();
    eventually(10, "the search to leave no card", || async {
        let shown = text_of(&page, "shown").await?;
        (status_of(&page, "web").await.is_none() && shown.starts_with("Showing 0 of 0"))
            .then_some(())
    })
    .await;
    clear_search(&page).await;
    eventually(10, "web to be back", || async {
        status_of(&page, "web").await.map(|_| ())
    })
    .await;

    // A phone-width screen: no sideways scrolling.
    page.set_window_size(390, 844).await.unwrap();
    let fits = page
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fits, json!(true));
    let shot = page.screenshot().await.unwrap();
    std::fs::write(
        std::env::temp_dir().join(format!("elkservice-status-phone-{engine:?}.png")),
        shot,
    )
    .unwrap();
    page.close().await.unwrap();
}

/// 10,003 services made by plain SQL (not through elkservice): the page counts
/// every one, puts the problems first, finds any of them, groups them, and
/// shows a service beyond its first page that turns `down`, all from one
/// request at load. How long the first view and a change take is reported
/// (the machine is shared), not asserted.
#[tokio::test]
async fn the_status_page_shows_every_service_however_many() {
    let api = Api::start().await;
    let mut conn = api.db.connect().await;
    const WEB: usize = 10_000;
    let mut values: Vec<String> = (0..WEB)
        .map(|i| format!("({}, 'web-{i:05}', 'normal', TRUE)", i + 1))
        .collect();
    values.extend([
        "(20001, 'es-data-1', 'normal', TRUE)".to_owned(),
        "(20002, 'es-data-2', 'down', FALSE)".to_owned(),
        "(20003, 'kibana', 'degraded', TRUE)".to_owned(),
    ]);
    for chunk in values.chunks(2000) {
        sqlx::query(&format!(
            "INSERT INTO elkservice (id, name, status, running) VALUES {}",
            chunk.join(", ")
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let client = reqwest::Client::new();
    eventually(30, "the api to have every row", || async {
        let o =
            elkservice_testkit::get_json(&client, &format!("{}/status/overview", api.url)).await?;
        (o["Total"] == WEB + 3).then_some(())
    })
    .await;

    let (_driver, page) = browser().await;
    let opened = std::time::Instant::now();
    page.goto(&format!("{}/status/", api.url)).await.unwrap();
    eventually(20, "the page to count every service", || async {
        let summary = text_of(&page, "summary").await?;
        summary.contains("10,003 services").then_some(())
    })
    .await;
    eprintln!(
        "10,003 services: first view in {} ms",
        opened.elapsed().as_millis()
    );
    let summary = text_of(&page, "summary").await.unwrap();
    assert!(
        summary.contains("1 down")
            && summary.contains("1 degraded")
            && summary.contains("10,001 normal"),
        "{summary}"
    );
    let names = names_shown(&page).await;
    assert_eq!(names.len(), 120, "one page of cards");
    assert_eq!(
        &names[..4],
        ["es-data-2", "kibana", "es-data-1", "web-00000"]
    );
    assert_eq!(
        text_of(&page, "shown").await.unwrap(),
        "Showing 120 of 10,003, problems first"
    );
    // One request for all of it, however many services: none per service.
    let requests = page
        .execute(
            "return performance.getEntriesByType('resource').map((r) => new URL(r.name).pathname)\
               .filter((p) => !p.endsWith('.css') && !p.endsWith('.js') && p !== '/elkservice/stream');",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(requests, json!(["/status/overview"]));
    let shot = page.screenshot().await.unwrap();
    let path = std::env::temp_dir().join("elkservice-status-page-10003.png");
    std::fs::write(&path, shot).unwrap();
    eprintln!("screenshot: {}", path.display());

    // A service far beyond the page turns down, by plain SQL: it comes first.
    let changed = std::time::Instant::now();
    sqlx::query("UPDATE elkservice SET status = 'down', running = FALSE WHERE name = 'web-09400'")
        .execute(&mut conn)
        .await
        .unwrap();
    eventually(10, "web-09400 to show, down", || async {
        (status_of(&page, "web-09400").await.as_deref() == Some("down")).then_some(())
    })
    .await;
    eprintln!(
        "a change by SQL on the page in {} ms (within api.external_change_secs, 2 s)",
        changed.elapsed().as_millis()
    );
    let names = names_shown(&page).await;
    assert_eq!(&names[..3], ["es-data-2", "web-09400", "kibana"]);
    let summary = text_of(&page, "summary").await.unwrap();
    assert!(
        summary.contains("2 down") && summary.contains("10,000 normal"),
        "{summary}"
    );

    // A search reaches every service, not only those on the page.
    let filter = page.find(Locator::Id("filter")).await.unwrap();
    filter.send_keys("WEB-09999").await.unwrap();
    eventually(10, "the search to find web-09999", || async {
        (names_shown(&page).await == ["web-09999"]).then_some(())
    })
    .await;
    assert_eq!(
        text_of(&page, "shown").await.unwrap(),
        "Showing 1 of 1 matching, problems first"
    );
    assert!(page
        .current_url()
        .await
        .unwrap()
        .query()
        .unwrap_or("")
        .contains("q=WEB-09999"));
    clear_search(&page).await;

    // Groups by the name's first part; one click shows a group alone.
    let es = "button.group[data-group=\"es\"]";
    eventually(10, "the es group to show down", || async {
        let group = page.find(Locator::Css(es)).await.ok()?;
        (group.attr("data-status").await.ok()??.as_str() == "down").then_some(())
    })
    .await;
    click(&page, es).await;
    eventually(10, "the es group alone", || async {
        (names_shown(&page).await == ["es-data-2", "es-data-1"]).then_some(())
    })
    .await;
    let shot = page.screenshot().await.unwrap();
    std::fs::write(
        std::env::temp_dir().join("elkservice-status-group.png"),
        shot,
    )
    .unwrap();

    // At a phone's width, with the groups and the counts: no sideways scrolling.
    click(&page, "button.group.active").await;
    eventually(10, "every group again", || async {
        (names_shown(&page).await.len() == 120).then_some(())
    })
    .await;
    page.set_window_size(390, 844).await.unwrap();
    let fits = page
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fits, json!(true));
    let shot = page.screenshot().await.unwrap();
    std::fs::write(
        std::env::temp_dir().join("elkservice-status-phone-10003.png"),
        shot,
    )
    .unwrap();
    page.close().await.unwrap();
}

/// Several watchers, as the writer records their votes: the page says how
/// many agree on each service, who says otherwise and who has gone silent,
/// and names a watcher that is silent on every service.
#[tokio::test]
async fn the_status_page_shows_watchers_that_disagree_and_one_gone_silent() {
    let api = Api::start().await;
    let mut conn = api.db.connect().await;
    sqlx::query(
        "INSERT INTO elkservice (id, name, status, running, detail) VALUES \
         (1, 'es-data-1', 'normal', TRUE, 'green (normal: 2 of 3 watchers)'), \
         (2, 'kibana', 'normal', TRUE, 'available (normal: 2 of 3 watchers)')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let now_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let hour_ago = now_ns - 3_600_000_000_000;
    sqlx::query(
        "INSERT INTO elkservice_vote (service_id, watcher, status, running, detail, observed_ns, fresh) VALUES \
         (1, 'vp-a', 'normal', TRUE, 'green', ?, TRUE), \
         (1, 'vp-b', 'normal', TRUE, 'green', ?, TRUE), \
         (1, 'vp-c', 'down', FALSE, 'connection refused', ?, TRUE), \
         (2, 'vp-a', 'normal', TRUE, 'available', ?, TRUE), \
         (2, 'vp-b', 'normal', TRUE, 'available', ?, TRUE), \
         (2, 'vp-d', 'normal', TRUE, 'available', ?, FALSE)",
    )
    .bind(now_ns)
    .bind(now_ns)
    .bind(now_ns)
    .bind(now_ns)
    .bind(now_ns)
    .bind(hour_ago)
    .execute(&mut conn)
    .await
    .unwrap();
    let client = reqwest::Client::new();
    eventually(30, "the api to have both rows with their votes", || async {
        let o =
            elkservice_testkit::get_json(&client, &format!("{}/status/overview", api.url)).await?;
        let voted = o["Services"]
            .as_array()?
            .iter()
            .all(|s| s["Votes"].as_array().is_some_and(|v| v.len() == 3));
        (o["Total"] == 2 && voted).then_some(())
    })
    .await;

    let (_driver, page) = browser().await;
    page.goto(&format!("{}/status/", api.url)).await.unwrap();
    eventually(20, "the cards", || async {
        (names_shown(&page).await.len() == 2).then_some(())
    })
    .await;
    let votes_of = |service: &'static str| {
        let page = page.clone();
        async move {
            page.find(Locator::Css(&format!(
                "[data-service=\"{service}\"] .votes"
            )))
            .await
            .ok()?
            .text()
            .await
            .ok()
        }
    };
    let es = votes_of("es-data-1").await.unwrap();
    assert!(
        es.contains("2 of 3 watchers agree") && es.contains("vp-c: down (connection refused)"),
        "{es}"
    );
    assert_eq!(
        service_attr(&page, "es-data-1", "data-disagree")
            .await
            .as_deref(),
        Some("true")
    );
    let kibana = votes_of("kibana").await.unwrap();
    assert!(
        kibana.contains("2 of 3 watchers agree") && kibana.contains("vp-d: silent since"),
        "{kibana}"
    );
    assert_eq!(
        service_attr(&page, "kibana", "data-disagree")
            .await
            .as_deref(),
        Some("false"),
        "a silent watcher abstains: it does not disagree"
    );
    let watchers = text_of(&page, "watchers").await.unwrap();
    assert!(
        watchers.contains("1 of 4 watchers silent") && watchers.contains("vp-d (last heard"),
        "{watchers}"
    );
    let shot = page.screenshot().await.unwrap();
    std::fs::write(
        std::env::temp_dir().join("elkservice-status-watchers.png"),
        shot,
    )
    .unwrap();
    page.close().await.unwrap();
}

/// The badges, as a README shows them: an image that a browser renders,
/// saying the status, and the uptime in its colour.
#[tokio::test]
async fn badges_render_in_a_browser() {
    let api = Api::start().await;
    let mut conn = api.db.connect().await;
    sqlx::query(
        "INSERT INTO elkservice (id, name, status, running) VALUES (1, 'kibana', 'down', FALSE)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let (_driver, page) = browser().await;
    // A page of the api's origin, its body replaced by the three images.
    page.goto(&format!("{}/status/", api.url)).await.unwrap();
    page.execute(
        "document.body.innerHTML = \
           '<img id=\"s\" src=\"/badge/kibana/status.svg\"> \
            <img id=\"u\" src=\"/badge/kibana/uptime.svg?window=7d\"> \
            <img id=\"n\" src=\"/badge/nobody/status.svg\">';",
        vec![],
    )
    .await
    .unwrap();
    let widths = eventually(20, "the three badges to load", || async {
        let w = page
            .execute(
                "const ids = ['s', 'u', 'n'].map((id) => document.getElementById(id));\
                 return ids.every((i) => i.complete && i.naturalWidth > 0) \
                   ? ids.map((i) => [i.naturalWidth, i.naturalHeight]) : null;",
                vec![],
            )
            .await
            .ok()?;
        (!w.is_null()).then_some(w)
    })
    .await;
    for size in widths.as_array().unwrap() {
        assert_eq!(size[1], 20, "a badge is 20 px high: {widths}");
        assert!(size[0].as_u64().unwrap() > 60, "{widths}");
    }
    let shot = page.screenshot().await.unwrap();
    std::fs::write(std::env::temp_dir().join("elkservice-badges.png"), shot).unwrap();
    page.close().await.unwrap();
}
