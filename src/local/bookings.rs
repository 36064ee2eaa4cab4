//! The bookings calendar `local` runs when no app server is configured: a
//! SQLite calendar per location behind the app-server HTTP API the tools
//! call (`GET <base>/api/v1/{availability,hours,services,appointments}`,
//! `POST <base>/api/v1/appointments`, see `agent::tools`), so that a first
//! run books for real: a slot can be taken once, and a second booking of
//! it is refused with 409, as an app server refuses it.
//!
//! Opening hours: the VoiceAgent has no field for them yet, so every
//! location opens Monday to Friday, 09:00 to 17:00, in 30-minute slots, in
//! the VoiceAgent's `timeZone` (UTC without one). The start-up report says
//! so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use rusqlite::{Connection, params};
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use crate::crd::VoiceAgent;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::sqlite::OpenError;

/// Where the calendar's API sits on the `local` server; the tools get
/// `<listen address>` followed by this as their app-server URL.
pub const PATH: &str = "/local/app-server";

/// When a location takes bookings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    /// Open on these days, Monday first.
    pub days: [bool; 7],
    /// Opening and closing time, minutes after midnight.
    pub open: u16,
    pub close: u16,
    /// Length of one slot, minutes.
    pub slot: u16,
}

impl Hours {
    /// Monday to Friday, 09:00 to 17:00, 30-minute slots.
    pub const DEFAULT: Hours = Hours {
        days: [true, true, true, true, true, false, false],
        open: 9 * 60,
        close: 17 * 60,
        slot: 30,
    };

    /// The start of every slot of `date` (none on a closed day).
    fn slots(&self, date: Date) -> Vec<u16> {
        if !self.days[date.weekday().to_monday_zero_offset() as usize] {
            return Vec::new();
        }
        (self.open..self.close)
            .step_by(self.slot.into())
            .filter(|start| start + self.slot <= self.close)
            .collect()
    }

    /// "Mon-Fri 09:00-17:00, 30-minute slots".
    pub fn describe(&self) -> String {
        let open: Vec<&str> = DAYS
            .iter()
            .zip(self.days)
            .filter(|(_, open)| *open)
            .map(|(name, _)| *name)
            .collect();
        let days = if open == DAYS[..5] {
            "Mon-Fri".to_owned()
        } else {
            open.join(",")
        };
        format!(
            "{days} {}-{}, {}-minute slots",
            hhmm(self.open),
            hhmm(self.close),
            self.slot
        )
    }
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn hhmm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// One location as the calendar sees it.
#[derive(Debug, Clone)]
pub struct Place {
    pub zone: TimeZone,
    pub zone_name: String,
    pub hours: Hours,
}

impl Place {
    /// The place a VoiceAgent describes: its time zone, the default hours.
    pub fn of(va: &VoiceAgent) -> Place {
        let name = va.spec.time_zone.clone().unwrap_or_else(|| "UTC".into());
        let zone = TimeZone::get(&name).unwrap_or(TimeZone::UTC);
        Place {
            zone,
            zone_name: name,
            hours: Hours::DEFAULT,
        }
    }

