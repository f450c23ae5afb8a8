//! People in tests: a person made in the store, signed in over HTTP, whose
//! requests carry their session cookie, the CSRF token and the server's own
//! `Origin`, as the dashboard's would.

use crate::TestServer;
use chronos_proto::Role;
use chronos_server::account::passwords;
use chronos_server::account::people::NewUser;
use reqwest::Method;
use serde_json::{Value, json};

/// The password every test person gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// A signed-in person.
#[derive(Clone)]
pub struct Person {
    pub email: String,
    pub cookie: String,
    pub csrf: String,
    /// Sent as `Chronos-Organization` when set.
    pub org: Option<String>,
    /// Sent as `Origin`: the server's address, unless told otherwise.
    pub origin: String,
    base: String,
    http: reqwest::Client,
}

/// A response: status, headers, and the body as JSON (`null` when empty).
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn pair(&self) -> (u16, Value) {
        (self.status, self.body.clone())
    }
}

pub async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("answer {status} is not JSON ({e}): {text:?}"))
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// The `name=value` of a `Set-Cookie` answer.
pub fn cookie_of(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_string())
        .find(|c| c.starts_with("chronos_session="))
}

impl TestServer {
    /// A person with `role` in the organization `slug`, made in the store
    /// (with [`PASSWORD`]), then signed in over HTTP.
    pub async fn person(&self, email: &str, slug: &str, role: Role) -> Person {
        let org = self
            .store
            .organization_by_slug(slug)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no organization {slug}"));
        let user = match self
            .store
            .user_by_email(&email.to_lowercase())
            .await
            .unwrap()
        {
            Some(user) => user,
            None => self
                .store
                .create_user(NewUser {
                    id: uuid::Uuid::now_v7(),
                    email: email.to_string(),
                    name: None,
                    password_hash: passwords::hash(PASSWORD).unwrap(),
                })
                .await
                .unwrap()
                .unwrap(),
        };
        self.store
            .add_membership(org.id, user.id, role)
            .await
            .unwrap();
        self.login(email, PASSWORD).await
    }

    /// Signs in; panics unless the server says 200.
    pub async fn login(&self, email: &str, password: &str) -> Person {
        let a = self.try_login(email, password).await;
        assert_eq!(a.status, 200, "{}", a.body);
        Person {
            email: email.to_string(),
            cookie: cookie_of(&a.headers).expect("a session cookie"),
            csrf: a.body["csrf_token"].as_str().unwrap().to_string(),
            org: None,
            origin: self.base.clone(),
            base: self.base.clone(),
            http: self.http.clone(),
        }
    }

    pub async fn try_login(&self, email: &str, password: &str) -> Answer {
        let resp = self
            .http
            .post(self.url("/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        answer(resp).await
    }

    /// A request with no credentials at all.
    pub async fn anonymous(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.unwrap()).await
    }
}

impl Person {
    /// The same person acting for the organization `slug`.
    pub fn in_org(&self, slug: &str) -> Person {
        Person {
            org: Some(slug.to_string()),
            ..self.clone()
        }
    }

    /// The same person in a browser at `origin` (the `--public-url` a proxy
    /// serves the server at).
    pub fn at(&self, origin: &str) -> Person {
        Person {
            origin: origin.to_string(),
            ..self.clone()
        }
    }

    /// A request as the dashboard would send it.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.send_with(method, path, body, |r| r).await
    }

    /// [`Person::send`], with the request changed by `edit` first (say, a
    /// header taken away).
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        edit: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("origin", &self.origin);
        if !self.csrf.is_empty() {
            request = request.header("x-csrf-token", &self.csrf);
        }
        if let Some(org) = &self.org {
            request = request.header("chronos-organization", org);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(edit(request).send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, None).await.pair()
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(Method::POST, path, Some(body)).await.pair()
    }
}
