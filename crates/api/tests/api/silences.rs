//! `/silences`: made with a key, listed while in force, ended by DELETE; bad
//! input is refused with the field named and changes nothing.

use crate::helpers::{assert_error, spawn_app};
use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn a_silence_is_listed_until_deleted() {
    let app = spawn_app().await;
    let until = (Utc::now() + Duration::hours(2)).to_rfc3339();
    let res = app
        .authed(Method::POST, "/silences")
        .json(&json!({"Match": "es-*", "Until": until, "Comment": "upgrade"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    assert_eq!(location, format!("/silences/{}", created["Id"]));
    assert_eq!(created["Match"], "es-*");
    assert_eq!(created["Comment"], "upgrade");

    let listed = app.get_json("/silences", 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["Id"], created["Id"]);

    // Writing needs a key; reading does not (api.auth_reads is off).
    let res = app.client.delete(app.url(&location)).send().await.unwrap();
    assert_error(res, 401).await;
    let res = app.authed(Method::DELETE, &location).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(app.get_json("/silences", 200).await, json!([]));
    let res = app.authed(Method::DELETE, &location).send().await.unwrap();
    assert_error(res, 404).await;
}

#[tokio::test]
async fn bad_silences_name_the_field_and_change_nothing() {
    let app = spawn_app().await;
    let soon = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let cases = [
        (json!({"Match": "es-*"}), 422, "Until"),
        (json!({"Until": soon}), 422, "Match"),
        (json!({"Match": "es/*", "Until": soon}), 422, "Match"),
        (json!({"Match": "*", "Until": "tomorrow"}), 422, "Until"),
        (
            json!({"Match": "*", "Until": (Utc::now() - Duration::minutes(1)).to_rfc3339()}),
            422,
            "Until",
        ),
        (
            json!({"Match": "*", "Until": (Utc::now() + Duration::days(31)).to_rfc3339()}),
            422,
            "Until",
        ),
        (
            json!({"Match": "*", "Until": soon, "Comment": "x".repeat(1025)}),
            422,
            "Comment",
        ),
        (
            json!({"Match": "*", "Until": soon, "Extra": 1}),
            422,
            "Extra",
        ),
        // Its fields in order, as an array.
        (json!(["*", soon, ""]), 422, "object"),
    ];
    for (body, status, field) in cases {
        let res = app
            .authed(Method::POST, "/silences")
            .json(&body)
            .send()
            .await
            .unwrap();
        let error = assert_error(res, status).await;
        assert!(error.to_string().contains(field), "{body}: {error}");
    }
    let res = app
        .authed(Method::POST, "/silences")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(res, 400).await;
    let res = app
        .client
        .post(app.url("/silences"))
        .json(&json!({"Match": "*", "Until": soon}))
        .send()
        .await
        .unwrap();
    assert_error(res, 401).await;
    assert_eq!(app.get_json("/silences", 200).await, json!([]));
}