    /// Today's date and the minutes past midnight, here.
    fn now(&self) -> (Date, u16) {
        let now = jiff::Timestamp::now().to_zoned(self.zone.clone());
        let minutes = now.hour() as u16 * 60 + now.minute() as u16;
        (now.date(), minutes)
    }
}

/// Finds the place of a (business, location), if a VoiceAgent names it.
pub type Places = Box<dyn Fn(&str, &str) -> Option<Place> + Send + Sync>;

/// The calendar: its file, the bearer token the tools send, and where to
/// find each location's hours.
pub struct Calendar {
    db: Mutex<Connection>,
    path: PathBuf,
    token: SecretString,
    places: Places,
}

/// How far ahead a booking may be.
const MAX_DAYS_AHEAD: i64 = 366;

impl Calendar {
    /// Opens (and creates) the calendar at `path`; `token` is the bearer
    /// the tools must send.
    pub fn open(
        path: &Path,
        token: SecretString,
        places: Places,
    ) -> Result<Arc<Calendar>, OpenError> {
        let db = crate::sqlite::open(
            "the bookings calendar",
            path,
            "CREATE TABLE IF NOT EXISTS appointments (
                id TEXT PRIMARY KEY,
                business_id TEXT NOT NULL,
                location_id TEXT NOT NULL,
                date TEXT NOT NULL,
                time TEXT NOT NULL,
                customer_name TEXT NOT NULL,
                customer_phone TEXT,
                service TEXT,
                notes TEXT,
                session_id TEXT,
                created_at TEXT NOT NULL,
                UNIQUE (business_id, location_id, date, time)
            );",
        )?;
        Ok(Arc::new(Calendar {
            db: Mutex::new(db),
            path: path.to_owned(),
            token,
            places,
        }))
    }

    /// The calendar file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn place(&self, business: &str, location: &str) -> Result<Place, ApiError> {
        (self.places)(business, location).ok_or_else(|| {
            ApiError::NotFound(format!(
                "no VoiceAgent names {business}/{location}, so it has no calendar"
            ))
        })
    }

    fn db(&self) -> Result<std::sync::MutexGuard<'_, Connection>, ApiError> {
        self.db
            .lock()
            .map_err(|_| ApiError::Internal("the calendar lock is poisoned".into()))
    }

    /// The taken slot starts of one day.
    fn taken(&self, business: &str, location: &str, date: Date) -> Result<Vec<String>, ApiError> {
        let db = self.db()?;
        let mut query = db
            .prepare_cached(
                "SELECT time FROM appointments
                 WHERE business_id = ?1 AND location_id = ?2 AND date = ?3 ORDER BY time",
            )
            .map_err(internal)?;
        let rows = query
            .query_map(params![business, location, date.to_string()], |r| r.get(0))
            .map_err(internal)?;
        rows.collect::<Result<_, _>>().map_err(internal)
    }

    /// Free and taken slots of `date`, or of the first day from today that
    /// has a free one.
    fn availability(&self, who: &Who, date: Option<Date>) -> Result<Value, ApiError> {
        let place = self.place(&who.business, &who.location)?;
        let (today, now) = place.now();
        let days = match date {
            Some(date) => vec![date],
            None => (0..14)
                .filter_map(|d| today.checked_add(jiff::Span::new().days(d)).ok())
                .collect(),
        };
        let mut answer = None;
        for day in days {
            let taken = self.taken(&who.business, &who.location, day)?;
            let free: Vec<String> = place
                .hours
                .slots(day)
                .into_iter()
                .filter(|start| day > today || (day == today && *start > now))
                .map(hhmm)
                .filter(|slot| !taken.contains(slot))
                .collect();
            let found = !free.is_empty();
            answer = Some(json!({
                "businessId": who.business,
                "locationId": who.location,
                "date": day.to_string(),
                "weekday": DAYS[day.weekday().to_monday_zero_offset() as usize],
                "timeZone": place.zone_name,
                "hours": place.hours.describe(),
                "free": free,
                "taken": taken,
            }));
            if found {
                break;
            }
        }
        Ok(answer.unwrap_or(Value::Null))
    }

    /// Books one slot, or says why not: 409 when it is taken.
    fn book(&self, who: &Who, body: &Map<String, Value>) -> Result<Value, ApiError> {
        let text = |field: &'static str| -> Result<Option<String>, ApiError> {
            match body.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
                Some(_) => Err(ApiError::field(field, "must be a string")),
            }
        };
        let required = |field: &'static str| {
            text(field)?.ok_or_else(|| ApiError::field(field, "is required to book"))
        };
        let date = parse_date(&required("date")?)?;
        let time_text = required("time")?;
        let start = parse_time(&time_text)?;
        let customer = required("customerName")?;
        let place = self.place(&who.business, &who.location)?;
        let (today, now) = place.now();
        if !place.hours.slots(date).contains(&start) {
            return Err(ApiError::field(
                "time",
                format!(
                    "{date} {} is not a slot of {}/{}: {} ({})",
                    hhmm(start),
                    who.business,
                    who.location,
                    place.hours.describe(),
                    place.zone_name
                ),
            ));
        }
        if date < today || (date == today && start <= now) {
            return Err(ApiError::field(
                "time",
                format!("{date} {} has passed", hhmm(start)),
            ));
        }
        if (date - today).get_days() > MAX_DAYS_AHEAD as i32 {
            return Err(ApiError::field(
                "date",
                format!("{date} is more than {MAX_DAYS_AHEAD} days ahead"),
            ));
        }
        let id = format!("apt-{}", uuid::Uuid::new_v4());
        let inserted = self.db()?.execute(
            "INSERT INTO appointments (id, business_id, location_id, date, time, customer_name,
                 customer_phone, service, notes, session_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                id,
                who.business,
                who.location,
                date.to_string(),
                hhmm(start),
                customer,
                text("customerPhone")?,
                text("service")?,
                text("notes")?,
                text("agentSessionId")?,
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ],
        );
        match inserted {
            Ok(_) => Ok(json!({
                "appointmentId": id,
                "businessId": who.business,
                "locationId": who.location,
                "date": date.to_string(),
                "time": hhmm(start),
                "timeZone": place.zone_name,
                "customerName": customer,
                "status": "booked",
            })),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(ApiError::Conflict(format!(
                    "slot taken: {date} {} at {}/{} is already booked",
                    hhmm(start),
                    who.business,
                    who.location
                )))
            }
            Err(e) => Err(internal(e)),
        }
    }

    /// The bookings of one day.
    fn appointments(&self, who: &Who, date: Date) -> Result<Value, ApiError> {
        self.place(&who.business, &who.location)?;
        let db = self.db()?;
        let mut query = db
            .prepare_cached(
                "SELECT id, time, customer_name, service FROM appointments
                 WHERE business_id = ?1 AND location_id = ?2 AND date = ?3 ORDER BY time",
            )
            .map_err(internal)?;
        let rows = query
            .query_map(params![who.business, who.location, date.to_string()], |r| {
                Ok(json!({
                    "appointmentId": r.get::<_, String>(0)?,
                    "time": r.get::<_, String>(1)?,
                    "customerName": r.get::<_, String>(2)?,
                    "service": r.get::<_, Option<String>>(3)?,
                }))
            })
            .map_err(internal)?;
        let list: Vec<Value> = rows.collect::<Result<_, _>>().map_err(internal)?;
        Ok(json!({"date": date.to_string(), "appointments": list}))
    }
}

