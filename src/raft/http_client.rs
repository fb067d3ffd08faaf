//! The Raft network over HTTP: how a member sends AppendEntries, votes and snapshot chunks to
//! the others.
//!
//! One `reqwest::Client` (one connection pool) is shared by every target and by bootstrap and the
//! admin client: openraft creates a connection object per target and recreates it after errors,
//! and a client per target would open a new TCP (and TLS) connection each time.
//!
//! Timeouts come from openraft's [`RPCOption`]: each request is cut at its `hard_ttl` (the
//! heartbeat interval for AppendEntries, the election timeout for votes, the snapshot chunk
//! timeout for chunks), so a dead member costs one timeout, never a hung replication task.
//!
//! Large batches: see [`MAX_APPEND_BYTES`].
//!
//! Snapshots use openraft 0.9's chunked `install_snapshot`, not `full_snapshot` with a streamed
//! body: with the default (non-generic) snapshot data openraft already drives the chunking,
//! retries a failed chunk with backoff, restarts a stream the follower lost (`SnapshotMismatch`)
//! and reassembles chunks on the follower (`Raft::install_snapshot`). A streamed body would
//! re-implement all of that and could only be retried whole. Each chunk is at most
//! `SNAPSHOT_CHUNK_BYTES`, so the leader holds the snapshot once plus one chunk.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{RPCOption, RPCTypes};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetwork, RaftNetworkFactory};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::cluster_config::member_url;
use super::partition::Partition;
use super::tls::{ClusterTls, TlsError};
use super::token::ClusterToken;
use super::types::{NodeId, TypeConfig};
use super::wire::{ChunkHeader, APPEND_PATH, CHUNK_HEADER, SNAPSHOT_PATH, VOTE_PATH};

/// Largest AppendEntries body sent when it holds more than one entry. openraft 0.9 gives each
/// AppendEntries one heartbeat interval (100 ms by default) to be sent, decoded and made durable;
/// a member far behind would otherwise be sent up to 300 entries at once, which with commands of
/// megabytes never fits, and the member never catches up. Larger batches are refused here with
/// openraft's `PayloadTooLarge`, and openraft sends fewer entries per request for a while.
/// A single entry is always sent, whatever its size: it must then fit in a heartbeat interval
/// on its own. The leader splits `Seen` into entries of half this size; a `Replicas` entry
/// holds one RC's replicas, about 100 bytes each, so only an RC of thousands of replicas makes
/// an entry this large (not split yet). 512 KiB leaves a busy or slow member room: at 2 MiB, a follower catching up on
/// a loaded machine missed the interval on every attempt and never caught up.
pub const MAX_APPEND_BYTES: usize = 512 << 10;

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PeerClientError {
    /// The TLS material was refused.
    #[error("cluster TLS")]
    Tls(#[from] TlsError),
    /// reqwest could not build a client (no TLS backend, bad settings).
    #[error("cannot build the HTTP client for the other members")]
    Build(#[source] reqwest::Error),
}

/// Why one RPC failed on the way, as openraft is told (its `Unreachable` and `NetworkError`
/// carry any error).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// This member is cut off by its [`Partition`] switch.
    #[error("member {me} is partitioned off the raft network")]
    Partitioned { me: NodeId },
    /// The target refused the cluster token: the members disagree on it.
    #[error("member {target} at {url} refused the cluster token (401)")]
    Unauthorized { target: NodeId, url: String },
    /// The target answered with an unexpected status.
    #[error("member {target} at {url} answered {status}")]
    Status {
        target: NodeId,
        url: String,
        status: StatusCode,
    },
    /// Connecting, sending or reading failed.
    #[error("member {target} at {url}")]
    Http {
        target: NodeId,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The request could not be encoded (a bug).
    #[error("cannot encode a request to member {target}")]
    Encode {
        target: NodeId,
        #[source]
        source: serde_json::Error,
    },
}

/// The HTTP client shared by everything that talks to other members. Cheap to clone.
#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    token: ClusterToken,
    tls: bool,
}

impl PeerClient {
    /// A client sending `token` on every request, over TLS when `tls` is given. Connecting to a
    /// member gives up after `connect_timeout`.
    pub fn new(
        token: ClusterToken,
        tls: Option<&ClusterTls>,
        connect_timeout: Duration,
    ) -> Result<PeerClient, PeerClientError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            // Members are addressed directly: a proxy from the environment would only add a hop
            // (and see the token).
            .no_proxy();
        if let Some(tls) = tls {
            builder = tls.configure(builder)?;
        }
        Ok(PeerClient {
            http: builder.build().map_err(PeerClientError::Build)?,
            token,
            tls: tls.is_some(),
        })
    }

    /// The base URL of the member at `addr`.
    pub fn url(&self, addr: &str) -> String {
        member_url(addr, self.tls)
    }

    /// A request to `path` on the member at `addr`, with the cluster token.
    pub fn request(
        &self,
        method: reqwest::Method,
        addr: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}{path}", self.url(addr)));
        match self.token.authorization() {
            Some(auth) => builder.header(reqwest::header::AUTHORIZATION, auth),
            None => builder,
        }
    }
}

