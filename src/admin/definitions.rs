//! What the admin API does with a rule stored whole under its name (guardrails, masking
//! rules), written once: find, check against what exists, create, replace, delete, each
//! change recorded. The handlers of each kind are thin and carry the OpenAPI text.

use super::{ApiError, ApiState, Caller, changed, not_managed};
use crate::model::Known;
use crate::store::{Result as StoreResult, Store};

/// A kind of named rule.
pub trait Definition: serde::Serialize + Sized + Send + Sync {
    /// What one is called in messages (`guardrail`).
    const WHAT: &'static str;
    fn name(&self) -> &str;
    fn problems(&self, known: &Known<'_>) -> Vec<(&'static str, String)>;
    /// Every one, with whether the config declares it, in evaluation order.
    fn list(store: &Store) -> impl Future<Output = StoreResult<Vec<(Self, bool)>>> + Send;
    fn put(&self, store: &Store, create: bool) -> impl Future<Output = StoreResult<()>> + Send;
    fn delete(store: &Store, name: &str) -> impl Future<Output = StoreResult<()>> + Send;
}

/// The rule named `name`, and whether the config declares it.
pub async fn find<T: Definition>(s: &ApiState, name: &str) -> Result<(T, bool), ApiError> {
    T::list(&s.control.store)
        .await?
        .into_iter()
        .find(|(r, _)| r.name() == name)
        .ok_or_else(|| ApiError::not_found(format!("{} `{name}` not found", T::WHAT)))
}

/// The rule, checked against the resource roles and groups that exist.
fn checked<T: Definition>(s: &ApiState, rule: T) -> Result<T, ApiError> {
    let snapshot = s.control.snapshot();
    let known = Known {
        resource_role: &|r| snapshot.resource_roles.contains_key(r),
        group: &|g| snapshot.groups.contains(g),
        approvers: &|_| 0,
    };
    let problems: Vec<String> = rule
        .problems(&known)
        .into_iter()
        .map(|(field, m)| format!("{field}: {m}"))
        .collect();
    if problems.is_empty() {
        Ok(rule)
    } else {
        Err(ApiError::invalid(problems.join("; ")))
    }
}

fn object<T: Definition>(name: &str) -> String {
    format!("{}/{name}", T::WHAT.replace(' ', "_"))
}

fn action<T: Definition>(verb: &str) -> String {
    format!("{}.{verb}", T::WHAT.replace(' ', "_"))
}

/// Creates a rule (admin).
pub async fn create<T: Definition>(s: &ApiState, caller: &Caller, new: T) -> Result<T, ApiError> {
    caller.require_admin()?;
    let rule = checked(s, new)?;
    rule.put(&s.control.store, true).await?;
    let (object, action) = (object::<T>(rule.name()), action::<T>("create"));
    changed(s, caller, &action, &object, None::<&()>, Some(&rule)).await?;
    Ok(rule)
}

/// Replaces a rule (admin; not one the config declares).
pub async fn replace<T: Definition>(
    s: &ApiState,
    caller: &Caller,
    name: &str,
    new: T,
) -> Result<T, ApiError> {
    caller.require_admin()?;
    let (before, managed) = find::<T>(s, name).await?;
    not_managed(s, managed, &format!("{} `{name}`", T::WHAT))?;
    if new.name() != name {
        return Err(ApiError::invalid(format!("a {} keeps its name", T::WHAT)));
    }
    let rule = checked(s, new)?;
    rule.put(&s.control.store, false).await?;
    let (object, action) = (object::<T>(name), action::<T>("update"));
    changed(s, caller, &action, &object, Some(&before), Some(&rule)).await?;
    Ok(rule)
}

/// Deletes a rule (admin; not one the config declares).
pub async fn delete<T: Definition>(
    s: &ApiState,
    caller: &Caller,
    name: &str,
) -> Result<(), ApiError> {
    caller.require_admin()?;
    let (before, managed) = find::<T>(s, name).await?;
    not_managed(s, managed, &format!("{} `{name}`", T::WHAT))?;
    T::delete(&s.control.store, name).await?;
    let (object, action) = (object::<T>(name), action::<T>("delete"));
    changed(s, caller, &action, &object, Some(&before), None::<&()>).await
}

impl Definition for crate::model::Guardrail {
    const WHAT: &'static str = "guardrail";
    fn name(&self) -> &str {
        &self.name
    }
    fn problems(&self, known: &Known<'_>) -> Vec<(&'static str, String)> {
        crate::model::Guardrail::problems(self, known)
    }
    async fn list(store: &Store) -> StoreResult<Vec<(Self, bool)>> {
        let all = store.list_guardrails().await?;
        Ok(all.into_iter().map(|v| (v.rule, v.managed)).collect())
    }
    async fn put(&self, store: &Store, create: bool) -> StoreResult<()> {
        store.put_guardrail(self, false, create).await
    }
    async fn delete(store: &Store, name: &str) -> StoreResult<()> {
        store.delete_guardrail(name).await
    }
}