fn internal(e: rusqlite::Error) -> ApiError {
    ApiError::Internal(format!("bookings calendar: {e}"))
}

fn parse_date(raw: &str) -> Result<Date, ApiError> {
    let well_formed = raw.len() == 10 && raw.as_bytes()[4] == b'-' && raw.as_bytes()[7] == b'-';
    well_formed
        .then(|| raw.parse::<Date>().ok())
        .flatten()
        .ok_or_else(|| ApiError::field("date", format!("{raw:?} is not a date (YYYY-MM-DD)")))
}

fn parse_time(raw: &str) -> Result<u16, ApiError> {
    let bad = || ApiError::field("time", format!("{raw:?} is not a time (HH:MM, 24-hour)"));
    let (h, m) = raw.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// The location a request is for.
struct Who {
    business: String,
    location: String,
}

impl Who {
    fn from(values: &Map<String, Value>) -> Result<Who, ApiError> {
        let id = |field: &'static str| {
            let raw = values
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default();
            crate::ids::Id::parse(field, raw).map(|id| id.as_str().to_owned())
        };
        Ok(Who {
            business: id("businessId")?,
            location: id("locationId")?,
        })
    }
}

/// The calendar's routes, under [`PATH`].
pub fn routes(calendar: Arc<Calendar>) -> Router {
    Router::new()
        .route(
            &format!("{PATH}/api/v1/{{resource}}"),
            get(read).post(write),
        )
        .with_state(calendar)
}

