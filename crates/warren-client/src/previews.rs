//! Preview URLs: a sandbox port reachable through the server.

use warren_api::server::{CreatePreviewRequest, Preview, PreviewAuth, PreviewList};

use crate::error::Result;
use crate::Sandbox;

impl Sandbox {
    /// Exposes `port` at a preview URL (`token` previews need their token).
    pub async fn create_preview(&self, port: u16, auth: PreviewAuth) -> Result<Preview> {
        let http = self.client().http();
        let body = CreatePreviewRequest {
            port,
            auth: Some(auth),
            domain: None,
        };
        http.json(
            http.post(&format!("/v1/sandboxes/{}/previews", self.id()))
                .json(&body),
        )
        .await
    }

    /// Its previews, in port order.
    pub async fn previews(&self) -> Result<Vec<Preview>> {
        let http = self.client().http();
        let list: PreviewList = http
            .json(http.get(&format!("/v1/sandboxes/{}/previews", self.id())))
            .await?;
        Ok(list.items)
    }

    /// Removes the preview of `port`.
    pub async fn delete_preview(&self, port: u16) -> Result<()> {
        let http = self.client().http();
        http.empty(http.delete(&format!("/v1/sandboxes/{}/previews/{port}", self.id())))
            .await
    }
}
