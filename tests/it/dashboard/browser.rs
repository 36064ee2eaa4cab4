//! The dashboard page in a real browser: headless Chromium opens
//! `/dashboard` of a running `voice-operator dashboard`, a user types the
//! token and the range, and the page shows the fixture's numbers; a record
//! appended to the action log shows in the live feed within a second; a
//! business token shows that business only. Screenshots go to
//! `target/dashboard-screenshot.png` and `target/dashboard-screenshot-phone.png`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::{Served, append, fixture, id, spec, token_create};
use crate::support::webdriver::Browser;

const ADMIN: &str = "admin-token-for-the-browser";

/// How long the page may take to show what it fetched; generous, since
/// the machine is shared. The live feed's one second is measured apart.
const PATIENCE: Duration = Duration::from_secs(20);

/// Where a screenshot named `name` goes: the `target` directory this test
/// binary was built in.
fn screenshot_path(name: &str) -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_voice-operator"));
    // target/<profile>/voice-operator
    binary
        .parent()
        .and_then(Path::parent)
        .expect("the binary sits in target/<profile>")
        .join(name)
}

/// Types `token` and the fixture's range (2026-11-30 to 2026-12-06, as
/// month, day, year digits: the en-US order of Chromium's date inputs)
/// into the form and presses Show, as a user does.
async fn show(browser: &Browser, token: &str) {
    browser.fill("#token", token).await;
    for (input, keys, value) in [
        ("#from", "11302026", "2026-11-30"),
        ("#to", "12062026", "2026-12-06"),
    ] {
        browser.fill(input, keys).await;
        assert_eq!(
            browser.property(input, "value").await,
            value,
            "the date typed into {input}"
        );
    }
    browser.click("#controls button").await;
}

/// The cells of the rows matching `rows`, as `field: text` per cell.
async fn cells(browser: &Browser, rows: &str) -> Vec<String> {
    let mut out = Vec::new();
    for cell in browser.find_all(&format!("{rows} td")).await {
        let field = browser.attribute(&cell, "data-field").await;
        let text = browser.element_text(&cell).await;
        out.push(format!("{}: {text}", field.unwrap_or_default()));
    }
    out
}