impl Definition for crate::model::MaskingRule {
    const WHAT: &'static str = "masking rule";
    fn name(&self) -> &str {
        &self.name
    }
    fn problems(&self, known: &Known<'_>) -> Vec<(&'static str, String)> {
        crate::model::MaskingRule::problems(self, known)
    }
    async fn list(store: &Store) -> StoreResult<Vec<(Self, bool)>> {
        let all = store.list_masking().await?;
        Ok(all.into_iter().map(|v| (v.rule, v.managed)).collect())
    }
    async fn put(&self, store: &Store, create: bool) -> StoreResult<()> {
        store.put_masking(self, false, create).await
    }
    async fn delete(store: &Store, name: &str) -> StoreResult<()> {
        store.delete_masking(name).await
    }
}

/// The admin API's handlers of a kind of rule — list, show, create, replace, delete, each
/// with its OpenAPI text — written once: `$Type` (a `Definition`), its `$View`, the
/// collection `$path` and item `$item` paths, the `$tag`, what one is called, and how its
/// name parameter is described.
macro_rules! handlers {
    ($Type:ident, $View:ident, path = $path:literal, item = $item:literal, tag = $tag:literal,
     what = $what:literal, name = $name:literal) => {
        pub fn routes() -> ::utoipa_axum::router::OpenApiRouter<$crate::admin::ApiState> {
            ::utoipa_axum::router::OpenApiRouter::new()
                .routes(::utoipa_axum::routes!(list, create))
                .routes(::utoipa_axum::routes!(show, replace, delete))
        }

        fn view((rule, managed): ($Type, bool)) -> $View {
            $View { rule, managed }
        }

        #[doc = concat!("The ", $what, "s, in the order they are evaluated.")]
        #[utoipa::path(get, path = $path, tag = $tag,
            responses((status = 200, body = Vec<$View>), $crate::admin::Failures))]
        pub(crate) async fn list(
            ::axum::extract::State(s): ::axum::extract::State<$crate::admin::ApiState>,
            _caller: $crate::admin::Caller,
        ) -> Result<::axum::Json<Vec<$View>>, $crate::admin::ApiError> {
            let all = <$Type as $crate::admin::definitions::Definition>::list(&s.control.store).await?;
            Ok(::axum::Json(all.into_iter().map(view).collect()))
        }

        #[utoipa::path(get, path = $item, tag = $tag,
            params(("name" = String, Path, description = $name)),
            responses((status = 200, body = $View), $crate::admin::Failures))]
        pub(crate) async fn show(
            ::axum::extract::State(s): ::axum::extract::State<$crate::admin::ApiState>,
            _caller: $crate::admin::Caller,
            ::axum::extract::Path(name): ::axum::extract::Path<String>,
        ) -> Result<::axum::Json<$View>, $crate::admin::ApiError> {
            Ok(::axum::Json(view($crate::admin::definitions::find(&s, &name).await?)))
        }

        #[doc = concat!("Creates a ", $what, " (admin). Live sessions keep the rules they started with; new sessions get it.")]
        #[utoipa::path(post, path = $path, tag = $tag,
            request_body = $Type,
            responses((status = 201, body = $View), $crate::admin::Failures))]
        pub(crate) async fn create(
            ::axum::extract::State(s): ::axum::extract::State<$crate::admin::ApiState>,
            caller: $crate::admin::Caller,
            $crate::admin::Body(new): $crate::admin::Body<$Type>,
        ) -> Result<(::axum::http::StatusCode, ::axum::Json<$View>), $crate::admin::ApiError> {
            let rule = $crate::admin::definitions::create(&s, &caller, new).await?;
            Ok((::axum::http::StatusCode::CREATED, ::axum::Json(view((rule, false)))))
        }

        #[doc = concat!("Replaces a ", $what, " (admin; not one the config declares).")]
        #[utoipa::path(put, path = $item, tag = $tag,
            params(("name" = String, Path, description = $name)),
            request_body = $Type,
            responses((status = 200, body = $View), $crate::admin::Failures))]
        pub(crate) async fn replace(
            ::axum::extract::State(s): ::axum::extract::State<$crate::admin::ApiState>,
            caller: $crate::admin::Caller,
            ::axum::extract::Path(name): ::axum::extract::Path<String>,
            $crate::admin::Body(new): $crate::admin::Body<$Type>,
        ) -> Result<::axum::Json<$View>, $crate::admin::ApiError> {
            let rule = $crate::admin::definitions::replace(&s, &caller, &name, new).await?;
            Ok(::axum::Json(view((rule, false))))
        }

        #[doc = concat!("Deletes a ", $what, " (admin; not one the config declares).")]
        #[utoipa::path(delete, path = $item, tag = $tag,
            params(("name" = String, Path, description = $name)),
            responses((status = 204), $crate::admin::Failures))]
        pub(crate) async fn delete(
            ::axum::extract::State(s): ::axum::extract::State<$crate::admin::ApiState>,
            caller: $crate::admin::Caller,
            ::axum::extract::Path(name): ::axum::extract::Path<String>,
        ) -> Result<::axum::http::StatusCode, $crate::admin::ApiError> {
            $crate::admin::definitions::delete::<$Type>(&s, &caller, &name).await?;
            Ok(::axum::http::StatusCode::NO_CONTENT)
        }
    };
}
pub(crate) use handlers;
