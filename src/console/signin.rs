//! Signing in to the console: a user name with the Portcullis password (checked against
//! the stored SCRAM verifier) or a personal access token, under the same lockout as the
//! native listeners and the API. A sign-in is a server-side record behind an opaque id in
//! a cookie (`HttpOnly`, `SameSite=Strict`, `Secure` when configured), ended by sign-out,
//! an idle or absolute timeout, or the user losing the right to sign in; each one carries
//! the token that every state-changing form and htmx request must send back (CSRF).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use dashmap::DashMap;
use sha2::{Digest, Sha256};

use super::{ConsoleState, Fields, Nav, Query, page};
use crate::admin::{Caller, ClientAddr};
use crate::auth::Identity;
use crate::model::{Role, Status};

const COOKIE: &str = "portcullis_console";

/// The console's sign-ins, by the SHA-256 of their cookie id.
#[derive(Default)]
pub struct Signins {
    live: DashMap<String, Arc<Signin>>,
}

struct Signin {
    identity: Identity,
    csrf: String,
    started: Instant,
    last: Mutex<Instant>,
}

fn key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/ui/login", get(form).post(sign_in))
        .route("/ui/logout", post(sign_out))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    name: String,
    error: Option<String>,
    notice: Option<String>,
}

async fn form(axum::extract::Query(q): axum::extract::Query<Query>) -> Response {
    page(&LoginPage {
        name: String::new(),
        error: q.get("error"),
        notice: q.get("notice"),
    })
}

async fn sign_in(
    State(s): State<ConsoleState>,
    ClientAddr(client): ClientAddr,
    fields: Fields,
) -> Response {
    let (name, secret) = (fields.get("name"), fields.get("secret"));
    let refused = |error: &str| {
        let page = page(&LoginPage {
            name: name.clone(),
            error: Some(error.to_owned()),
            notice: None,
        });
        (StatusCode::UNAUTHORIZED, page).into_response()
    };
    let gw = &s.api;
    let identity = match crate::admin::login::prove(gw, &name, &secret, client).await {
        Ok(identity) => identity,
        Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => {
            return refused("too many failed sign-ins: try again later");
        }
        Err(_) => return refused("wrong user name, password or token"),
    };
    let id = hex::encode(rand::random::<[u8; 32]>());
    let now = Instant::now();
    let signin = Signin {
        identity,
        csrf: hex::encode(rand::random::<[u8; 24]>()),
        started: now,
        last: Mutex::new(now),
    };
    s.signins.live.insert(key(&id), Arc::new(signin));
    let secure = if gw.control.config().console.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{secure}");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/ui/")).into_response()
}

async fn sign_out(State(s): State<ConsoleState>, viewer: Viewer, fields: Fields) -> Response {
    if let Some(refused) = viewer.refused(&fields) {
        return refused;
    }
    s.signins.live.remove(&viewer.key);
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    let to = Redirect::to("/ui/login?notice=Signed%20out");
    ([(header::SET_COOKIE, cookie)], to).into_response()
}

/// The signed-in user of a request: the API's caller (same permission checks), and the
/// form token of the sign-in.
pub struct Viewer {
    pub caller: Caller,
    pub csrf: String,
    key: String,
    /// The request carried the form token in `X-CSRF-Token` (htmx).
    header_token: bool,
}

impl Viewer {
    /// The page frame for `section`, with the notice or error a redirect carried.
    pub fn nav(&self, section: &'static str, q: &Query) -> Nav {
        let role = self.caller.0.role;
        Nav {
            user: self.caller.name().to_owned(),
            role: role.as_str(),
            admin: role == Role::Admin,
            reader: self.caller.is_reader(),
            csrf: self.csrf.clone(),
            section,
            notice: q.get("notice"),
            error: q.get("error"),
        }
    }

    /// A state-changing request must carry the sign-in's form token (a form field, or
    /// the htmx header): the refusal when it does not.
    pub fn refused(&self, fields: &Fields) -> Option<Response> {
        let sent = fields.get("csrf");
        let ok = self.header_token
            || (!sent.is_empty()
                && crate::auth::constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()));
        let why = "the form is stale or forged: reload the page";
        (!ok).then(|| (StatusCode::FORBIDDEN, why).into_response())
    }
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    let prefix = format!("{COOKIE}=");
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(&prefix).map(str::to_owned))
}

impl FromRequestParts<ConsoleState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &ConsoleState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/ui/login").into_response();
        let id = cookie(&parts.headers).ok_or_else(to_login)?;
        let key = key(&id);
        let signin = s
            .signins
            .live
            .get(&key)
            .map(|e| Arc::clone(&e))
            .ok_or_else(to_login)?;
        let limits = s.api.control.config().console.clone();
        let now = Instant::now();
        let idle = signin.last.lock().map(|l| now - *l).unwrap_or_default();
        let snapshot = s.api.control.snapshot();
        let expired = idle > limits.idle_timeout || now - signin.started > limits.absolute_timeout;
        let user = snapshot
            .users
            .get(signin.identity.user())
            .filter(|u| u.status == Status::Active && !expired)
            .filter(|_| crate::auth::still_valid(&snapshot, &signin.identity));
        let Some(user) = user else {
            s.signins.live.remove(&key);
            let to = "/ui/login?notice=Your%20sign-in%20ended";
            return Err(Redirect::to(to).into_response());
        };
        if let Ok(mut last) = signin.last.lock() {
            *last = now;
        }
        let header_token = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| crate::auth::constant_time_eq(t.as_bytes(), signin.csrf.as_bytes()));
        Ok(Viewer {
            caller: Caller(Arc::clone(user), signin.identity.clone()),
            csrf: signin.csrf.clone(),
            key,
            header_token,
        })
    }
}
