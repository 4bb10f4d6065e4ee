//! The centre's side of the loop as people use it over HTTP: staff logged in
//! like the dashboard (the session cookie, and the CSRF token from the login
//! answer on every POST), and a resident's phone opening a rating link and
//! sending the page's form.

use anyhow::{anyhow, bail, Context, Result};
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::server::ServerProcess;

const SESSION_COOKIE: &str = "gridcase_session";
const CSRF_HEADER: &str = "x-csrf-token";
/// Good enough for the server's rule (at least 10 characters).
pub const STAFF_PASSWORD: &str = "grid-centre-2024";

fn http() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?)
}

/// A member of staff logged in to the centre's API.
pub struct CentreClient {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
    /// The login answer (`staff`, `department_name`, `csrf_token`, `expires_at`).
    pub me: Value,
}

impl CentreClient {
    /// Logs in with `login` and [`STAFF_PASSWORD`], keeping the session cookie.
    pub async fn login(server: &ServerProcess, login: &str) -> Result<CentreClient> {
        let http = http()?;
        let resp = http
            .post(format!("{}/v1/centre/login", server.url))
            .json(&json!({ "login": login, "password": STAFF_PASSWORD }))
            .send()
            .await?;
        let status = resp.status();
        let cookie = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|pair| pair.starts_with(&format!("{SESSION_COOKIE}=")))
            .map(str::to_string);
        let me: Value =
            read_json(status, resp.text().await?).with_context(|| format!("{login} logging in"))?;
        let cookie = cookie.ok_or_else(|| anyhow!("{login}: the login set no session cookie"))?;
        let csrf = me["csrf_token"]
            .as_str()
            .ok_or_else(|| anyhow!("{login}: the login answer has no csrf_token"))?
            .to_string();
        Ok(CentreClient {
            http,
            base: server.url.clone(),
            cookie,
            csrf,
            me,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await?;
        let status = resp.status();
        read_json(status, resp.text().await?).with_context(|| format!("GET {path}"))
    }

    /// A GET whose answer is a file; its status and bytes.
    pub async fn get_bytes(&self, path: &str) -> Result<(StatusCode, Vec<u8>)> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await?;
        Ok((resp.status(), resp.bytes().await?.to_vec()))
    }

    /// A POST as the dashboard sends it: JSON, with the session's CSRF token.
    /// The answer's status and body, whatever the status.
    pub async fn post(&self, path: &str, body: &Value) -> Result<(StatusCode, Value)> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header(CSRF_HEADER, &self.csrf)
            .json(body)
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    }

    /// `POST /v1/centre/cases/{id}/{action}`, which must succeed; the answer.
    pub async fn act(&self, case_id: &str, action: &str, body: Value) -> Result<Value> {
        let (status, answer) = self
            .post(&format!("/v1/centre/cases/{case_id}/{action}"), &body)
            .await?;
        if !status.is_success() {
            bail!("{action} on {case_id}: {status} {answer}");
        }
        Ok(answer)
    }

    /// The queue rows (`GET /v1/centre/cases?{query}`).
    pub async fn queue(&self, query: &str) -> Result<Vec<Value>> {
        let page = self.get(&format!("/v1/centre/cases?{query}")).await?;
        page["cases"]
            .as_array()
            .cloned()
            .ok_or_else(|| anyhow!("the queue answer has no cases: {page}"))
    }

    /// The queue row of `case_id` under `query`, if it is there.
    pub async fn queue_row(&self, query: &str, case_id: &str) -> Result<Option<Value>> {
        Ok(self
            .queue(query)
            .await?
            .into_iter()
            .find(|row| row["case_id"] == case_id))
    }

    /// The case page: `case`, `desk`, `timeline`, `photos`, `actions`.
    pub async fn case(&self, case_id: &str) -> Result<Value> {
        self.get(&format!("/v1/centre/cases/{case_id}")).await
    }

    /// The buttons the case page shows this person now.
    pub async fn actions(&self, case_id: &str) -> Result<Vec<String>> {
        let page = self.case(case_id).await?;
        Ok(page["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect())
    }

    /// The supervisor's figures (`GET /v1/figures?{query}`).
    pub async fn figures(&self, query: &str) -> Result<Value> {
        self.get(&format!("/v1/figures?{query}")).await
    }
}

fn read_json(status: StatusCode, text: String) -> Result<Value> {
    if !status.is_success() {
        bail!("{status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))
}

/// Sets up the centre on `server`: a department serving `unit`, and a
/// dispatcher and a supervisor of `unit` and the department's handler, all
/// with [`STAFF_PASSWORD`]. Returns the department's id.
pub fn staff_the_centre(server: &ServerProcess, unit: &str, department: &str) -> Result<String> {
    let created: Value = serde_json::from_str(&server.admin(&[
        "admin",
        "create-department",
        "--name",
        department,
        "--unit",
        unit,
        "--json",
    ])?)?;
    let department_id = created["id"]
        .as_str()
        .ok_or_else(|| anyhow!("create-department printed no id: {created}"))?
        .to_string();
    let staff: [(&str, &str, &str, &str, &str); 3] = [
        ("dispatcher", "王调度", "dispatcher", "--unit", unit),
        (
            "handler",
            "市政小李",
            "department",
            "--department",
            &department_id,
        ),
        ("supervisor", "赵督查", "supervisor", "--unit", unit),
    ];
    for (login, name, role, scope, value) in staff {
        server.admin_with_env(
            &[("GRIDCASE_STAFF_PASSWORD", STAFF_PASSWORD)],
            &[
                "admin",
                "create-staff",
                "--login",
                login,
                "--name",
                name,
                "--role",
                role,
                scope,
                value,
            ],
        )?;
    }
    Ok(department_id)
}

/// What the resident's phone got back: the status and the HTML.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub html: String,
}

/// The resident opens the rating link on their phone.
pub async fn open_rating_page(url: &str) -> Result<Page> {
    let resp = http()?.get(url).send().await?;
    Ok(Page {
        status: resp.status(),
        html: resp.text().await?,
    })
}

/// The resident taps a face on the rating page (the page's form, posted
/// back to its own address).
pub async fn rate_on_page(url: &str, face: &str, comment: &str) -> Result<Page> {
    let body = format!(
        "lang=zh&comment={}&face={}",
        form_encode(comment),
        form_encode(face)
    );
    let resp = http()?
        .post(url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    Ok(Page {
        status: resp.status(),
        html: resp.text().await?,
    })
}

/// `application/x-www-form-urlencoded`, as a browser encodes a field.
fn form_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_fields_are_encoded_like_a_browser() {
        assert_eq!(super::form_encode("a b&c=d"), "a+b%26c%3Dd");
        assert_eq!(super::form_encode("好"), "%E5%A5%BD");
    }
}
