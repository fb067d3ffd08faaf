//! The Raft routes every member serves, under `/raft/...`: the RPCs openraft sends
//! (`http_client.rs`), the bootstrap greeting, and the admin routes of `berth cluster`.
//!
//! [`raft_router`] returns a plain `axum::Router` so the controller merges it into its one API
//! listener (one port per member); [`serve_raft`] serves it alone (`--raft-listen`). Every route
//! requires the cluster token (`token.rs`): a request without it or with another one gets `401`
//! before its body is read, and is logged without the token.
//!
//! Handlers are a few lines each: decode, call openraft or `membership`, encode.

use std::future::Future;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest,
};

use super::contact::LeaderContact;
use super::membership::{self, MembershipError};
use super::node::RaftNode;
use super::partition::Partition;
use super::token::ClusterToken;
use super::types::{NodeId, Raft, TypeConfig};
use super::wire::{
    AddMember, ChunkHeader, Hello, APPEND_PATH, CHUNK_HEADER, HELLO_PATH, MEMBERS_PATH,
    PROTOCOL_VERSION, SNAPSHOT_PATH, VOTE_PATH,
};

/// Largest RPC body accepted: an AppendEntries batch of large commands (a whole desired state
/// per `Accept`). A larger batch is answered `413` and openraft retries it in smaller batches.
pub const MAX_RPC_BODY: usize = 256 << 20;

#[derive(Clone)]
struct Rpc {
    raft: Raft,
    id: NodeId,
    cluster_name: String,
    contact: LeaderContact,
}

#[derive(Clone)]
struct Auth {
    token: ClusterToken,
    partition: Partition,
}

/// The `/raft/...` routes of `node`, guarded by `token`.
pub fn raft_router(node: &RaftNode, token: ClusterToken) -> Router {
    raft_router_with(node, token, Router::new())
}

/// [`raft_router`] with `extra` routes (of the controller) behind the same token check.
pub fn raft_router_with(node: &RaftNode, token: ClusterToken, extra: Router) -> Router {
    let rpc = Rpc {
        raft: node.raft().clone(),
        id: node.id(),
        cluster_name: node.cluster_name().to_string(),
        contact: node.contact(),
    };
    let auth = Auth {
        token,
        partition: node.partition(),
    };
    Router::new()
        .route(APPEND_PATH, post(append))
        .route(VOTE_PATH, post(vote))
        .route(SNAPSHOT_PATH, post(snapshot))
        .route(HELLO_PATH, get(hello))
        .route(MEMBERS_PATH, get(list_members).post(add_member))
        .route(&format!("{MEMBERS_PATH}/{{id}}"), delete(remove_member))
        .layer(DefaultBodyLimit::max(MAX_RPC_BODY))
        .with_state(rpc)
        .merge(extra)
        .route_layer(middleware::from_fn_with_state(auth, authenticate))
}

/// Serves `router` on `listener` until `shutdown` resolves (`--raft-listen`).
pub async fn serve_raft(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn authenticate(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes().strip_prefix(b"Bearer ").unwrap_or(b""));
    let verdict = match presented {
        None => Err("missing"),
        Some(token) if auth.token.verify(token) => Ok(()),
        Some(_) => Err("wrong"),
    };
    if let Err(why) = verdict {
        tracing::warn!(
            method = %request.method(),
            path = %request.uri().path(),
            "raft request refused: {why} cluster token"
        );
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if auth.partition.is_cut() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    next.run(request).await
}

async fn append(
    State(rpc): State<Rpc>,
    Json(req): Json<AppendEntriesRequest<TypeConfig>>,
) -> impl IntoResponse {
    let leader_commit = req.leader_commit.map(|l| l.index);
    let answer = rpc.raft.append_entries(req).await;
    if matches!(answer, Ok(AppendEntriesResponse::Success)) {
        rpc.contact.record(leader_commit);
    }
    Json(answer)
}

async fn vote(State(rpc): State<Rpc>, Json(req): Json<VoteRequest<NodeId>>) -> impl IntoResponse {
    Json(rpc.raft.vote(req).await)
}

async fn snapshot(State(rpc): State<Rpc>, headers: HeaderMap, data: Bytes) -> Response {
    let Some(Ok(chunk)) = headers
        .get(CHUNK_HEADER)
        .map(|v| ChunkHeader::decode(v.as_bytes()))
    else {
        return (
            StatusCode::BAD_REQUEST,
            "bad or missing snapshot chunk header",
        )
            .into_response();
    };
    let req = InstallSnapshotRequest::<TypeConfig> {
        vote: chunk.vote,
        meta: chunk.meta,
        offset: chunk.offset,
        data: data.into(),
        done: chunk.done,
    };
    Json(rpc.raft.install_snapshot(req).await).into_response()
}

async fn hello(State(rpc): State<Rpc>) -> impl IntoResponse {
    Json(Hello {
        id: rpc.id,
        cluster_name: rpc.cluster_name,
        initialized: rpc.raft.is_initialized().await.unwrap_or(false),
        protocol: PROTOCOL_VERSION,
        berth_version: env!("CARGO_PKG_VERSION").to_string(),
    })
}

async fn list_members(State(rpc): State<Rpc>) -> impl IntoResponse {
    Json(membership::list(&rpc.raft))
}

async fn add_member(State(rpc): State<Rpc>, Json(add): Json<AddMember>) -> Response {
    let catch_up = Duration::from_millis(add.catch_up_ms);
    membership::add(&rpc.raft, add.id, add.url, catch_up)
        .await
        .map(Json)
        .into_response()
}

async fn remove_member(State(rpc): State<Rpc>, Path(id): Path<NodeId>) -> Response {
    membership::remove(&rpc.raft, id)
        .await
        .map(Json)
        .into_response()
}

impl IntoResponse for MembershipError {
    fn into_response(self) -> Response {
        let status = match self {
            MembershipError::NotLeader { .. } => StatusCode::MISDIRECTED_REQUEST,
            MembershipError::AlreadyMember(_) | MembershipError::LastVoter(_) => {
                StatusCode::CONFLICT
            }
            MembershipError::NotAMember(_) => StatusCode::NOT_FOUND,
            MembershipError::CatchUpTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            MembershipError::Refused(_) | MembershipError::Stopped(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        (status, Json(self)).into_response()
    }
}