/// Starts recording, in the page, when each record first shows in the
/// live feed (`Date.now()`, by its requestId).
async fn record_arrivals(browser: &Browser) {
    browser
        .execute(
            r#"window.shownAt = {};
            new MutationObserver((changes) => {
              for (const change of changes)
                for (const node of change.addedNodes)
                  if (node.dataset && node.dataset.requestId && !(node.dataset.requestId in window.shownAt))
                    window.shownAt[node.dataset.requestId] = Date.now();
            }).observe(document.getElementById("feed"), { childList: true });"#,
            json!([]),
        )
        .await;
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// Appends `line` to `log` and waits until the page shows the record
/// `request_id` in the live feed; the milliseconds from the write to the
/// DOM change (both clocks are this machine's).
async fn append_and_time(browser: &Browser, log: &Path, line: String, request_id: &str) -> f64 {
    let written = now_ms();
    append(log, &[line]);
    let shown = browser
        .wait_until(
            PATIENCE,
            &format!("record {request_id} in the live feed"),
            &format!("return window.shownAt[{request_id:?}]"),
        )
        .await;
    shown.as_f64().unwrap() - written
}

/// Waits until `#live-state` says the feed is connected, after `ready`
/// (a condition of the page that only the latest Show fulfils).
async fn wait_following(browser: &Browser, ready: &str, what: &str) {
    browser
        .wait_until(
            PATIENCE,
            what,
            &format!(
                "return ({ready}) && document.getElementById('live-state').textContent === 'following'"
            ),
        )
        .await;
}

#[tokio::test]
async fn the_page_shows_the_fixture_then_live_records_within_a_second_and_a_clinic_only_its_own() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("agent-log.jsonl");
    append(&log, &fixture());
    let (b1, _) = token_create(data.path(), "B1");
    let served = Served::start(data.path(), ADMIN);
    served.wait_stored(ADMIN, 8).await;

    let browser = Browser::start().await;
    browser.resize(1280, 1100).await;
    let page = format!("{}/dashboard", served.base);
    browser.goto(&page).await;
    assert_eq!(browser.text("#live-state").await, "off");
    show(&browser, ADMIN).await;
    wait_following(
        &browser,
        "document.querySelectorAll('#summary tbody tr').length === 3 \
         && document.querySelectorAll('#top tbody tr').length === 3",
        "the admin's summary, top businesses and live feed",
    )
    .await;

    // The fixture from 2026-11-30 to 2026-12-06 (see `fixture`).
    assert_eq!(
        cells(&browser, r#"#summary tr[data-tenant="B1/L1"]"#).await,
        [
            "tenant: B1 / L1",
            "calls: 2",
            "minutes: 2",
            "sms: 1",
            "email: 1",
            "whatsapp: 0",
            "failures: 1",
            "cost: 0.45 USD",
        ]
    );
    assert_eq!(
        cells(&browser, r#"#summary tr[data-tenant="B1/L2"]"#).await,
        [
            "tenant: B1 / L2",
            "calls: 0",
            "minutes: 0",
            "sms: 0",
            "email: 0",
            "whatsapp: 1",
            "failures: 0",
            "cost: 0.02 EUR",
        ]
    );
    assert_eq!(
        cells(&browser, r#"#summary tr[data-tenant="B2/L1"]"#).await,
        [
            "tenant: B2 / L1",
            "calls: 1",
            "minutes: 10",
            "sms: 2",
            "email: 0",
            "whatsapp: 0",
            "failures: 1",
            "cost: 11.05 USD",
        ]
    );
    // One entry per business and currency, the most expensive first.
    assert_eq!(
        cells(&browser, "#top tbody tr").await,
        [
            "business: B2",
            "cost: 11.05 USD",
            "records: 3",
            "business: B1",
            "cost: 0.45 USD",
            "records: 3",
            "business: B1",
            "cost: 0.02 EUR",
            "records: 1",
        ]
    );
    // A bar per day with records, labelled, its total in the tooltip,
    // as high as its share of the busiest day.
    let mut days = Vec::new();
    for bar in browser.find_all("#daily .bar").await {
        days.push((
            browser.element_text(&bar).await,
            browser.attribute(&bar, "title").await.unwrap_or_default(),
        ));
    }
    assert_eq!(
        days,
        [
            (
                "11-30".into(),
                "2026-11-30: 1 records, 1 calls, 0.10 USD".into()
            ),
            (
                "12-01".into(),
                "2026-12-01: 6 records, 2 calls, 0.02 EUR, 2.40 USD".into()
            ),
            (
                "12-05".into(),
                "2026-12-05: 1 records, 0 calls, 9.00 USD".into()
            ),
        ] as [(String, String); 3]
    );
    let heights = browser
        .execute(
            "return [...document.querySelectorAll('#daily .bar')].map((b) => b.getBoundingClientRect().height)",
            json!([]),
        )
        .await;
    let heights: Vec<f64> = serde_json::from_value(heights).unwrap();
    assert!(
        (heights[1] - 6.0 * heights[0]).abs() <= 1.0 && (heights[2] - heights[0]).abs() <= 0.5,
        "bars of 1, 6 and 1 records: {heights:?}"
    );
    let clipped = browser
        .execute(
            "const chart = document.getElementById('daily').getBoundingClientRect();
             return [...document.querySelectorAll('#daily .bar span')]
               .filter((l) => l.getBoundingClientRect().bottom > chart.bottom)
               .map((l) => l.textContent)",
            json!([]),
        )
        .await;
    assert_eq!(clipped, json!([]), "the day labels show inside the chart");

    // A record written to the action log shows in the live feed within a
    // second of the write.
    record_arrivals(&browser).await;
    let fresh = spec(
        30,
        "B2",
        "L1",
        "sms",
        "2026-12-01T13:00:00Z",
        None,
        Some((0.05, "USD")),
        "c9",
    );
    let fresh_id = id(30).to_string();
    let latency = append_and_time(&browser, &log, fresh.line(), &fresh_id).await;
    println!("live feed: the record showed {latency:.0} ms after it was written");
    assert!(
        latency < 1000.0,
        "the live feed showed the record {latency:.0} ms after the write; the issue asks for under a second"
    );
    let shown = browser
        .text(&format!(r#"#feed li[data-request-id="{fresh_id}"]"#))
        .await;
    for part in ["2026-12-01T13:00:00", "B2/L1", "sms", "sent", "0.05 USD"] {
        assert!(shown.contains(part), "{part} in the feed's line: {shown}");
    }

    let desktop = screenshot_path("dashboard-screenshot.png");
    browser.screenshot(&desktop).await;
    println!("screenshot: {}", desktop.display());

    // On a phone-sized window the page does not scroll sideways: the wide
    // tables scroll inside their own boxes.
    browser.resize(390, 844).await;
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            json!([]),
        )
        .await;
    assert_eq!(overflow, 0, "the page is wider than a 390 px phone");
    let phone = screenshot_path("dashboard-screenshot-phone.png");
    browser.screenshot(&phone).await;
    println!("screenshot: {}", phone.display());
    browser.resize(1280, 1100).await;

    // Opened again in the same tab, the page remembers the token
    // (sessionStorage); a clinic's token then shows that clinic only.
    browser.goto(&page).await;
    assert_eq!(browser.property("#token", "value").await, ADMIN);
    show(&browser, &b1).await;
    wait_following(
        &browser,
        "document.querySelectorAll('#summary tbody tr').length === 2 \
         && document.querySelector('#top tbody').textContent.includes('admin token')",
        "B1's summary and live feed",
    )
    .await;
    let tenants = browser
        .execute(
            "return [...document.querySelectorAll('#summary tbody tr')].map((r) => r.dataset.tenant)",
            json!([]),
        )
        .await;
    assert_eq!(tenants, json!(["B1/L1", "B1/L2"]));
    assert!(
        browser
            .text("#top tbody")
            .await
            .contains("this token reads business B1 only"),
        "the ranking of businesses is the admin's"
    );
    record_arrivals(&browser).await;
    let other = spec(
        31,
        "B2",
        "L1",
        "sms",
        "2026-12-01T14:00:00Z",
        None,
        None,
        "c9",
    );
    append(&log, &[other.line()]);
    let own = spec(
        32,
        "B1",
        "L1",
        "email",
        "2026-12-01T14:01:00Z",
        None,
        None,
        "c9",
    );
    // B1's record is stored after B2's, so once it shows, B2's would have.
    append_and_time(&browser, &log, own.line(), &id(32).to_string()).await;
    let listed = browser
        .execute(
            "return [...document.querySelectorAll('#feed li')].map((li) => li.dataset.requestId)",
            json!([]),
        )
        .await;
    assert_eq!(
        listed,
        json!([id(32).to_string()]),
        "B2's record is not shown to B1"
    );

    // Stopped with the page still following, the dashboard stops (it
    // cuts the open feed) and the page says the feed is no longer live.
    let (stopped, err) = served.stop().await;
    assert!(stopped, "{err}");
    browser
        .wait_until(
            PATIENCE,
            "the page to say the live feed is off",
            "return document.getElementById('live-state').textContent.startsWith('off')",
        )
        .await;
    assert!(
        err.contains("dashboard: 11 stored, 0 duplicates dropped, 0 invalid skipped"),
        "{err}"
    );
}