async fn read(
    State(calendar): State<Arc<Calendar>>,
    UrlPath(resource): UrlPath<String>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    AppState::check_bearer(&headers, &calendar.token, "the bookings calendar")?;
    let query: Map<String, Value> = query
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let who = Who::from(&query)?;
    let date = match query
        .get("date")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
    {
        Some(raw) => Some(parse_date(raw)?),
        None => None,
    };
    let answer = match resource.as_str() {
        "availability" => calendar.availability(&who, date)?,
        "hours" => {
            let place = calendar.place(&who.business, &who.location)?;
            json!({
                "businessId": who.business,
                "locationId": who.location,
                "timeZone": place.zone_name,
                "hours": place.hours.describe(),
                "source": "default: the VoiceAgent does not give opening hours",
            })
        }
        "services" => {
            calendar.place(&who.business, &who.location)?;
            json!({"services": [], "note": "the embedded calendar keeps no list of services; any service can be booked"})
        }
        "appointments" => {
            let place = calendar.place(&who.business, &who.location)?;
            calendar.appointments(&who, date.unwrap_or_else(|| place.now().0))?
        }
        other => return Err(ApiError::NotFound(format!("no resource {other:?} here"))),
    };
    Ok(Json(answer))
}

async fn write(
    State(calendar): State<Arc<Calendar>>,
    UrlPath(resource): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    AppState::check_bearer(&headers, &calendar.token, "the bookings calendar")?;
    if resource != "appointments" {
        return Err(ApiError::NotFound(format!(
            "no resource {resource:?} to write"
        )));
    }
    let body: Map<String, Value> =
        serde_json::from_slice(&body).map_err(|e| ApiError::NotJson(e.to_string()))?;
    let who = Who::from(&body)?;
    let booked = calendar.book(&who, &body)?;
    tracing::info!(business_id = %who.business, location_id = %who.location, date = %booked["date"], time = %booked["time"], "slot booked in the embedded calendar");
    Ok((StatusCode::CREATED, Json(booked)))
}

#[cfg(test)]
mod tests {
    use jiff::civil::Weekday;

    use super::*;

