//! Resources and resource roles: lists, create forms, a role's own form with its access
//! mode toggles; the upstream password is write-only (never shown back).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query as Q, State};
use axum::response::Response;
use axum::routing::{get, post};

use super::people::error_page;
use super::signin::Viewer;
use super::{ConsoleState, Fields, Nav, Query, back, delete_via, page};
use crate::admin::{ApiError, Body, catalog, resource_roles};
use crate::api::{NewResource, NewResourceRole, ResourceRolePatch};
use crate::model::{AccessModes, ResourceRoleView, ResourceView, TlsMode};

pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/ui/resources", get(list).post(create_resource))
        .route("/ui/resources/{name}/delete", post(delete_resource))
        .route("/ui/resource-roles", post(create_role))
        .route(
            "/ui/resource-roles/{name}",
            get(show_role).post(update_role),
        )
        .route("/ui/resource-roles/{name}/delete", post(delete_role))
}

/// `native, web, runbooks` as enabled.
pub fn modes_text(m: &AccessModes) -> String {
    let on: Vec<&str> = [
        ("native", m.native),
        ("web", m.web),
        ("runbooks", m.runbooks),
    ]
    .into_iter()
    .filter(|(_, on)| *on)
    .map(|(n, _)| n)
    .collect();
    if on.is_empty() {
        "none".into()
    } else {
        on.join(", ")
    }
}

fn modes_from(f: &Fields) -> AccessModes {
    AccessModes {
        native: f.checked("mode_native"),
        web: f.checked("mode_web"),
        runbooks: f.checked("mode_runbooks"),
    }
}

struct ResourceRow {
    name: String,
    protocol: &'static str,
    address: String,
    tls: &'static str,
    managed: bool,
}

struct RoleRow {
    name: String,
    resource: String,
    database: String,
    user: String,
    modes: String,
    groups: String,
    managed: bool,
}

#[derive(Template)]
#[template(path = "resources.html")]
struct ResourcesPage {
    nav: Nav,
    resources: Vec<ResourceRow>,
    roles: Vec<RoleRow>,
    tls_modes: &'static [&'static str],
}

async fn list(State(s): State<ConsoleState>, viewer: Viewer, Q(q): Q<Query>) -> Response {
    let nav = viewer.nav("resources", &q);
    let api = || axum::extract::State(s.api.clone());
    let listed = async {
        let resources = catalog::list_resources(api(), viewer.caller.clone())
            .await?
            .0;
        let roles = resource_roles::list(api(), viewer.caller.clone()).await?.0;
        Ok::<_, ApiError>((resources, roles))
    };
    let (resources, roles): (Vec<ResourceView>, Vec<ResourceRoleView>) = match listed.await {
        Ok(l) => l,
        Err(e) => return error_page(nav, e),
    };
    page(&ResourcesPage {
        nav,
        resources: resources
            .into_iter()
            .map(|r| ResourceRow {
                protocol: r.protocol.as_str(),
                tls: r.tls.as_str(),
                name: r.resource.name,
                address: r.resource.address,
                managed: r.managed,
            })
            .collect(),
        roles: roles
            .into_iter()
            .map(|r| RoleRow {
                modes: modes_text(&r.access_modes),
                groups: r.allowed_groups.join(", "),
                name: r.role.name,
                resource: r.role.resource,
                database: r.role.database,
                user: r.role.user,
                managed: r.managed,
            })
            .collect(),
        tls_modes: TlsMode::ALL,
    })
}

async fn create_resource(State(s): State<ConsoleState>, viewer: Viewer, f: Fields) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let done = async {
        let name = f.get("name");
        let new = NewResource {
            name: name.clone(),
            protocol: f.get("protocol").parse().map_err(ApiError::invalid)?,
            address: f.get("address"),
            tls: Some(f.get("tls").parse().map_err(ApiError::invalid)?),
        };
        let _ = catalog::create_resource(
            axum::extract::State(s.api.clone()),
            viewer.caller.clone(),
            Body(new),
        )
        .await?;
        Ok(format!("resource {name} created"))
    };
    back("/ui/resources", done.await)
}

async fn delete_resource(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(name): Path<String>,
    f: Fields,
) -> Response {
    delete_via(
        &s,
        &viewer,
        &f,
        ("resource", name, "/ui/resources"),
        catalog::delete_resource,
    )
    .await
}

async fn create_role(State(s): State<ConsoleState>, viewer: Viewer, f: Fields) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let name = f.get("name");
    let new = NewResourceRole {
        name: name.clone(),
        resource: f.get("resource"),
        database: f.get("database"),
        user: f.get("user"),
        password: f.some("password"),
        allowed_groups: f.list("groups"),
        access_modes: Some(modes_from(&f)),
        forward_options: None,
    };
    let done = resource_roles::create(
        axum::extract::State(s.api.clone()),
        viewer.caller.clone(),
        Body(new),
    )
    .await
    .map(|_| format!("resource role {name} created"));
    back("/ui/resources", done)
}

#[derive(Template)]
#[template(path = "role.html")]
struct RolePage {
    nav: Nav,
    role: ResourceRoleView,
    groups: String,
    modes: String,
}

async fn show_role(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Q(q): Q<Query>,
) -> Response {
    let nav = viewer.nav("resources", &q);
    match resource_roles::show(
        axum::extract::State(s.api.clone()),
        viewer.caller.clone(),
        Path(name),
    )
    .await
    {
        Ok(r) => page(&RolePage {
            nav,
            groups: r.0.allowed_groups.join(", "),
            modes: modes_text(&r.0.access_modes),
            role: r.0,
        }),
        Err(e) => error_page(nav, e),
    }
}

async fn update_role(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(name): Path<String>,
    f: Fields,
) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let patch = ResourceRolePatch {
        database: f.some("database"),
        user: f.some("user"),
        password: f.some("password"),
        access_modes: Some(modes_from(&f)),
        ..ResourceRolePatch::default()
    };
    let done = resource_roles::patch(
        axum::extract::State(s.api.clone()),
        viewer.caller.clone(),
        Path(name.clone()),
        Body(patch),
    )
    .await
    .map(|_| "saved".to_owned());
    back(
        &format!("/ui/resource-roles/{}", super::encode(&name)),
        done,
    )
}

async fn delete_role(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(name): Path<String>,
    f: Fields,
) -> Response {
    delete_via(
        &s,
        &viewer,
        &f,
        ("resource role", name, "/ui/resources"),
        resource_roles::remove,
    )
    .await
}