/// openraft's network factory: one [`HttpConnection`] per target, all on one [`PeerClient`].
#[derive(Clone)]
pub struct HttpNetwork {
    me: NodeId,
    client: PeerClient,
    partition: Partition,
}

impl HttpNetwork {
    pub fn new(me: NodeId, client: PeerClient, partition: Partition) -> HttpNetwork {
        HttpNetwork {
            me,
            client,
            partition,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = HttpConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> HttpConnection {
        HttpConnection {
            me: self.me,
            target,
            url: self.client.url(&node.addr),
            node: node.clone(),
            client: self.client.clone(),
            partition: self.partition.clone(),
        }
    }
}

/// The connection to one target member.
pub struct HttpConnection {
    me: NodeId,
    target: NodeId,
    node: BasicNode,
    url: String,
    client: PeerClient,
    partition: Partition,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl HttpConnection {
    /// Sends one RPC and decodes the JSON `Result` it answers with.
    async fn call<T, E>(
        &self,
        kind: RPCTypes,
        path: &str,
        body: reqwest::Body,
        chunk: Option<String>,
        option: &RPCOption,
        entries: usize,
    ) -> RpcResult<T, E>
    where
        T: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        if self.partition.is_cut() {
            let e = TransportError::Partitioned { me: self.me };
            return Err(RPCError::Unreachable(Unreachable::new(&e)));
        }
        let mut request = self
            .client
            .request(reqwest::Method::POST, &self.node.addr, path)
            .timeout(option.hard_ttl())
            .body(body);
        request = match chunk {
            Some(header) => request
                .header(CHUNK_HEADER, header)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream"),
            None => request.header(reqwest::header::CONTENT_TYPE, "application/json"),
        };
        let response = request
            .send()
            .await
            .map_err(|e| self.http_error(kind, option, e))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::PAYLOAD_TOO_LARGE => {
                // openraft halves the batch on this hint; a single entry too large cannot shrink.
                let hint = (entries as u64 / 2).max(1);
                return Err(RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint(hint),
                ));
            }
            StatusCode::UNAUTHORIZED => {
                let e = TransportError::Unauthorized {
                    target: self.target,
                    url: self.url.clone(),
                };
                tracing::warn!(error = %e, "raft RPC refused");
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
            status => {
                let e = TransportError::Status {
                    target: self.target,
                    url: self.url.clone(),
                    status,
                };
                // 503: the target is partitioned or shutting down; back off like a dead member.
                return Err(if status == StatusCode::SERVICE_UNAVAILABLE {
                    RPCError::Unreachable(Unreachable::new(&e))
                } else {
                    RPCError::Network(NetworkError::new(&e))
                });
            }
        }
        let answer: Result<T, RaftError<NodeId, E>> = response
            .json()
            .await
            .map_err(|e| self.http_error(kind, option, e))?;
        answer.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))
        })
    }

    fn json<B: Serialize>(&self, body: &B) -> Result<Vec<u8>, TransportError> {
        serde_json::to_vec(body).map_err(|source| TransportError::Encode {
            target: self.target,
            source,
        })
    }

    fn http_error<E: std::error::Error>(
        &self,
        kind: RPCTypes,
        option: &RPCOption,
        source: reqwest::Error,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        if source.is_timeout() {
            return RPCError::Timeout(Timeout {
                action: kind,
                id: self.me,
                target: self.target,
                timeout: option.hard_ttl(),
            });
        }
        let connect = source.is_connect();
        let e = TransportError::Http {
            target: self.target,
            url: self.url.clone(),
            source,
        };
        if connect {
            // Nobody listens there (down, restarting): openraft backs off before the next try.
            RPCError::Unreachable(Unreachable::new(&e))
        } else {
            RPCError::Network(NetworkError::new(&e))
        }
    }
}

/// A failure openraft retries at once (the request never left, or its answer was garbled).
fn network<E: std::error::Error>(
    e: TransportError,
) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
    RPCError::Network(NetworkError::new(&e))
}

impl RaftNetwork<TypeConfig> for HttpConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        let entries = rpc.entries.len();
        let body = self.json(&rpc).map_err(network)?;
        if body.len() > MAX_APPEND_BYTES && entries > 1 {
            // openraft sends the next batches with at most this many entries.
            let fits = entries * MAX_APPEND_BYTES / body.len();
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(fits.max(1) as u64),
            ));
        }
        self.call(
            RPCTypes::AppendEntries,
            APPEND_PATH,
            body.into(),
            None,
            &option,
            entries,
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let InstallSnapshotRequest {
            vote,
            meta,
            offset,
            data,
            done,
        } = rpc;
        let header = ChunkHeader {
            vote,
            meta,
            offset,
            done,
        };
        let header = header.encode().map_err(|source| {
            network(TransportError::Encode {
                target: self.target,
                source,
            })
        })?;
        self.call(
            RPCTypes::InstallSnapshot,
            SNAPSHOT_PATH,
            reqwest::Body::from(data),
            Some(header),
            &option,
            1,
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        let body = self.json(&rpc).map_err(network)?;
        self.call(RPCTypes::Vote, VOTE_PATH, body.into(), None, &option, 0)
            .await
    }
}
