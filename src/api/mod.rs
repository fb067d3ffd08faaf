//! The read-only status API (JSON). Handlers are a few lines over `views`, which builds each
//! answer from committed Raft state and this controller's live observation.
//!
//! `GET /healthz`, `/api/v1/status`, `/api/v1/commits`, `/api/v1/commits/{sha}`, `/api/v1/pods`,
//! `/api/v1/pods/{namespace}/{name}/placement`, `/api/v1/replicationcontrollers`,
//! `/api/v1/services`, `/api/v1/endpoints`, `/api/v1/nodes`. Other methods on these
//! paths answer 405; unknown paths 404, both with a JSON error.

pub mod placement;
pub mod views;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::controller::Controller;

type Ctl = State<Arc<Controller>>;

pub fn router(ctl: Arc<Controller>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"ok": true})) }))
        .route(
            "/api/v1/status",
            get(|State(c): Ctl| async move { Json(views::status(&c)) }),
        )
        .route(
            "/api/v1/commits",
            get(|State(c): Ctl| async move { Json(views::commits(&c)) }),
        )
        .route("/api/v1/commits/{sha}", get(commit))
        .route(
            "/api/v1/pods",
            get(|State(c): Ctl| async move { Json(views::pods(&c)) }),
        )
        .route(
            "/api/v1/pods/{namespace}/{name}/placement",
            get(pod_placement),
        )
        .route(
            "/api/v1/replicationcontrollers",
            get(|State(c): Ctl| async move { Json(views::replication_controllers(&c)) }),
        )
        .route(
            "/api/v1/services",
            get(|State(c): Ctl| async move { Json(views::services(&c)) }),
        )
        .route(
            "/api/v1/endpoints",
            get(|State(c): Ctl| async move { Json(views::endpoints(&c)) }),
        )
        .route(
            "/api/v1/nodes",
            get(|State(c): Ctl| async move { Json(views::nodes(&c)) }),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such path") })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "the status API is read-only: use GET",
            )
        })
        .with_state(ctl)
}

async fn commit(State(c): Ctl, Path(sha): Path<String>) -> Response {
    match views::commit(&c, &sha) {
        Ok(Some(detail)) => Json(detail).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            &format!("no commit {sha} in history"),
        ),
        Err(msg) => error(StatusCode::BAD_REQUEST, &msg),
    }
}

async fn pod_placement(State(c): Ctl, Path((namespace, name)): Path<(String, String)>) -> Response {
    match placement::explain(&c, &namespace, &name) {
        Some(p) => Json(p).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            &format!("no pod {namespace}/{name} in the desired state"),
        ),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": message, "status": status.as_u16()})),
    )
        .into_response()
}
