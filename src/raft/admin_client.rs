//! `berth cluster list|add|remove` over HTTP: the admin routes of any member, following the
//! answer "ask the leader" once.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::http_client::{PeerClient, PeerClientError};
use super::membership::{Member, MembershipError};
use super::tls::ClusterTls;
use super::token::ClusterToken;
use super::types::NodeId;
use super::wire::{AddMember, MEMBERS_PATH};

/// How long one admin request may take, besides an add's catch-up wait.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The HTTP client could not be built (bad TLS material).
    #[error("cluster admin client")]
    Client(#[from] PeerClientError),
    /// The member could not be reached, or its answer could not be read.
    #[error("cannot reach member at {url}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The member refused the cluster token.
    #[error("member at {url} refused the cluster token (401)")]
    Unauthorized { url: String },
    /// The member answered something this berth does not understand (another version?).
    #[error("member at {url} answered {status}")]
    Status { url: String, status: StatusCode },
    /// The member (or the leader) refused the call.
    #[error(transparent)]
    Membership(#[from] MembershipError),
}

/// A client of one member's admin routes.
pub struct ClusterAdmin {
    client: PeerClient,
    addr: String,
}

impl ClusterAdmin {
    /// A client of the member at `addr` (`host:port` or URL).
    pub fn new(
        addr: String,
        token: ClusterToken,
        tls: Option<&ClusterTls>,
    ) -> Result<ClusterAdmin, AdminError> {
        Ok(ClusterAdmin {
            client: PeerClient::new(token, tls, REQUEST_TIMEOUT)?,
            addr,
        })
    }

    /// The members as the contacted member sees them.
    pub async fn list(&self) -> Result<Vec<Member>, AdminError> {
        self.call(Method::GET, MEMBERS_PATH, None, Duration::ZERO)
            .await
    }

    /// Adds member `id` reachable at `url`, giving it `catch_up` to catch up before promotion.
    pub async fn add(
        &self,
        id: NodeId,
        url: String,
        catch_up: Duration,
    ) -> Result<Vec<Member>, AdminError> {
        let body = AddMember {
            id,
            url,
            catch_up_ms: u64::try_from(catch_up.as_millis()).unwrap_or(u64::MAX),
        };
        self.call(Method::POST, MEMBERS_PATH, Some(&body), catch_up)
            .await
    }

    /// Removes member `id`.
    pub async fn remove(&self, id: NodeId) -> Result<Vec<Member>, AdminError> {
        let path = format!("{MEMBERS_PATH}/{id}");
        self.call(Method::DELETE, &path, None, Duration::ZERO).await
    }

    /// Calls the contacted member, and the leader it names if it is not the leader.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&AddMember>,
        extra: Duration,
    ) -> Result<T, AdminError> {
        match self
            .call_at(&self.addr, method.clone(), path, body, extra)
            .await
        {
            Err(AdminError::Membership(MembershipError::NotLeader {
                leader_url: Some(leader),
                ..
            })) if leader != self.addr => self.call_at(&leader, method, path, body, extra).await,
            other => other,
        }
    }

    async fn call_at<T: DeserializeOwned>(
        &self,
        addr: &str,
        method: Method,
        path: &str,
        body: Option<&AddMember>,
        extra: Duration,
    ) -> Result<T, AdminError> {
        let url = self.client.url(addr);
        let http = |source| AdminError::Http {
            url: url.clone(),
            source,
        };
        let mut request = self
            .client
            .request(method, addr, path)
            .timeout(REQUEST_TIMEOUT + extra);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(http)?;
        let status = response.status();
        if status == StatusCode::OK {
            return response.json().await.map_err(http);
        }
        if status == StatusCode::UNAUTHORIZED {
            return Err(AdminError::Unauthorized { url });
        }
        match response.json::<MembershipError>().await {
            Ok(e) => Err(AdminError::Membership(e)),
            Err(_) => Err(AdminError::Status { url, status }),
        }
    }
}