    /// The calendar for B1/L1 (UTC) on a loopback port; its base URL.
    async fn serve(dir: &Path) -> String {
        let places: Places = Box::new(|b, l| {
            (b == "B1" && l == "L1").then(|| Place {
                zone: TimeZone::UTC,
                zone_name: "UTC".into(),
                hours: Hours::DEFAULT,
            })
        });
        let calendar = Calendar::open(
            &dir.join("bookings.sqlite"),
            SecretString::from("t0ken"),
            places,
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}{PATH}/api/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, routes(calendar)).await });
        base
    }

    /// The first day from `from` (excluded) on `weekday`.
    fn next(from: Date, weekday: Weekday) -> Date {
        from.nth_weekday(1, weekday).unwrap()
    }

    #[tokio::test]
    async fn the_calendar_books_once_and_refuses_what_an_app_server_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let base = serve(dir.path()).await;
        let http = reqwest::Client::new();
        let today = jiff::Timestamp::now().to_zoned(TimeZone::UTC).date();
        let monday = next(today, Weekday::Monday).to_string();
        let book = |body: Value| {
            let mut body = body;
            body["businessId"] = json!("B1");
            body["locationId"]
                .as_str()
                .is_none()
                .then(|| body["locationId"] = json!("L1"));
            http.post(format!("{base}/appointments"))
                .bearer_auth("t0ken")
                .json(&body)
                .send()
        };
        let answer = |r: reqwest::Response| async move {
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        };

        let (code, booked) = answer(
            book(json!({"date": monday, "time": "10:00", "customerName": "Ana"}))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(code, 201, "{booked}");
        assert_eq!(booked["status"], json!("booked"));
        let (code, taken) = answer(
            book(json!({"date": monday, "time": "10:00", "customerName": "Ion"}))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(code, 409, "{taken}");
        assert!(
            taken["error"].as_str().unwrap().contains("slot taken"),
            "{taken}"
        );

        let saturday = next(today, Weekday::Saturday).to_string();
        // The last weekday before today: open, but passed.
        let past = (1..=7)
            .map(|d| today - jiff::Span::new().days(d))
            .find(|d| !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday))
            .unwrap();
        for (body, status, says) in [
            (
                json!({"date": saturday, "time": "10:00", "customerName": "A"}),
                400,
                "time: ",
            ),
            (
                json!({"date": monday, "time": "10:15", "customerName": "A"}),
                400,
                "is not a slot",
            ),
            (
                json!({"date": monday, "time": "17:00", "customerName": "A"}),
                400,
                "is not a slot",
            ),
            (
                json!({"date": past.to_string(), "time": "10:00", "customerName": "A"}),
                400,
                "has passed",
            ),
            (
                json!({"date": "tomorrow", "time": "10:00", "customerName": "A"}),
                400,
                "date: ",
            ),
            (
                json!({"date": monday, "time": "10:30"}),
                400,
                "customerName: is required",
            ),
            (
                json!({"date": monday, "time": 1030, "customerName": "A"}),
                400,
                "time: must be a string",
            ),
            (
                json!({"date": monday, "time": "10:30", "customerName": "A", "locationId": "L9"}),
                404,
                "no VoiceAgent",
            ),
        ] {
            let (code, refused) = answer(book(body.clone()).await.unwrap()).await;
            assert_eq!(code, status, "{body}: {refused}");
            assert!(
                refused["error"].as_str().unwrap().contains(says),
                "{body}: {refused}"
            );
        }
        let unsigned = http
            .get(format!("{base}/availability?businessId=B1&locationId=L1"))
            .send()
            .await
            .unwrap();
        assert_eq!(unsigned.status().as_u16(), 401);

        let (code, free) = answer(
            http.get(format!(
                "{base}/availability?businessId=B1&locationId=L1&date={monday}"
            ))
            .bearer_auth("t0ken")
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(code, 200, "{free}");
        assert_eq!(free["taken"], json!(["10:00"]));
        assert_eq!(free["free"].as_array().unwrap().len(), 15, "{free}");
        assert!(!free["free"].as_array().unwrap().contains(&json!("10:00")));
    }

    #[test]
    fn default_hours_are_weekdays_nine_to_five_in_half_hours() {
        let monday: Date = "2026-11-30".parse().unwrap();
        let slots = Hours::DEFAULT.slots(monday);
        assert_eq!(slots.len(), 16);
        assert_eq!(
            (hhmm(slots[0]), hhmm(slots[15])),
            ("09:00".into(), "16:30".into())
        );
        let saturday: Date = "2026-12-05".parse().unwrap();
        assert!(Hours::DEFAULT.slots(saturday).is_empty());
        assert_eq!(
            Hours::DEFAULT.describe(),
            "Mon-Fri 09:00-17:00, 30-minute slots"
        );
    }

    #[test]
    fn dates_and_times_are_strict() {
        assert!(parse_date("2026-12-01").is_ok());
        for bad in ["2026-13-01", "2026-1-01", "tomorrow", "2026-12-01T10:00"] {
            let err = parse_date(bad).unwrap_err().to_string();
            assert!(err.starts_with("date:"), "{bad}: {err}");
        }
        assert_eq!(parse_time("10:30").unwrap(), 630);
        for bad in ["10", "24:00", "9:30", "10:60", "ten"] {
            assert!(
                parse_time(bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with("time:"),
                "{bad}"
            );
        }
    }
}
